# Cargo's prod environment: survives the loss of an availability zone.
# - VPC over three zones with a NAT gateway in each (a zone outage takes only its own egress);
# - EKS with an on-demand system group in three zones, spot workers with an on-demand floor;
# - RabbitMQ through the Cluster Operator: three replicas, one per zone, each on its own node;
# - logs kept a year, snapshots 35 days; the API endpoint private unless api_allowed_cidrs lists networks.

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  environment = "prod"
  name        = "cargo-${local.environment}"
  azs         = coalesce(var.azs, slice(data.aws_availability_zones.available.names, 0, 3))
  tags = {
    project     = "cargo"
    environment = local.environment
    managed-by  = "terraform"
  }
  secrets_prefix = "arn:${data.aws_partition.current.partition}:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:cargo/${local.environment}/*"
}

module "vpc" {
  source = "../../modules/vpc"

  name                    = local.name
  cidr                    = var.vpc_cidr
  azs                     = local.azs
  cluster_name            = local.name
  single_nat_gateway      = false
  flow_log_retention_days = 365
  tags                    = local.tags
}

module "rabbitmq" {
  source = "../../modules/rabbitmq"

  name                  = "${local.name}-rabbitmq"
  replicas              = 3
  subnet_ids            = module.vpc.private_subnet_ids
  instance_types        = ["m6i.xlarge"]
  storage_gib           = 200
  backup_retention_days = 35
  tags                  = local.tags
}

module "eks" {
  source = "../../modules/eks"

  name                         = local.name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.vpc.private_subnet_ids
  endpoint_public_access       = length(var.api_allowed_cidrs) > 0
  endpoint_public_access_cidrs = var.api_allowed_cidrs
  log_retention_days           = 365
  admin_principal_arns         = var.admin_principal_arns
  ebs_kms_key_arns             = [module.rabbitmq.kms_key_arn]

  node_groups = merge(
    {
      system = {
        instance_types = ["m6i.xlarge"]
        min_size       = 3
        desired_size   = 3
        max_size       = 6
      }
      # Workers: spot for most of the fleet, an on-demand floor so a spot drought never stops processing.
      workers = {
        instance_types = ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge", "m7i.2xlarge"]
        capacity_type  = "SPOT"
        min_size       = 0
        desired_size   = 3
        max_size       = 50
        labels         = { "cargo.dev/pool" = "workers" }
        taints         = [{ key = "cargo.dev/workers", value = "true", effect = "NO_SCHEDULE" }]
      }
      workers-on-demand = {
        instance_types = ["m6i.2xlarge"]
        min_size       = 2
        desired_size   = 2
        max_size       = 10
        labels         = { "cargo.dev/pool" = "workers" }
        taints         = [{ key = "cargo.dev/workers", value = "true", effect = "NO_SCHEDULE" }]
      }
    },
    module.rabbitmq.node_groups,
  )

  service_account_roles = {
    # KEDA reads broker credentials kept in Secrets Manager (TriggerAuthentication with awsSecretManager).
    keda = {
      namespace       = "keda"
      service_account = "keda-operator"
      policy_json = jsonencode({
        Version   = "2012-10-17"
        Statement = [{ Effect = "Allow", Action = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], Resource = local.secrets_prefix }]
      })
    }
    # The canary reports to CloudWatch too, so a dead cluster (and its Prometheus) still pages.
    canary = {
      namespace       = "cargo"
      service_account = "cargo-canary"
      policy_json = jsonencode({
        Version = "2012-10-17"
        Statement = [{
          Effect    = "Allow"
          Action    = "cloudwatch:PutMetricData"
          Resource  = "*" # PutMetricData has no resource type; the namespace condition scopes it
          Condition = { StringEquals = { "cloudwatch:namespace" = "Cargo/Canary" } }
        }]
      })
    }
  }

  tags = local.tags
}

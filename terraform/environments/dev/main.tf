# Cargo's dev environment: cheap, but the same shape as prod.
# - VPC over three zones with a single NAT gateway (dev tolerates losing egress with one zone);
# - EKS with a small on-demand system group and a spot worker group that scales to zero;
# - RabbitMQ through the Cluster Operator with one replica (no replication) on its own node;
# - logs kept 30 days; the API endpoint private unless api_allowed_cidrs lists networks.

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
  environment = "dev"
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
  single_nat_gateway      = true
  flow_log_retention_days = 30
  tags                    = local.tags
}

module "rabbitmq" {
  source = "../../modules/rabbitmq"

  name                  = "${local.name}-rabbitmq"
  replicas              = 1
  subnet_ids            = module.vpc.private_subnet_ids
  instance_types        = ["m6i.large"]
  storage_gib           = 20
  backup_retention_days = 7
  tags                  = local.tags
}

module "eks" {
  source = "../../modules/eks"

  name                         = local.name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.vpc.private_subnet_ids
  endpoint_public_access       = length(var.api_allowed_cidrs) > 0
  endpoint_public_access_cidrs = var.api_allowed_cidrs
  log_retention_days           = 30
  admin_principal_arns         = var.admin_principal_arns
  ebs_kms_key_arns             = [module.rabbitmq.kms_key_arn]

  node_groups = merge(
    {
      system = {
        instance_types = ["m6i.large"]
        min_size       = 1
        desired_size   = 2
        max_size       = 3
      }
      workers = {
        instance_types = ["m6i.large", "m6a.large", "m5.large"]
        capacity_type  = "SPOT"
        min_size       = 0
        desired_size   = 1
        max_size       = 5
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

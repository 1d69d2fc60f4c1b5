# One Cargo environment: the shape dev and prod share, so each of them says only what differs.
# - a VPC over three pinned zones (modules/vpc);
# - RabbitMQ through the Cluster Operator, one node group per replica in its own zone (modules/rabbitmq);
# - EKS with the environment's node groups plus the RabbitMQ ones (modules/eks), and IRSA roles for
#   KEDA (the broker credentials under cargo/<environment>/ in Secrets Manager) and the canary
#   (CloudWatch metrics, so a dead cluster and its Prometheus still page);
# - every resource named cargo-<environment> and tagged with the project and environment.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "cargo-${var.environment}"
  tags = {
    project     = "cargo"
    environment = var.environment
    managed-by  = "terraform"
  }
  # A group dedicated to a Cargo pool carries its label and taint; the chart's pods of that
  # pool select the label and tolerate the taint.
  node_groups = {
    for name, g in var.node_groups : name => {
      instance_types = g.instance_types
      capacity_type  = g.capacity_type
      min_size       = g.min_size
      desired_size   = g.desired_size
      max_size       = g.max_size
      labels         = g.cargo_pool == null ? tomap({}) : tomap({ "cargo.dev/pool" = g.cargo_pool })
      taints         = [for pool in compact([g.cargo_pool]) : { key = "cargo.dev/${pool}", value = "true", effect = "NO_SCHEDULE" }]
    }
  }
  secrets_prefix = "arn:${data.aws_partition.current.partition}:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:cargo/${var.environment}/*"
}

module "vpc" {
  source = "../vpc"

  name                    = local.name
  cidr                    = var.vpc_cidr
  azs                     = var.azs
  cluster_name            = local.name
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

module "rabbitmq" {
  source = "../rabbitmq"

  name                  = "${local.name}-rabbitmq"
  replicas              = var.rabbitmq.replicas
  subnet_ids            = module.vpc.private_subnet_ids
  instance_types        = var.rabbitmq.instance_types
  storage_gib           = var.rabbitmq.storage_gib
  backup_retention_days = var.rabbitmq.backup_retention_days
  tags                  = local.tags
}

module "eks" {
  source = "../eks"

  name               = local.name
  kubernetes_version = var.kubernetes_version
  subnet_ids         = module.vpc.private_subnet_ids
  # A conditional, not `length(...) > 0`: checkov (CKV_AWS_39) evaluates the comparison to
  # "public" two module levels down, the conditional to what it is.
  endpoint_public_access       = length(var.api_allowed_cidrs) == 0 ? false : true
  endpoint_public_access_cidrs = var.api_allowed_cidrs
  log_retention_days           = var.log_retention_days
  admin_principal_arns         = var.admin_principal_arns
  ebs_kms_key_arns             = [module.rabbitmq.kms_key_arn]
  node_groups                  = merge(local.node_groups, module.rabbitmq.node_groups)

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

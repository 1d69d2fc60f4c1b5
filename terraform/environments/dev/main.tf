# Cargo's dev environment: cheap, but the same shape as prod (modules/platform holds that shape).
# - VPC over three pinned zones with a single NAT gateway (dev tolerates losing egress with one zone);
# - EKS with a small on-demand system group and a spot worker group that scales to zero;
# - RabbitMQ through the Cluster Operator with one replica (no replication) on its own node;
# - logs kept 30 days; the API endpoint private unless api_allowed_cidrs lists networks.

locals {
  # The provider's region too (versions.tf); the zones below are in it.
  region = "eu-west-1"
}

module "platform" {
  source = "../../modules/platform"

  environment          = "dev"
  region               = local.region
  azs                  = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  vpc_cidr             = "10.40.0.0/16"
  kubernetes_version   = "1.33"
  admin_principal_arns = var.admin_principal_arns
  api_allowed_cidrs    = var.api_allowed_cidrs
  single_nat_gateway   = true
  log_retention_days   = 30

  rabbitmq = {
    replicas              = 1
    instance_types        = ["m6i.large"]
    storage_gib           = 20
    backup_retention_days = 7
  }

  node_groups = {
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
      cargo_pool     = "workers"
    }
  }
}

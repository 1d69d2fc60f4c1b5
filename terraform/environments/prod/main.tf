# Cargo's prod environment: survives the loss of an availability zone (modules/platform holds the shape).
# - VPC over three pinned zones with a NAT gateway in each (a zone outage takes only its own egress);
# - EKS with an on-demand system group in three zones, spot workers with an on-demand floor;
# - RabbitMQ through the Cluster Operator: three replicas, one per zone, each on its own node;
# - logs kept a year, snapshots 35 days; the API endpoint private unless api_allowed_cidrs lists networks.

module "platform" {
  source = "../../modules/platform"

  environment          = "prod"
  region               = var.region
  azs                  = var.azs
  vpc_cidr             = "10.50.0.0/16"
  kubernetes_version   = "1.33" # upgrade dev first
  admin_principal_arns = var.admin_principal_arns
  api_allowed_cidrs    = var.api_allowed_cidrs
  single_nat_gateway   = false
  log_retention_days   = 365

  rabbitmq = {
    replicas              = 3
    instance_types        = ["m6i.xlarge"]
    storage_gib           = 200
    backup_retention_days = 35
  }

  node_groups = {
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
      cargo_pool     = "workers"
    }
    workers-on-demand = {
      instance_types = ["m6i.2xlarge"]
      min_size       = 2
      desired_size   = 2
      max_size       = 10
      cargo_pool     = "workers"
    }
  }
}

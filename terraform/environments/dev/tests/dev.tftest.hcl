# The dev composition, planned against the mocked AWS provider every suite shares (terraform/tests/aws).

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  admin_principal_arns = ["arn:aws:iam::111122223333:role/platform-admin"]
}

run "dev_is_three_pinned_zones_with_one_nat_gateway" {
  command = apply

  assert {
    condition     = module.platform.azs == tolist(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    error_message = "dev must use its three pinned zones, eu-west-1a to c"
  }
  assert {
    condition     = length(module.platform.private_subnet_ids) == 3 && length(module.platform.public_subnet_ids) == 3
    error_message = "dev must have a public and a private subnet in each of three zones"
  }
  assert {
    condition     = length(output.nat_gateway_ids) == 1
    error_message = "dev saves cost with a single NAT gateway"
  }
}

run "dev_runs_one_rabbitmq_replica_and_spot_workers" {
  command = apply

  assert {
    condition     = output.rabbitmq_cluster_spec.replicas == 1 && length(module.platform.rabbitmq_node_groups) == 1
    error_message = "dev runs a single RabbitMQ replica on one node group"
  }
  assert {
    condition     = contains(keys(module.platform.node_group_names), "cargo-dev-rabbitmq-1") && contains(keys(module.platform.node_group_names), "workers") && contains(keys(module.platform.node_group_names), "system")
    error_message = "dev needs the system, workers and RabbitMQ node groups"
  }
  assert {
    condition     = toset(keys(output.service_account_role_arns)) == toset(["keda", "canary", "vpc-cni", "ebs-csi"])
    error_message = "dev must have IRSA roles for KEDA, the canary, the VPC CNI and the EBS CSI driver"
  }
}

run "dev_api_is_private_without_an_allow_list" {
  command = plan

  assert {
    condition     = !module.platform.endpoint_public_access
    error_message = "without api_allowed_cidrs the dev API endpoint must be private"
  }
}

run "dev_api_opens_only_to_the_allow_list" {
  command = plan

  variables {
    api_allowed_cidrs = ["198.51.100.0/24"]
  }

  assert {
    condition     = module.platform.endpoint_public_access && module.platform.endpoint_public_access_cidrs == tolist(["198.51.100.0/24"])
    error_message = "api_allowed_cidrs must open the public endpoint to those networks only"
  }
}

# The dev composition, planned against a mocked AWS provider.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"] }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:111122223333:log-group:mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE" }
  }
  mock_resource "aws_eks_cluster" {
    defaults = {
      arn                   = "arn:aws:eks:eu-west-1:111122223333:cluster/cargo-dev"
      certificate_authority = [{ data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==" }]
      identity              = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE" }] }]
    }
  }
  mock_resource "aws_launch_template" {
    defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
  }
}

variables {
  admin_principal_arns = ["arn:aws:iam::111122223333:role/platform-admin"]
}

run "dev_is_three_zones_with_one_nat_gateway" {
  command = apply

  assert {
    condition     = module.vpc.azs == tolist(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    error_message = "dev must use the region's first three zones"
  }
  assert {
    condition     = length(module.vpc.private_subnet_ids) == 3 && length(module.vpc.public_subnet_ids) == 3
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
    condition     = output.rabbitmq_cluster_spec.replicas == 1 && length(module.rabbitmq.node_groups) == 1
    error_message = "dev runs a single RabbitMQ replica on one node group"
  }
  assert {
    condition     = contains(keys(module.eks.node_group_names), "cargo-dev-rabbitmq-1") && contains(keys(module.eks.node_group_names), "workers") && contains(keys(module.eks.node_group_names), "system")
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
    condition     = !module.eks.endpoint_public_access
    error_message = "without api_allowed_cidrs the dev API endpoint must be private"
  }
}

run "dev_api_opens_only_to_the_allow_list" {
  command = plan

  variables {
    api_allowed_cidrs = ["198.51.100.0/24"]
  }

  assert {
    condition     = module.eks.endpoint_public_access && module.eks.endpoint_public_access_cidrs == tolist(["198.51.100.0/24"])
    error_message = "api_allowed_cidrs must open the public endpoint to those networks only"
  }
}

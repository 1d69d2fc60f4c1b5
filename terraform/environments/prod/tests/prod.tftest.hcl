# The prod composition, planned against a mocked AWS provider.

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
      arn                   = "arn:aws:eks:eu-west-1:111122223333:cluster/cargo-prod"
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

run "prod_has_a_nat_gateway_in_every_zone" {
  command = apply

  assert {
    condition     = length(module.vpc.azs) == 3 && length(distinct(module.vpc.azs)) == 3
    error_message = "prod must span three distinct zones"
  }
  assert {
    condition     = length(module.vpc.private_subnet_ids) == 3 && length(module.vpc.public_subnet_ids) == 3
    error_message = "prod must have a public and a private subnet in each of three zones"
  }
  assert {
    condition     = length(output.nat_gateway_ids) == 3 && length(distinct(output.nat_gateway_ids)) == 3
    error_message = "prod must have one NAT gateway per zone, so a zone outage takes only its own egress"
  }
}

run "prod_runs_three_rabbitmq_replicas_in_three_zones" {
  command = apply

  assert {
    condition     = output.rabbitmq_cluster_spec.replicas == 3 && length(module.rabbitmq.node_groups) == 3
    error_message = "prod runs three RabbitMQ replicas, each with a node group of its own"
  }
  assert {
    condition     = length(distinct([for g in values(module.rabbitmq.node_groups) : g.subnet_ids[0]])) == 3
    error_message = "the three RabbitMQ node groups must sit in three different zones"
  }
  assert {
    condition     = alltrue([for k in ["system", "workers", "workers-on-demand", "cargo-prod-rabbitmq-1", "cargo-prod-rabbitmq-2", "cargo-prod-rabbitmq-3"] : contains(keys(module.eks.node_group_names), k)])
    error_message = "prod needs the system, spot and on-demand worker, and RabbitMQ node groups"
  }
}

run "prod_api_is_private" {
  command = plan

  assert {
    condition     = !module.eks.endpoint_public_access && length(module.eks.endpoint_public_access_cidrs) == 0
    error_message = "the prod API endpoint must be private by default"
  }
}

run "prod_refuses_iam_users_as_administrators" {
  command = plan

  variables {
    admin_principal_arns = ["arn:aws:iam::111122223333:user/alice"]
  }

  expect_failures = [var.admin_principal_arns]
}

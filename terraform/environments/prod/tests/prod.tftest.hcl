# The prod composition, planned against the mocked AWS provider every suite shares (terraform/tests/aws).

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  admin_principal_arns = ["arn:aws:iam::111122223333:role/platform-admin"]
}

run "prod_has_a_nat_gateway_in_every_zone" {
  command = apply

  assert {
    condition     = length(module.platform.azs) == 3 && length(distinct(module.platform.azs)) == 3
    error_message = "prod must span three distinct zones"
  }
  assert {
    condition     = length(module.platform.private_subnet_ids) == 3 && length(module.platform.public_subnet_ids) == 3
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
    condition     = output.rabbitmq_cluster_spec.replicas == 3 && length(module.platform.rabbitmq_node_groups) == 3
    error_message = "prod runs three RabbitMQ replicas, each with a node group of its own"
  }
  assert {
    condition     = length(distinct([for g in values(module.platform.rabbitmq_node_groups) : g.subnet_ids[0]])) == 3
    error_message = "the three RabbitMQ node groups must sit in three different zones"
  }
  assert {
    condition     = alltrue([for k in ["system", "workers", "workers-on-demand", "cargo-prod-rabbitmq-1", "cargo-prod-rabbitmq-2", "cargo-prod-rabbitmq-3"] : contains(keys(module.platform.node_group_names), k)])
    error_message = "prod needs the system, spot and on-demand worker, and RabbitMQ node groups"
  }
}

run "prod_api_is_private" {
  command = plan

  assert {
    condition     = !module.platform.endpoint_public_access && length(module.platform.endpoint_public_access_cidrs) == 0
    error_message = "the prod API endpoint must be private by default"
  }
}

run "prod_can_be_rebuilt_in_another_region_with_its_zones" {
  command = plan

  variables {
    region = "eu-central-1"
    azs    = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
  }

  assert {
    condition     = output.region == "eu-central-1" && module.platform.azs == tolist(["eu-central-1a", "eu-central-1b", "eu-central-1c"])
    error_message = "region and azs must move the whole environment (ops/disaster-recovery.md rebuilds prod elsewhere)"
  }
}

run "prod_refuses_iam_users_as_administrators" {
  command = plan

  variables {
    admin_principal_arns = ["arn:aws:iam::111122223333:user/alice"]
  }

  expect_failures = [var.admin_principal_arns]
}

# The shared shape of an environment, planned against the mocked AWS provider every suite shares (terraform/tests/aws).

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  environment          = "test"
  region               = "eu-west-1"
  azs                  = ["eu-west-1b", "eu-west-1c", "eu-west-1a"]
  vpc_cidr             = "10.60.0.0/16"
  kubernetes_version   = "1.33"
  admin_principal_arns = ["arn:aws:iam::111122223333:role/platform-admin"]
  single_nat_gateway   = true
  log_retention_days   = 30
  rabbitmq = {
    replicas              = 1
    instance_types        = ["m6i.large"]
    storage_gib           = 20
    backup_retention_days = 7
  }
  node_groups = {
    system  = { instance_types = ["m6i.large"], min_size = 1, desired_size = 1, max_size = 2 }
    workers = { instance_types = ["m6i.large", "m5.large"], capacity_type = "SPOT", min_size = 0, desired_size = 1, max_size = 3, cargo_pool = "workers" }
  }
}

run "the_subnets_follow_the_pinned_zones_in_their_order" {
  command = apply

  assert {
    condition     = output.azs == tolist(["eu-west-1b", "eu-west-1c", "eu-west-1a"])
    error_message = "the VPC must use exactly the zones given, in their order"
  }
  assert {
    condition     = length(output.private_subnet_ids) == 3 && length(output.public_subnet_ids) == 3
    error_message = "there must be a public and a private subnet in each pinned zone"
  }
}

run "every_name_follows_the_environment" {
  command = apply

  assert {
    condition     = output.cluster_name == "cargo-test" && output.rabbitmq_cluster_name == "cargo-test-rabbitmq"
    error_message = "the cluster and the broker must be named cargo-<environment>"
  }
  assert {
    condition     = output.kubeconfig_command == "aws eks update-kubeconfig --region eu-west-1 --name cargo-test"
    error_message = "the kubeconfig command must name the region and the cluster"
  }
}

run "the_broker_node_groups_join_the_environments_own" {
  command = apply

  assert {
    condition     = toset(keys(output.node_group_names)) == toset(["system", "workers", "cargo-test-rabbitmq-1"])
    error_message = "the cluster must get the environment's node groups and one per RabbitMQ replica"
  }
  assert {
    condition     = toset(keys(output.service_account_role_arns)) == toset(["keda", "canary", "vpc-cni", "ebs-csi"])
    error_message = "every environment needs IRSA roles for KEDA, the canary, the VPC CNI and the EBS CSI driver"
  }
}

run "a_group_for_a_cargo_pool_is_labelled_and_tainted_for_it_alone" {
  command = plan

  assert {
    condition     = local.node_groups.workers.labels == tomap({ "cargo.dev/pool" = "workers" })
    error_message = "a cargo_pool group must carry the label cargo.dev/pool=<pool> the chart's pods select"
  }
  assert {
    condition     = length(local.node_groups.workers.taints) == 1 && local.node_groups.workers.taints[0] == { key = "cargo.dev/workers", value = "true", effect = "NO_SCHEDULE" }
    error_message = "a cargo_pool group must be tainted cargo.dev/<pool>=true:NoSchedule, so nothing else lands there"
  }
  assert {
    condition     = length(local.node_groups.system.labels) == 0 && length(local.node_groups.system.taints) == 0
    error_message = "a group without cargo_pool must take any pod: no pool label, no taint"
  }
}

run "a_zone_outside_the_region_is_refused" {
  command = plan

  variables {
    azs = ["eu-west-1a", "eu-west-1b", "us-east-1a"]
  }

  expect_failures = [var.azs]
}

run "two_zones_are_refused" {
  command = plan

  variables {
    azs = ["eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.azs]
}

run "a_repeated_zone_is_refused" {
  command = plan

  variables {
    azs = ["eu-west-1a", "eu-west-1b", "eu-west-1b"]
  }

  expect_failures = [var.azs]
}

run "a_node_group_named_like_the_brokers_is_refused" {
  command = plan

  variables {
    node_groups = {
      rabbitmq = { instance_types = ["m6i.large"], min_size = 1, desired_size = 1, max_size = 1 }
    }
  }

  expect_failures = [var.node_groups]
}

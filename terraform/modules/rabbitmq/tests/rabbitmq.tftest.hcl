# Behaviour of the RabbitMQ (operator path) module against a mocked AWS
# provider: one node group per zone, encrypted volumes, backups, and a
# RabbitmqCluster spec that matches them.

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  name       = "cargo-rabbitmq"
  subnet_ids = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
}

run "three_replicas_get_one_on_demand_node_group_per_zone" {
  command = plan

  assert {
    condition     = length(output.node_groups) == 3
    error_message = "three replicas need three node groups"
  }
  assert {
    condition     = tolist([for g in values(output.node_groups) : g.subnet_ids[0]]) == var.subnet_ids && alltrue([for g in values(output.node_groups) : length(g.subnet_ids) == 1])
    error_message = "each node group must be pinned to the subnet of one zone, a different zone each"
  }
  assert {
    condition     = alltrue([for g in values(output.node_groups) : g.capacity_type == "ON_DEMAND" && g.min_size >= 1])
    error_message = "RabbitMQ nodes must be on-demand and always present"
  }
  assert {
    condition     = alltrue([for g in values(output.node_groups) : g.taints == [{ key = "cargo.dev/rabbitmq", value = "cargo-rabbitmq", effect = "NO_SCHEDULE" }]])
    error_message = "RabbitMQ nodes must be tainted so only the broker runs there"
  }
  assert {
    condition     = output.cluster_spec.replicas == 3 && output.cluster_spec.tolerations[0].key == "cargo.dev/rabbitmq" && output.cluster_spec.tolerations[0].effect == "NoSchedule"
    error_message = "the RabbitmqCluster spec must ask for three replicas tolerating the taint"
  }
  assert {
    condition     = output.cluster_spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey == "topology.kubernetes.io/zone"
    error_message = "the RabbitmqCluster spec must keep replicas in different zones"
  }
}

run "volumes_are_encrypted_and_snapshotted" {
  command = apply

  assert {
    condition     = aws_kms_key.volumes.enable_key_rotation && output.storage_class.parameters.encrypted == "true" && output.storage_class.parameters.kmsKeyId == aws_kms_key.volumes.arn
    error_message = "the StorageClass must encrypt the volumes with the module's rotating key"
  }
  assert {
    condition     = output.storage_class.reclaimPolicy == "Retain" && output.storage_class.volumeBindingMode == "WaitForFirstConsumer"
    error_message = "broker volumes must survive deletion of their claim and be created in the zone of their pod"
  }
  assert {
    condition     = output.cluster_spec.persistence.storageClassName == output.storage_class.name && output.cluster_spec.persistence.storage == "50Gi"
    error_message = "the RabbitmqCluster must use the module's StorageClass"
  }
  assert {
    condition     = output.storage_class.parameters.tagSpecification_1 == "${one(aws_backup_selection.this.selection_tag).key}=${one(aws_backup_selection.this.selection_tag).value}"
    error_message = "the volumes must carry the tag the backup selection looks for"
  }
  assert {
    condition     = aws_backup_vault.this.kms_key_arn == aws_kms_key.volumes.arn && one(aws_backup_plan.this.rule).lifecycle[0].delete_after == 14
    error_message = "snapshots must be encrypted and kept 14 days by default"
  }
}

run "a_single_replica_for_dev" {
  command = plan

  variables {
    replicas = 1
  }

  assert {
    condition     = length(output.node_groups) == 1 && output.cluster_spec.replicas == 1
    error_message = "one replica needs one node group"
  }
}

run "an_even_replica_count_is_refused" {
  command = plan

  variables {
    replicas = 2
  }

  expect_failures = [var.replicas]
}

run "more_replicas_than_zones_are_refused" {
  command = plan

  variables {
    replicas   = 3
    subnet_ids = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  }

  expect_failures = [var.subnet_ids]
}

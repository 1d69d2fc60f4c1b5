output "node_groups" {
  description = "Managed node group definitions for the eks module's node_groups: one on-demand, tainted group per replica, each pinned to one zone's subnet."
  value       = local.node_groups
}

output "kms_key_arn" {
  description = "KMS key of the RabbitMQ volumes; pass it to the eks module's ebs_kms_key_arns so the EBS CSI driver may use it."
  value       = aws_kms_key.volumes.arn
}

output "backup_vault_name" {
  description = "AWS Backup vault holding the RabbitMQ volume snapshots."
  value       = aws_backup_vault.this.name
}

output "backup_plan_id" {
  description = "ID of the AWS Backup plan snapshotting the RabbitMQ volumes."
  value       = aws_backup_plan.this.id
}

output "storage_class" {
  description = "The Kubernetes StorageClass for the RabbitMQ volumes (EBS CSI, gp3, encrypted with kms_key_arn, tagged for backup, retained on delete)."
  value = {
    name                 = local.storage_name
    provisioner          = "ebs.csi.aws.com"
    reclaimPolicy        = "Retain"
    volumeBindingMode    = "WaitForFirstConsumer"
    allowVolumeExpansion = true
    parameters = {
      type                 = "gp3"
      encrypted            = "true"
      kmsKeyId             = aws_kms_key.volumes.arn
      "tagSpecification_1" = "${local.backup_tag}=${var.name}"
    }
  }
}

output "cluster_spec" {
  description = "Fields of the RabbitmqCluster spec that must match this infrastructure (replicas, persistence, tolerations, and affinity to the RabbitMQ nodes with one replica per zone); merge them into the chart's values."
  value = {
    replicas = var.replicas
    persistence = {
      storageClassName = local.storage_name
      storage          = "${var.storage_gib}Gi"
    }
    tolerations = [{ key = local.taint_key, operator = "Equal", value = var.name, effect = "NoSchedule" }]
    affinity = {
      nodeAffinity = {
        requiredDuringSchedulingIgnoredDuringExecution = {
          nodeSelectorTerms = [{
            matchExpressions = [{ key = local.pool_label, operator = "In", values = [var.name] }]
          }]
        }
      }
      # At most one replica per zone: a zone outage takes one vote, never the quorum.
      podAntiAffinity = {
        requiredDuringSchedulingIgnoredDuringExecution = [{
          topologyKey   = "topology.kubernetes.io/zone"
          labelSelector = { matchLabels = { "app.kubernetes.io/name" = var.name } }
        }]
      }
    }
  }
}

output "cluster_name" {
  description = "Name the RabbitmqCluster object must have: the spec's anti-affinity selects pods by the app.kubernetes.io/name label the operator sets to it."
  value       = var.name
}

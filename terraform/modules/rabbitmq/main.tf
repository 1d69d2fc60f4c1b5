# RabbitMQ for Cargo, the operator path: the RabbitMQ Cluster Operator runs the
# broker inside the EKS cluster (see terraform/README.md for why not Amazon MQ).
# This module makes what that needs on the AWS side, and describes the rest:
# - one on-demand, tainted node group per zone (returned as `node_groups` for the
#   eks module), so each replica has a zone of its own and a lost node is
#   replaced in the zone where its EBS volume lives;
# - a KMS key for the broker's EBS volumes (the StorageClass's kmsKeyId; the
#   EBS CSI driver's role is granted it by the eks module's ebs_kms_key_arns);
# - AWS Backup snapshots of those volumes, selected by a tag the StorageClass puts on them;
# - `storage_class` and `cluster_spec` outputs: the StorageClass and the
#   RabbitmqCluster spec fields (replicas, persistence, tolerations, affinity,
#   spread) to deploy with the chart.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  pool_label   = "cargo.dev/pool"
  taint_key    = "cargo.dev/rabbitmq"
  backup_tag   = "cargo.dev/backup"
  storage_name = "${var.name}-gp3-encrypted"

  node_groups = {
    for i in range(var.replicas) : "${var.name}-${i + 1}" => {
      instance_types = var.instance_types
      capacity_type  = "ON_DEMAND"
      # One node per zone; max 2 leaves room for a replacement during node upgrades.
      min_size     = 1
      desired_size = 1
      max_size     = 2
      disk_size    = 50
      labels       = { (local.pool_label) = var.name }
      taints       = [{ key = local.taint_key, value = var.name, effect = "NO_SCHEDULE" }]
      subnet_ids   = [var.subnet_ids[i]]
      ami_type     = "AL2023_x86_64_STANDARD"
    }
  }
}

resource "aws_kms_key" "volumes" {
  description             = "Encrypts the EBS volumes and snapshots of RabbitMQ cluster ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # Key policies name their own key as "*". Use is granted through IAM: the
      # EBS CSI driver's role (eks module) and the AWS Backup role below.
      Sid       = "AccountAdministersAndGrantsThroughIam"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = var.tags
}

resource "aws_kms_alias" "volumes" {
  name          = "alias/${var.name}-volumes"
  target_key_id = aws_kms_key.volumes.key_id
}

# --- snapshots ----------------------------------------------------------------------

resource "aws_backup_vault" "this" {
  name        = "${var.name}-volumes"
  kms_key_arn = aws_kms_key.volumes.arn
  tags        = var.tags
}

resource "aws_backup_plan" "this" {
  name = "${var.name}-volumes"

  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.this.name
    schedule          = var.backup_schedule
    start_window      = 60
    completion_window = 180

    lifecycle {
      delete_after = var.backup_retention_days
    }
  }

  tags = var.tags
}

resource "aws_iam_role" "backup" {
  name_prefix = "${var.name}-backup-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "backup.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "backup" {
  for_each = toset(["AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"])

  role       = aws_iam_role.backup.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/${each.value}"
}

resource "aws_iam_role_policy" "backup_key" {
  name = "use-volume-key"
  role = aws_iam_role.backup.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
      Resource = aws_kms_key.volumes.arn
    }]
  })
}

resource "aws_backup_selection" "this" {
  name         = "${var.name}-volumes"
  plan_id      = aws_backup_plan.this.id
  iam_role_arn = aws_iam_role.backup.arn

  selection_tag {
    type  = "STRINGEQUALS"
    key   = local.backup_tag
    value = var.name
  }
}

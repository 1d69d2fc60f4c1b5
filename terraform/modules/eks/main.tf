# An EKS cluster for Cargo:
# - Kubernetes secrets envelope-encrypted with a KMS key of the module's own (rotated yearly);
# - every control-plane log type in a KMS-encrypted CloudWatch log group;
# - a private API endpoint, public access only when asked for and only from listed CIDRs;
# - managed node groups (on-demand for system pods, spot allowed for workers) on launch
#   templates that require IMDSv2 and encrypt the root volume;
# - an IAM OIDC provider for IAM roles for service accounts (IRSA), with roles for the
#   VPC CNI, the EBS CSI driver and whatever service_account_roles lists (KEDA, the canary);
# - the core add-ons, and access entries for the administrators.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  # Attribute set by AWS, read back from the cluster (https://oidc.eks.<region>.amazonaws.com/id/<id>).
  oidc_issuer = aws_eks_cluster.this.identity[0].oidc[0].issuer
  oidc_host   = replace(local.oidc_issuer, "https://", "")

  # Add-ons that must be running before nodes can join (networking), created before the node groups.
  before_compute = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]

  # IRSA roles: those the add-ons need plus the caller's.
  addon_roles = merge(
    contains(keys(var.addons), "vpc-cni") ? {
      vpc-cni = {
        namespace           = "kube-system"
        service_account     = "aws-node"
        policy_json         = null
        managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"]
      }
    } : {},
    contains(keys(var.addons), "aws-ebs-csi-driver") ? {
      ebs-csi = {
        namespace           = "kube-system"
        service_account     = "ebs-csi-controller-sa"
        policy_json         = length(var.ebs_kms_key_arns) > 0 ? local.ebs_kms_policy : null
        managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
      }
    } : {},
  )
  irsa_roles = merge(local.addon_roles, var.service_account_roles)
  addon_role_key = {
    vpc-cni            = "vpc-cni"
    aws-ebs-csi-driver = "ebs-csi"
  }

  ebs_kms_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "GrantsForAttachedVolumes"
        Effect    = "Allow"
        Action    = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
        Resource  = var.ebs_kms_key_arns
        Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
      },
      {
        Sid      = "UseForVolumes"
        Effect   = "Allow"
        Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource = var.ebs_kms_key_arns
      },
    ]
  })

  irsa_policy_attachments = merge([
    for role, r in local.irsa_roles : {
      for arn in r.managed_policy_arns : "${role}:${arn}" => { role = role, policy_arn = arn }
    }
  ]...)

  log_group_name = "/aws/eks/${var.name}/cluster"
}

# --- KMS keys -----------------------------------------------------------------

resource "aws_kms_key" "secrets" {
  description             = "Envelope encryption of Kubernetes secrets in EKS cluster ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # Key policies name the key they are attached to as "*". Use of the key is
      # granted through IAM (the cluster role's policy below).
      Sid       = "AccountAdministersAndGrantsThroughIam"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name}-eks-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_kms_key" "logs" {
  description             = "Encrypts the control-plane logs of EKS cluster ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersAndGrantsThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsUsesForThisLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}" }
        }
      },
    ]
  })
  tags = var.tags
}

# --- control plane --------------------------------------------------------------

resource "aws_cloudwatch_log_group" "cluster" {
  # checkov:skip=CKV_AWS_338:Retention is a validated variable defaulting to 365 days (prod keeps 365); dev keeps 30 days on purpose, to save cost on logs of a throwaway environment.
  # EKS writes to this exact name; creating it first lets Terraform own retention and encryption.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
  tags              = var.tags
}

resource "aws_iam_role" "cluster" {
  name_prefix = "${var.name}-cluster-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_iam_role_policy" "cluster_secrets_key" {
  name = "use-secrets-key"
  role = aws_iam_role.cluster.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
      Resource = aws_kms_key.secrets.arn
    }]
  })
}

resource "aws_eks_cluster" "this" {
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = var.cluster_log_types

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    # Only read by AWS when public access is on; then it is never empty (precondition below)
    # and never 0.0.0.0/0 (variable validation).
    public_access_cidrs = var.endpoint_public_access ? var.endpoint_public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.secrets.arn
    }
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = var.creator_is_admin
  }

  upgrade_policy {
    # Standard support only: extended support costs six times as much per hour.
    support_type = "STANDARD"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !var.endpoint_public_access || length(var.endpoint_public_access_cidrs) > 0
      error_message = "endpoint_public_access = true needs endpoint_public_access_cidrs: the API is never opened to the whole internet."
    }
    precondition {
      condition     = var.creator_is_admin || length(var.admin_principal_arns) > 0
      error_message = "Nobody could administer the cluster: set admin_principal_arns (or creator_is_admin = true)."
    }
  }

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_secrets_key,
    aws_cloudwatch_log_group.cluster,
  ]
}

resource "aws_eks_access_entry" "admin" {
  for_each = toset(var.admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  type          = "STANDARD"
  tags          = var.tags
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = toset(var.admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.value].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# --- IAM roles for service accounts ------------------------------------------------

resource "aws_iam_openid_connect_provider" "this" {
  url            = local.oidc_issuer
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM trusts the EKS OIDC issuer through its own CA library.
  tags = var.tags
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa_roles

  name_prefix = "${var.name}-${each.key}-"
  description = "IRSA role of ${each.value.namespace}/${each.value.service_account} in EKS cluster ${var.name}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_host}:sub" = "system:serviceaccount:${each.value.namespace}:${each.value.service_account}"
          "${local.oidc_host}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "irsa" {
  for_each = local.irsa_policy_attachments

  role       = aws_iam_role.irsa[each.value.role].name
  policy_arn = each.value.policy_arn
}

resource "aws_iam_role_policy" "irsa" {
  for_each = { for k, r in local.irsa_roles : k => r if r.policy_json != null }

  name   = "inline"
  role   = aws_iam_role.irsa[each.key].id
  policy = each.value.policy_json
}

# --- nodes ------------------------------------------------------------------------

resource "aws_iam_role" "node" {
  name_prefix = "${var.name}-node-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  # The CNI policy is on the vpc-cni add-on's own role (IRSA), not on every node.
  # SSM instead of SSH for a shell on a node.
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = var.node_groups

  name_prefix            = "${var.name}-${each.key}-"
  description            = "Node group ${each.key} of EKS cluster ${var.name}"
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required" # IMDSv2 only
    # 1: pods (not on the host network) cannot reach the node's credentials; they use IRSA.
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.disk_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "this" {
  for_each = var.node_groups

  cluster_name           = aws_eks_cluster.this.name
  node_group_name_prefix = "${each.key}-"
  node_role_arn          = aws_iam_role.node.arn
  subnet_ids             = coalesce(each.value.subnet_ids, var.subnet_ids)
  version                = var.kubernetes_version
  ami_type               = each.value.ami_type
  capacity_type          = each.value.capacity_type
  instance_types         = each.value.instance_types
  labels                 = merge(each.value.labels, { "cargo.dev/node-group" = each.key })

  scaling_config {
    min_size     = each.value.min_size
    desired_size = each.value.desired_size
    max_size     = each.value.max_size
  }

  update_config {
    max_unavailable_percentage = 33
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
    # The cluster autoscaler (or Karpenter) owns the current size.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.before_compute,
  ]
}

# --- add-ons ------------------------------------------------------------------------

resource "aws_eks_addon" "before_compute" {
  for_each = { for k, a in var.addons : k => a if contains(local.before_compute, k) }

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  addon_version               = each.value.version
  configuration_values        = each.value.configuration_values
  service_account_role_arn    = try(aws_iam_role.irsa[local.addon_role_key[each.key]].arn, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"
  tags                        = var.tags
}

resource "aws_eks_addon" "this" {
  for_each = { for k, a in var.addons : k => a if !contains(local.before_compute, k) }

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  addon_version               = each.value.version
  configuration_values        = each.value.configuration_values
  service_account_role_arn    = try(aws_iam_role.irsa[local.addon_role_key[each.key]].arn, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"
  tags                        = var.tags

  # CoreDNS and the EBS CSI controller are Deployments: they need nodes.
  depends_on = [aws_eks_node_group.this]
}

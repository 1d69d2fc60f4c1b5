# Behaviour of the EKS module against a mocked AWS provider: encryption,
# logging, endpoint access, node groups, IRSA and add-ons.

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  name       = "cargo-test"
  subnet_ids = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
  node_groups = {
    system = {
      instance_types = ["m6i.large"]
      min_size       = 2
      desired_size   = 2
      max_size       = 4
      labels         = { "cargo.dev/pool" = "system" }
    }
    workers = {
      instance_types = ["m6i.xlarge", "m5.xlarge", "m6a.xlarge"]
      capacity_type  = "SPOT"
      min_size       = 0
      desired_size   = 1
      max_size       = 20
      taints         = [{ key = "cargo.dev/workers", value = "true", effect = "NO_SCHEDULE" }]
    }
  }
  admin_principal_arns = ["arn:aws:iam::111122223333:role/platform-admin"]
  service_account_roles = {
    keda = {
      namespace           = "keda"
      service_account     = "keda-operator"
      managed_policy_arns = ["arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"]
    }
  }
}

run "secrets_are_encrypted_with_a_rotating_kms_key" {
  command = apply

  assert {
    condition     = length(aws_eks_cluster.this.encryption_config) == 1 && aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"])
    error_message = "Kubernetes secrets must be envelope-encrypted"
  }
  assert {
    condition     = aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == aws_kms_key.secrets.arn
    error_message = "secrets must be encrypted with the module's own KMS key"
  }
  assert {
    condition     = aws_kms_key.secrets.enable_key_rotation && aws_kms_key.logs.enable_key_rotation
    error_message = "the KMS keys must rotate"
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.cluster_secrets_key.policy).Statement[0].Resource == aws_kms_key.secrets.arn
    error_message = "the cluster role must be allowed to use the secrets key, and only that key"
  }
}

run "every_control_plane_log_type_goes_to_an_encrypted_log_group" {
  command = apply

  assert {
    condition     = aws_eks_cluster.this.enabled_cluster_log_types == toset(["api", "audit", "authenticator", "controllerManager", "scheduler"])
    error_message = "all five control-plane log types must be on by default"
  }
  assert {
    condition     = aws_cloudwatch_log_group.cluster.name == "/aws/eks/cargo-test/cluster" && aws_cloudwatch_log_group.cluster.kms_key_id == aws_kms_key.logs.arn
    error_message = "the control-plane log group must be the one EKS writes to, encrypted with the logs key"
  }
  assert {
    condition     = aws_cloudwatch_log_group.cluster.retention_in_days == 365
    error_message = "control-plane logs must be kept a year by default"
  }
}

run "the_api_endpoint_is_private_by_default" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "the API endpoint must be private only unless public access is asked for"
  }
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].subnet_ids == toset(var.subnet_ids)
    error_message = "the control plane must use the given private subnets"
  }
  assert {
    condition     = aws_eks_cluster.this.access_config[0].authentication_mode == "API" && !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions
    error_message = "access must go through access entries, without a hidden creator admin"
  }
  assert {
    condition     = aws_eks_access_policy_association.admin["arn:aws:iam::111122223333:role/platform-admin"].policy_arn == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    error_message = "the listed administrators must get cluster-admin"
  }
}

run "public_access_is_limited_to_the_allow_list" {
  command = plan

  variables {
    endpoint_public_access       = true
    endpoint_public_access_cidrs = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && aws_eks_cluster.this.vpc_config[0].endpoint_private_access
    error_message = "public access adds to the private endpoint, it does not replace it"
  }
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.0/24"])
    error_message = "the public endpoint must only admit the allow-list"
  }
}

run "public_access_without_an_allow_list_is_refused" {
  command = plan

  variables {
    endpoint_public_access = true
  }

  expect_failures = [aws_eks_cluster.this]
}

run "an_allow_list_open_to_the_internet_is_refused" {
  command = plan

  variables {
    endpoint_public_access       = true
    endpoint_public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.endpoint_public_access_cidrs]
}

run "node_groups_are_on_demand_for_system_and_spot_for_workers" {
  command = apply

  assert {
    condition     = aws_eks_node_group.this["system"].capacity_type == "ON_DEMAND" && aws_eks_node_group.this["workers"].capacity_type == "SPOT"
    error_message = "system must be on-demand and workers spot"
  }
  assert {
    condition     = aws_eks_node_group.this["workers"].taint == toset([{ key = "cargo.dev/workers", value = "true", effect = "NO_SCHEDULE" }])
    error_message = "the worker group must carry its taint"
  }
  assert {
    condition     = aws_eks_node_group.this["system"].scaling_config[0].min_size == 2 && aws_eks_node_group.this["workers"].scaling_config[0].max_size == 20
    error_message = "node group sizes must come from node_groups"
  }
  assert {
    condition     = alltrue([for g in aws_eks_node_group.this : g.subnet_ids == toset(var.subnet_ids) && g.launch_template[0].id == aws_launch_template.node[g.labels["cargo.dev/node-group"]].id])
    error_message = "node groups must span the private subnets and use their own launch template"
  }
  assert {
    condition     = alltrue([for t in aws_launch_template.node : t.metadata_options[0].http_tokens == "required" && t.metadata_options[0].http_put_response_hop_limit == 1])
    error_message = "nodes must require IMDSv2 and keep pods away from the node's credentials"
  }
  assert {
    condition     = alltrue([for t in aws_launch_template.node : t.block_device_mappings[0].ebs[0].encrypted == "true"])
    error_message = "node root volumes must be encrypted"
  }
}

run "a_spot_group_with_one_instance_type_is_refused" {
  command = plan

  variables {
    node_groups = {
      system  = { instance_types = ["m6i.large"], min_size = 1, desired_size = 1, max_size = 2 }
      workers = { instance_types = ["m6i.large"], capacity_type = "SPOT", min_size = 0, desired_size = 0, max_size = 3 }
    }
  }

  expect_failures = [var.node_groups]
}

run "spot_only_clusters_are_refused" {
  command = plan

  variables {
    node_groups = {
      workers = { instance_types = ["m6i.large", "m5.large"], capacity_type = "SPOT", min_size = 1, desired_size = 1, max_size = 3 }
    }
  }

  expect_failures = [var.node_groups]
}

run "oidc_provider_and_service_account_roles" {
  command = apply

  assert {
    condition     = aws_iam_openid_connect_provider.this.url == aws_eks_cluster.this.identity[0].oidc[0].issuer && aws_iam_openid_connect_provider.this.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "the OIDC provider must trust the cluster's issuer for STS"
  }
  assert {
    condition     = jsondecode(aws_iam_role.irsa["keda"].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub"] == "system:serviceaccount:keda:keda-operator"
    error_message = "the KEDA role must be assumable only by the keda/keda-operator service account"
  }
  assert {
    condition     = jsondecode(aws_iam_role.irsa["vpc-cni"].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub"] == "system:serviceaccount:kube-system:aws-node"
    error_message = "the VPC CNI role must be bound to kube-system/aws-node"
  }
  assert {
    condition     = aws_iam_role_policy_attachment.irsa["keda:arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"].role == aws_iam_role.irsa["keda"].name
    error_message = "the KEDA role must get its managed policy"
  }
  assert {
    condition     = !contains([for a in aws_iam_role_policy_attachment.node : a.policy_arn], "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy")
    error_message = "the CNI policy belongs on the vpc-cni IRSA role, not on every node"
  }
}

run "core_addons_are_installed_with_their_roles" {
  command = apply

  assert {
    condition     = toset(concat(keys(aws_eks_addon.before_compute), keys(aws_eks_addon.this))) == toset(["vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver"])
    error_message = "the core add-ons must all be installed"
  }
  assert {
    condition     = aws_eks_addon.before_compute["vpc-cni"].service_account_role_arn == aws_iam_role.irsa["vpc-cni"].arn && aws_eks_addon.this["aws-ebs-csi-driver"].service_account_role_arn == aws_iam_role.irsa["ebs-csi"].arn
    error_message = "vpc-cni and the EBS CSI driver must run with their IRSA roles"
  }
  assert {
    condition     = aws_eks_addon.this["coredns"].service_account_role_arn == null
    error_message = "coredns needs no AWS role"
  }
}

run "ebs_kms_keys_are_granted_to_the_csi_driver" {
  command = apply

  variables {
    ebs_kms_key_arns = ["arn:aws:kms:eu-west-1:111122223333:key/11111111-1111-1111-1111-111111111111"]
  }

  assert {
    condition     = tolist(jsondecode(aws_iam_role_policy.irsa["ebs-csi"].policy).Statement[0].Resource) == var.ebs_kms_key_arns
    error_message = "the EBS CSI role must be allowed to create grants on the listed keys only"
  }
}

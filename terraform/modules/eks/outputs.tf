output "cluster_name" {
  description = "Name of the EKS cluster (for aws eks update-kubeconfig --name)."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded certificate authority of the API server, for kubeconfig."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "Security group EKS created for the control plane and the managed nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  value       = aws_eks_cluster.this.version
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider, for IRSA roles made outside this module."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster."
  value       = local.oidc_issuer
}

output "node_role_arn" {
  description = "IAM role of the managed nodes."
  value       = aws_iam_role.node.arn
}

output "node_group_names" {
  description = "Names of the managed node groups, by the key given in node_groups."
  value       = { for k, g in aws_eks_node_group.this : k => g.node_group_name }
}

output "service_account_role_arns" {
  description = "IRSA role ARNs by key (vpc-cni, ebs-csi and those of service_account_roles), for the eks.amazonaws.com/role-arn service account annotation."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "secrets_kms_key_arn" {
  description = "KMS key encrypting the cluster's Kubernetes secrets."
  value       = aws_kms_key.secrets.arn
}

output "cluster_log_group_name" {
  description = "CloudWatch log group receiving the control-plane logs."
  value       = aws_cloudwatch_log_group.cluster.name
}

output "endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from the internet (from endpoint_public_access_cidrs only)."
  value       = aws_eks_cluster.this.vpc_config[0].endpoint_public_access
}

output "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint; empty when the endpoint is private only."
  value       = var.endpoint_public_access ? tolist(aws_eks_cluster.this.vpc_config[0].public_access_cidrs) : []
}

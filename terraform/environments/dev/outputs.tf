output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Command that adds the cluster to ~/.kube/config."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "vpc_id" {
  description = "ID of the environment's VPC."
  value       = module.vpc.vpc_id
}

output "nat_gateway_ids" {
  description = "NAT gateways of the VPC (one in dev)."
  value       = module.vpc.nat_gateway_ids
}

output "service_account_role_arns" {
  description = "IRSA role ARNs by name (keda, canary, vpc-cni, ebs-csi), for the eks.amazonaws.com/role-arn annotations in the chart values."
  value       = module.eks.service_account_role_arns
}

output "rabbitmq_storage_class" {
  description = "StorageClass to create for the RabbitMQ volumes (kubectl apply after rendering, or the chart's values)."
  value       = module.rabbitmq.storage_class
}

output "rabbitmq_cluster_spec" {
  description = "RabbitmqCluster spec fields matching this environment (replicas, storage, tolerations, affinity), for the chart's values."
  value       = module.rabbitmq.cluster_spec
}

output "rabbitmq_cluster_name" {
  description = "Name to give the RabbitmqCluster object (its spec's anti-affinity depends on it)."
  value       = module.rabbitmq.cluster_name
}

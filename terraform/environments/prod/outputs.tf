output "region" {
  description = "AWS region of the environment."
  value       = module.platform.region
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.platform.cluster_name
}

output "kubeconfig_command" {
  description = "Command that adds the cluster to ~/.kube/config."
  value       = module.platform.kubeconfig_command
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.platform.cluster_endpoint
}

output "vpc_id" {
  description = "ID of the environment's VPC."
  value       = module.platform.vpc_id
}

output "nat_gateway_ids" {
  description = "NAT gateways of the VPC (one per zone in prod)."
  value       = module.platform.nat_gateway_ids
}

output "service_account_role_arns" {
  description = "IRSA role ARNs by name (keda, canary, vpc-cni, ebs-csi), for the eks.amazonaws.com/role-arn annotations in the chart values."
  value       = module.platform.service_account_role_arns
}

output "rabbitmq_storage_class" {
  description = "StorageClass to create for the RabbitMQ volumes (kubectl apply after rendering, or the chart's values)."
  value       = module.platform.rabbitmq_storage_class
}

output "rabbitmq_cluster_spec" {
  description = "RabbitmqCluster spec fields matching this environment (replicas, storage, tolerations, affinity), for the chart's values."
  value       = module.platform.rabbitmq_cluster_spec
}

output "rabbitmq_cluster_name" {
  description = "Name to give the RabbitmqCluster object (its spec's anti-affinity depends on it)."
  value       = module.platform.rabbitmq_cluster_name
}

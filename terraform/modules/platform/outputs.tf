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

output "endpoint_public_access" {
  description = "Whether the API endpoint is reachable from the internet (only when api_allowed_cidrs lists networks)."
  value       = module.eks.endpoint_public_access
}

output "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint."
  value       = module.eks.endpoint_public_access_cidrs
}

output "node_group_names" {
  description = "EKS node group names by key: the environment's groups and the RabbitMQ ones."
  value       = module.eks.node_group_names
}

output "service_account_role_arns" {
  description = "IRSA role ARNs by name (keda, canary, vpc-cni, ebs-csi), for the eks.amazonaws.com/role-arn annotations in the chart values."
  value       = module.eks.service_account_role_arns
}

output "vpc_id" {
  description = "ID of the environment's VPC."
  value       = module.vpc.vpc_id
}

output "azs" {
  description = "Availability zones of the subnets, in order."
  value       = module.vpc.azs
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone in azs order."
  value       = module.vpc.private_subnet_ids
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone in azs order."
  value       = module.vpc.public_subnet_ids
}

output "nat_gateway_ids" {
  description = "NAT gateways of the VPC (one, or one per zone)."
  value       = module.vpc.nat_gateway_ids
}

output "rabbitmq_node_groups" {
  description = "The RabbitMQ node groups by name, as given to the cluster (one per replica, each pinned to one zone's subnet)."
  value       = module.rabbitmq.node_groups
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

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones the subnets are in, in the order of the subnet outputs."
  value       = var.azs
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (EKS nodes, pods, internal load balancers), one per zone in azs order."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets, one per zone in azs order."
  value       = aws_subnet.private[*].cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (NAT gateways, internet-facing load balancers), one per zone in azs order."
  value       = aws_subnet.public[*].id
}

output "public_subnet_cidrs" {
  description = "CIDR blocks of the public subnets, one per zone in azs order."
  value       = aws_subnet.public[*].cidr_block
}

output "nat_gateway_ids" {
  description = "IDs of the NAT gateways: one, or one per zone."
  value       = aws_nat_gateway.this[*].id
}

output "nat_public_ips" {
  description = "Public addresses the private subnets' outbound traffic comes from (for allow-lists elsewhere)."
  value       = aws_eip.nat[*].public_ip
}

output "private_route_table_ids" {
  description = "IDs of the private route tables, one per zone (for VPC endpoints and peering routes)."
  value       = aws_route_table.private[*].id
}

output "flow_log_group_name" {
  description = "CloudWatch log group receiving the VPC flow log."
  value       = aws_cloudwatch_log_group.flow_log.name
}

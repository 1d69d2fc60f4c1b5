# Behaviour of the VPC module, planned and "applied" against a mocked AWS
# provider (no credentials, no network): zones, subnets, NAT layout, CIDRs,
# load balancer tags and the flow log.

mock_provider "aws" {
  source = "../../tests/aws"
}

variables {
  name         = "cargo-test"
  cidr         = "10.20.0.0/16"
  azs          = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  cluster_name = "cargo-test"
}

run "three_zones_with_a_nat_gateway_per_zone" {
  command = apply

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "expected one public and one private subnet in each of the three zones"
  }
  assert {
    condition     = toset(aws_subnet.private[*].availability_zone) == toset(var.azs) && toset(aws_subnet.public[*].availability_zone) == toset(var.azs)
    error_message = "the subnets must cover exactly the three requested zones"
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 3 && length(aws_eip.nat) == 3
    error_message = "single_nat_gateway = false must give one NAT gateway (and Elastic IP) per zone"
  }
  assert {
    condition     = alltrue([for i in range(3) : aws_nat_gateway.this[i].subnet_id == aws_subnet.public[i].id])
    error_message = "each NAT gateway must sit in the public subnet of its own zone"
  }
  assert {
    condition     = alltrue([for i in range(3) : aws_route.private_nat[i].nat_gateway_id == aws_nat_gateway.this[i].id])
    error_message = "each private subnet must route to the NAT gateway of its own zone"
  }
  assert {
    condition     = alltrue([for i in range(3) : aws_route_table_association.private[i].route_table_id == aws_route_table.private[i].id && aws_route_table_association.private[i].subnet_id == aws_subnet.private[i].id])
    error_message = "each private subnet must use its own zone's route table"
  }
  assert {
    condition     = aws_route.public_internet.gateway_id == aws_internet_gateway.this.id && aws_route.public_internet.destination_cidr_block == "0.0.0.0/0"
    error_message = "the public subnets must route to the internet gateway"
  }
  assert {
    condition     = length(output.private_subnet_ids) == 3 && length(output.public_subnet_ids) == 3 && length(output.nat_gateway_ids) == 3
    error_message = "the outputs must list one subnet per zone and every NAT gateway"
  }
}

run "a_single_nat_gateway_serves_every_zone" {
  command = apply

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1
    error_message = "single_nat_gateway = true must create exactly one NAT gateway"
  }
  assert {
    condition     = length(aws_route.private_nat) == 3 && alltrue([for r in aws_route.private_nat : r.nat_gateway_id == aws_nat_gateway.this[0].id])
    error_message = "every private route table must route through the single NAT gateway"
  }
  assert {
    condition     = length(aws_subnet.private) == 3
    error_message = "a single NAT gateway must not change the number of subnets"
  }
}

run "subnet_cidrs_do_not_overlap_and_lie_inside_the_vpc" {
  command = plan

  assert {
    condition = alltrue([
      for pair in setproduct(concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block), concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block)) :
      pair[0] == pair[1] || cidrhost("${cidrhost(pair[0], 0)}/${min(tonumber(split("/", pair[0])[1]), tonumber(split("/", pair[1])[1]))}", 0) != cidrhost("${cidrhost(pair[1], 0)}/${min(tonumber(split("/", pair[0])[1]), tonumber(split("/", pair[1])[1]))}", 0)
    ])
    error_message = "two subnets overlap: ${join(", ", concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block))}"
  }
  assert {
    condition     = length(distinct(concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block))) == 6
    error_message = "the six subnets must have six different CIDR blocks"
  }
  assert {
    condition     = alltrue([for c in concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block) : cidrhost("${cidrhost(c, 0)}/16", 0) == "10.20.0.0"])
    error_message = "every subnet must lie inside 10.20.0.0/16"
  }
  assert {
    condition     = aws_subnet.private[*].cidr_block == ["10.20.0.0/19", "10.20.32.0/19", "10.20.64.0/19"]
    error_message = "private subnets should be /19 blocks at the start of the VPC, got ${join(", ", aws_subnet.private[*].cidr_block)}"
  }
  assert {
    condition     = aws_subnet.public[*].cidr_block == ["10.20.96.0/24", "10.20.97.0/24", "10.20.98.0/24"]
    error_message = "public subnets should be /24 blocks after the private ones, got ${join(", ", aws_subnet.public[*].cidr_block)}"
  }
}

run "overlapping_explicit_subnets_are_refused" {
  command = plan

  variables {
    private_subnets = ["10.20.0.0/19", "10.20.32.0/19", "10.20.64.0/19"]
    public_subnets  = ["10.20.96.0/24", "10.20.33.0/24", "10.20.98.0/24"]
  }

  expect_failures = [aws_vpc.this]
}

run "subnets_outside_the_vpc_are_refused" {
  command = plan

  variables {
    private_subnets = ["10.20.0.0/19", "10.20.32.0/19", "10.21.0.0/19"]
  }

  expect_failures = [aws_vpc.this]
}

run "fewer_than_three_zones_are_refused" {
  command = plan

  variables {
    azs = ["eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.azs]
}

run "a_cidr_with_host_bits_is_refused" {
  command = plan

  variables {
    cidr = "10.20.1.0/16"
  }

  expect_failures = [var.cidr]
}

run "subnets_carry_the_load_balancer_and_cluster_tags" {
  command = plan

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.tags["kubernetes.io/role/elb"] == "1" && s.tags["kubernetes.io/cluster/cargo-test"] == "shared"])
    error_message = "public subnets need kubernetes.io/role/elb = 1 and the cluster tag for internet-facing load balancers"
  }
  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1" && s.tags["kubernetes.io/cluster/cargo-test"] == "shared"])
    error_message = "private subnets need kubernetes.io/role/internal-elb = 1 and the cluster tag for internal load balancers"
  }
  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "public subnets must not hand out public addresses by default"
  }
}

run "flow_log_is_on_and_encrypted" {
  command = apply

  assert {
    condition     = aws_flow_log.this.vpc_id == aws_vpc.this.id && aws_flow_log.this.traffic_type == "ALL"
    error_message = "the VPC must have a flow log recording all traffic"
  }
  assert {
    condition     = aws_flow_log.this.log_destination == aws_cloudwatch_log_group.flow_log.arn && aws_flow_log.this.log_destination_type == "cloud-watch-logs"
    error_message = "the flow log must go to the module's CloudWatch log group"
  }
  assert {
    condition     = aws_cloudwatch_log_group.flow_log.kms_key_id == aws_kms_key.flow_log.arn && aws_kms_key.flow_log.enable_key_rotation
    error_message = "the flow log group must be encrypted with a rotating KMS key"
  }
  assert {
    condition     = aws_cloudwatch_log_group.flow_log.retention_in_days == 365
    error_message = "the flow log must be kept a year by default"
  }
  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "the default security group must allow nothing"
  }
}

# A VPC across three (or more) availability zones for an EKS cluster:
# - one public and one private subnet per zone, carved out of the VPC CIDR
#   without overlap (cidrsubnets allocates consecutive, disjoint blocks);
# - NAT gateways: one per zone, or one for the whole VPC (single_nat_gateway);
# - the subnet tags the AWS Load Balancer Controller and in-tree service
#   controller use to place internet-facing (public) and internal (private) load balancers;
# - a VPC flow log into a KMS-encrypted CloudWatch log group;
# - the default security group stripped of every rule.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition      = data.aws_partition.current.partition
  account_id     = data.aws_caller_identity.current.account_id
  region         = data.aws_region.current.name
  flow_log_group = "/aws/vpc-flow-log/${var.name}"

  zone_count = length(var.azs)
  nat_count  = var.single_nat_gateway ? 1 : local.zone_count

  # Private subnets first (large: pods take VPC addresses), then public ones.
  carved = cidrsubnets(
    var.cidr,
    concat(
      [for _ in var.azs : var.private_subnet_newbits],
      [for _ in var.azs : var.public_subnet_newbits],
    )...
  )
  private_subnets = coalesce(var.private_subnets, slice(local.carved, 0, local.zone_count))
  public_subnets  = coalesce(var.public_subnets, slice(local.carved, local.zone_count, 2 * local.zone_count))

  all_subnets = concat(local.private_subnets, local.public_subnets)
  # Two aligned CIDR blocks overlap exactly when their network addresses agree
  # on the shorter of the two prefixes.
  overlapping_pairs = [
    for pair in setproduct(range(length(local.all_subnets)), range(length(local.all_subnets))) : pair
    if pair[0] < pair[1] && cidrhost(
      "${cidrhost(local.all_subnets[pair[0]], 0)}/${min(tonumber(split("/", local.all_subnets[pair[0]])[1]), tonumber(split("/", local.all_subnets[pair[1]])[1]))}", 0
      ) == cidrhost(
      "${cidrhost(local.all_subnets[pair[1]], 0)}/${min(tonumber(split("/", local.all_subnets[pair[0]])[1]), tonumber(split("/", local.all_subnets[pair[1]])[1]))}", 0
    )
  ]
  vpc_prefix = tonumber(split("/", var.cidr)[1])
  outside_vpc = [
    for c in local.all_subnets : c
    if tonumber(split("/", c)[1]) < local.vpc_prefix || cidrhost("${cidrhost(c, 0)}/${local.vpc_prefix}", 0) != cidrhost(var.cidr, 0)
  ]

  cluster_tag = var.cluster_name == null ? {} : { "kubernetes.io/cluster/${var.cluster_name}" = "shared" }
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # EKS nodes and private endpoints need DNS hostnames

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    precondition {
      condition     = length(local.private_subnets) == local.zone_count && length(local.public_subnets) == local.zone_count
      error_message = "private_subnets and public_subnets must each list one CIDR per zone in azs."
    }
    precondition {
      condition     = length(local.overlapping_pairs) == 0
      error_message = "Subnet CIDRs overlap: ${join(", ", [for p in local.overlapping_pairs : "${local.all_subnets[p[0]]} and ${local.all_subnets[p[1]]}"])}."
    }
    precondition {
      condition     = length(local.outside_vpc) == 0
      error_message = "Subnet CIDRs outside the VPC CIDR ${var.cidr}: ${join(", ", local.outside_vpc)}."
    }
  }
}

# Nothing may use the default security group by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = local.zone_count

  vpc_id            = aws_vpc.this.id
  availability_zone = var.azs[count.index]
  cidr_block        = local.public_subnets[count.index]
  # Nothing launched here gets a public address by default: the subnets hold
  # NAT gateways (Elastic IPs) and load balancers only.
  map_public_ip_on_launch = false

  tags = merge(var.tags, local.cluster_tag, {
    Name                     = "${var.name}-public-${var.azs[count.index]}"
    "kubernetes.io/role/elb" = "1"
    tier                     = "public"
  })
}

resource "aws_subnet" "private" {
  count = local.zone_count

  vpc_id            = aws_vpc.this.id
  availability_zone = var.azs[count.index]
  cidr_block        = local.private_subnets[count.index]

  tags = merge(var.tags, local.cluster_tag, {
    Name                              = "${var.name}-private-${var.azs[count.index]}"
    "kubernetes.io/role/internal-elb" = "1"
    tier                              = "private"
  })
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name}-nat-${var.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = merge(var.tags, { Name = "${var.name}-nat-${var.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = local.zone_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# One private route table per zone, so that switching between a single NAT
# gateway and one per zone only changes routes.
resource "aws_route_table" "private" {
  count = local.zone_count

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-private-${var.azs[count.index]}" })
}

resource "aws_route" "private_nat" {
  count = local.zone_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = local.zone_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# --- flow log ---------------------------------------------------------------

resource "aws_kms_key" "flow_log" {
  description             = "Encrypts the VPC flow log of ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Key policies name their own key as "*".
        Sid       = "AccountAdministers"
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
          ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.flow_log_group}" }
        }
      },
    ]
  })
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "flow_log" {
  # checkov:skip=CKV_AWS_338:Retention is a validated variable defaulting to 365 days (prod keeps 365); dev keeps 30 days on purpose, to save cost on logs of a throwaway environment.
  name              = local.flow_log_group
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.flow_log.arn
  tags              = var.tags
}

resource "aws_iam_role" "flow_log" {
  name_prefix = "${var.name}-flow-log-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "flow_log" {
  name = "write-flow-log"
  role = aws_iam_role.flow_log.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow_log.arn}:*"
    }]
  })
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = var.flow_log_traffic_type
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_log.arn
  iam_role_arn             = aws_iam_role.flow_log.arn
  max_aggregation_interval = 60
  tags                     = merge(var.tags, { Name = var.name })
}

variable "name" {
  description = "Name of the VPC, used as the prefix of every resource name and the Name tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC, a private range between /16 and /22."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && try(tonumber(split("/", var.cidr)[1]) >= 16 && tonumber(split("/", var.cidr)[1]) <= 22, false)
    error_message = "cidr must be a valid IPv4 CIDR block with a prefix length between /16 and /22."
  }

  validation {
    condition     = try(cidrhost(var.cidr, 0) == split("/", var.cidr)[0], false)
    error_message = "cidr must be a network address (no host bits set), e.g. 10.0.0.0/16."
  }
}

variable "azs" {
  description = "Availability zones to spread the subnets across, in order; one public and one private subnet is made in each."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 3 && length(var.azs) <= 6
    error_message = "azs must list 3 to 6 availability zones: EKS and a three-replica RabbitMQ quorum need three zones to survive the loss of one."
  }

  validation {
    condition     = length(distinct(var.azs)) == length(var.azs)
    error_message = "azs must not repeat a zone."
  }
}

variable "private_subnet_newbits" {
  description = "Bits added to the VPC prefix for each private subnet (3 on a /16 gives /19 subnets of 8,190 addresses: EKS pods take VPC addresses). Ignored when private_subnets is set."
  type        = number
  default     = 3

  validation {
    condition     = var.private_subnet_newbits >= 2 && var.private_subnet_newbits <= 8 && floor(var.private_subnet_newbits) == var.private_subnet_newbits
    error_message = "private_subnet_newbits must be a whole number from 2 to 8."
  }
}

variable "public_subnet_newbits" {
  description = "Bits added to the VPC prefix for each public subnet (8 on a /16 gives /24 subnets; they hold only NAT gateways and load balancers). Ignored when public_subnets is set."
  type        = number
  default     = 8

  validation {
    condition     = var.public_subnet_newbits >= 2 && var.public_subnet_newbits <= 10 && floor(var.public_subnet_newbits) == var.public_subnet_newbits
    error_message = "public_subnet_newbits must be a whole number from 2 to 10."
  }
}

variable "private_subnets" {
  description = "Explicit private subnet CIDRs, one per zone in azs order. Null (the default) carves them out of cidr without overlap."
  type        = list(string)
  default     = null

  validation {
    condition     = var.private_subnets == null || alltrue([for c in coalesce(var.private_subnets, []) : can(cidrhost(c, 0))])
    error_message = "private_subnets must be valid IPv4 CIDR blocks."
  }
}

variable "public_subnets" {
  description = "Explicit public subnet CIDRs, one per zone in azs order. Null (the default) carves them out of cidr without overlap."
  type        = list(string)
  default     = null

  validation {
    condition     = var.public_subnets == null || alltrue([for c in coalesce(var.public_subnets, []) : can(cidrhost(c, 0))])
    error_message = "public_subnets must be valid IPv4 CIDR blocks."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC (cheaper; private subnets lose egress when its zone fails) instead of one per zone."
  type        = bool
  default     = false
}

variable "cluster_name" {
  description = "Name of the EKS cluster that will use the subnets; tags them kubernetes.io/cluster/<name> = shared. Null adds no cluster tag."
  type        = string
  default     = null

  validation {
    condition     = var.cluster_name == null || can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be a valid EKS cluster name (letters, digits, hyphens and underscores, starting with a letter or digit, at most 100 characters)."
  }
}

variable "flow_log_traffic_type" {
  description = "Traffic the VPC flow log records: ALL, ACCEPT or REJECT."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ALL, ACCEPT or REJECT."
  }
}

variable "flow_log_retention_days" {
  description = "Days CloudWatch Logs keeps the VPC flow log (a value CloudWatch accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

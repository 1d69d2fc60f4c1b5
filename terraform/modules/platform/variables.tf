variable "environment" {
  description = "Name of the environment (dev, prod, ...): names every resource cargo-<environment> and scopes KEDA's secrets to cargo/<environment>/."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters and digits, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the environment: the region of the provider that calls this module, and of every zone in azs."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "azs" {
  description = <<-EOT
    The three availability zones of the environment, named explicitly. Pinned rather than read from
    data.aws_availability_zones, so the subnet layout (one public and one private subnet per zone, in
    this order) cannot change when AWS adds or retires a zone in the region (checkov CKV_AWS_394).
  EOT
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3 && length(distinct(var.azs)) == 3
    error_message = "azs must list exactly three distinct availability zones."
  }

  validation {
    condition     = alltrue([for az in var.azs : can(regex("^${var.region}[a-z]$", az))])
    error_message = "every zone in azs must be a zone of region, such as eu-west-1a."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the environment's VPC; must not overlap networks it will be peered or VPN-connected with."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a /16 IPv4 CIDR block."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the cluster."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles (or users) that get cluster-admin on the cluster. An environment may narrow this further (prod takes roles only)."
  type        = list(string)

  validation {
    condition     = length(var.admin_principal_arns) > 0 && alltrue([for a in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", a))])
    error_message = "admin_principal_arns must list at least one IAM role or user ARN."
  }
}

variable "api_allowed_cidrs" {
  description = "Networks allowed to reach the cluster's API from the internet. Empty keeps the endpoint private."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/")])
    error_message = "api_allowed_cidrs must be IPv4 CIDR blocks, never 0.0.0.0/0."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheap; losing its zone loses all egress) instead of one per zone."
  type        = bool
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the VPC flow log and the control-plane logs (a value CloudWatch accepts; the vpc and eks modules check it)."
  type        = number

  validation {
    condition     = var.log_retention_days >= 1 && floor(var.log_retention_days) == var.log_retention_days
    error_message = "log_retention_days must be a whole number of days."
  }
}

variable "rabbitmq" {
  description = "The RabbitMQ broker: replicas (1, or 3 or 5 one per zone), on-demand instance_types of its nodes, storage_gib per node, backup_retention_days of the volume snapshots (modules/rabbitmq checks each)."
  type = object({
    replicas              = number
    instance_types        = list(string)
    storage_gib           = number
    backup_retention_days = number
  })

  validation {
    condition     = var.rabbitmq.replicas <= 3
    error_message = "rabbitmq.replicas must be at most 3: each replica takes a zone of its own and azs lists three."
  }
}

variable "node_groups" {
  description = <<-EOT
    The cluster's managed node groups besides RabbitMQ's, by name: instance_types, capacity_type
    (ON_DEMAND, the default, or SPOT), min_size, desired_size, max_size, and cargo_pool. A group with
    cargo_pool set is dedicated to that pool of Cargo's pods: labelled cargo.dev/pool=<pool> and tainted
    cargo.dev/<pool>=true:NoSchedule, so only pods that tolerate it land there. modules/eks checks the rest.
  EOT
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    desired_size   = number
    max_size       = number
    cargo_pool     = optional(string)
  }))

  validation {
    condition     = alltrue([for k in keys(var.node_groups) : !strcontains(k, "rabbitmq")])
    error_message = "node_groups must not name a group with \"rabbitmq\": those names belong to the broker's node groups, which this module adds."
  }

  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.cargo_pool == null || can(regex("^[a-z][a-z0-9-]{0,30}$", g.cargo_pool))])
    error_message = "cargo_pool must be a pool name of lower-case letters, digits and hyphens, such as workers."
  }
}

variable "name" {
  description = "Name of the RabbitMQ cluster (the RabbitmqCluster object); prefixes the AWS resources and names the node groups' pool."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "replicas" {
  description = "RabbitMQ nodes: 1 (dev: no replication) or an odd quorum of 3 or 5, one per zone, so quorum queues and the events stream survive the loss of a zone."
  type        = number
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.replicas)
    error_message = "replicas must be 1, 3 or 5: quorum queues need an odd number of replicas to keep a majority."
  }
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone, in zone order. The first replicas of them get a RabbitMQ node group each."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "subnet_ids must list distinct subnets, one per zone."
  }

  validation {
    condition     = length(var.subnet_ids) >= var.replicas
    error_message = "subnet_ids must list at least one subnet (zone) per replica: two RabbitMQ nodes in one zone would lose the quorum with that zone."
  }
}

variable "instance_types" {
  description = "EC2 instance types of the RabbitMQ nodes (on-demand: a broker node must not be reclaimed like spot capacity)."
  type        = list(string)
  default     = ["m6i.large"]

  validation {
    condition     = length(var.instance_types) > 0 && alltrue([for t in var.instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "instance_types must be EC2 instance type names such as m6i.large."
  }
}

variable "storage_gib" {
  description = "Size of each RabbitMQ node's persistent volume in GiB (messages, quorum queue logs and the events stream)."
  type        = number
  default     = 50

  validation {
    condition     = var.storage_gib >= 10 && var.storage_gib <= 16384 && floor(var.storage_gib) == var.storage_gib
    error_message = "storage_gib must be a whole number of GiB from 10 to 16384."
  }
}

variable "backup_schedule" {
  description = "AWS Backup schedule (cron expression, UTC) of the RabbitMQ volume snapshots."
  type        = string
  default     = "cron(0 3 * * ? *)"

  validation {
    condition     = can(regex("^cron\\(.+\\)$", var.backup_schedule))
    error_message = "backup_schedule must be an AWS cron expression such as cron(0 3 * * ? *)."
  }
}

variable "backup_retention_days" {
  description = "Days the RabbitMQ volume snapshots are kept."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 3650 && floor(var.backup_retention_days) == var.backup_retention_days
    error_message = "backup_retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

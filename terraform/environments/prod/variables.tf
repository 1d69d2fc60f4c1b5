# What may be set at apply time: where prod runs (pinned by default; another region only to
# rebuild it there, ops/disaster-recovery.md), who administers the cluster and who may reach
# its API. Sizes and the VPC CIDR are literals in main.tf, so a change to them is reviewed.

variable "region" {
  description = "AWS region of the environment; azs must name zones of it."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "azs" {
  description = "The three availability zones, named: pinned so the subnet layout cannot move when AWS adds a zone (checkov CKV_AWS_394). modules/platform checks they are three distinct zones of region."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    condition     = length(var.azs) == 3
    error_message = "azs must list exactly three availability zones."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles that get cluster-admin on the prod cluster: the platform team's break-glass role and the CI deploy role. Roles only, no users."
  type        = list(string)

  validation {
    condition     = length(var.admin_principal_arns) > 0 && alltrue([for a in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", a))])
    error_message = "admin_principal_arns must list at least one IAM role ARN (no users in prod)."
  }
}

variable "api_allowed_cidrs" {
  description = "Networks allowed to reach the prod API from the internet. Empty (the default) keeps the endpoint private: reach it over the VPN or from inside the VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/")])
    error_message = "api_allowed_cidrs must be IPv4 CIDR blocks, never 0.0.0.0/0."
  }
}

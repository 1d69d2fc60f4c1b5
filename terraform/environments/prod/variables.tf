# Only what is not fixed in code: who administers the cluster and who may reach its API.
# Sizes, zones and CIDRs are literals in main.tf, so a change to them is a reviewed change.

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

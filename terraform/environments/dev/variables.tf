# What may be set at apply time: who administers the cluster and who may reach its API.
# Region, zones, sizes and the VPC CIDR are literals in main.tf, so a change to them is reviewed
# (prod alone takes region and azs as variables, to be rebuilt in another region).

variable "admin_principal_arns" {
  description = "IAM roles (or users) that get cluster-admin on the dev cluster: the developers' and the CI deploy role."
  type        = list(string)

  validation {
    condition     = length(var.admin_principal_arns) > 0 && alltrue([for a in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", a))])
    error_message = "admin_principal_arns must list at least one IAM role or user ARN."
  }
}

variable "api_allowed_cidrs" {
  description = "Networks allowed to reach the dev cluster's API from the internet (office, VPN egress). Empty keeps the endpoint private."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/")])
    error_message = "api_allowed_cidrs must be IPv4 CIDR blocks, never 0.0.0.0/0."
  }
}

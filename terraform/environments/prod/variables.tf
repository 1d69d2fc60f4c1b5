variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "azs" {
  description = "Three availability zones to use; null takes the region's first three zones that need no opt-in."
  type        = list(string)
  default     = null

  validation {
    condition     = var.azs == null || try(length(var.azs) == 3, false)
    error_message = "azs must list exactly three availability zones (or be null)."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the environment's VPC; must not overlap networks it will be peered or VPN-connected with."
  type        = string
  default     = "10.50.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a /16 IPv4 CIDR block."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the cluster (upgrade dev first)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
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

variable "region" {
  description = "AWS region of the state bucket (the environments' backend.hcl region)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "bucket_prefix" {
  description = "Start of the state bucket's name; the account ID and region are appended, so the name is unique."
  type        = string
  default     = "cargo-tfstate"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,30}$", var.bucket_prefix))
    error_message = "bucket_prefix must be 3-31 lower-case letters, digits and hyphens."
  }
}

variable "noncurrent_version_days" {
  description = "Days old state versions are kept (the way back from a bad apply)."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 7 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number of at least 7."
  }
}

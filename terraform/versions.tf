terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.81" # any 5.x from 5.81 on
    }
  }

  # No backend: this configuration creates the backend. Keep its local state
  # (terraform.tfstate, ignored by git) somewhere safe, or migrate it into the
  # bucket afterwards with a backend "s3" block and terraform init -migrate-state.
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "cargo"
      managed-by = "terraform"
    }
  }
}

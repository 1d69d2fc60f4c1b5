terraform {
  # 1.10+: S3 state locking with a lock file (use_lockfile), no DynamoDB table needed.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.81" # any 5.x from 5.81 on; 6.x is a deliberate upgrade
    }
  }

  # Partial configuration: copy backend.hcl.example to backend.hcl, fill it in and run
  #   terraform init -backend-config=backend.hcl
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "cargo"
      environment = "prod"
      managed-by  = "terraform"
    }
  }
}

# terraform/ (this root): the one-off bootstrap of Terraform state for Cargo.
#
# What it does: creates, once per AWS account and region, the S3 bucket that
# environments/dev and environments/prod keep their state in (see their
# backend.hcl.example), with
# - versioning, so every earlier state can be restored;
# - SSE-KMS encryption with a key of its own (state holds secrets) and bucket keys;
# - all public access blocked, TLS required, object ownership enforced;
# - old state versions expired after noncurrent_version_days.
# Locking needs no table: the environments set use_lockfile = true, and S3
# conditional writes make the lock file (Terraform >= 1.10).
#
# What it does not do: it builds no network or cluster. Those are
# environments/<env>, each one call of modules/platform (modules/vpc, modules/eks, modules/rabbitmq).
#
# Use (local state, once):
#   terraform -chdir=terraform init && terraform -chdir=terraform apply
#   terraform -chdir=terraform output   # bucket name and key alias for backend.hcl

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  bucket = "${var.bucket_prefix}-${data.aws_caller_identity.current.account_id}-${var.region}"
}

resource "aws_kms_key" "state" {
  description             = "Encrypts Cargo's Terraform state"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # Key policies name their own key as "*"; use is granted through IAM.
      Sid       = "AccountAdministersAndGrantsThroughIam"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "state" {
  name          = "alias/${var.bucket_prefix}"
  target_key_id = aws_kms_key.state.key_id
}

resource "aws_s3_bucket" "state" {
  # checkov:skip=CKV_AWS_144:State is restorable from the versioned bucket; a replica in a second region doubles the cost of a bucket that is rebuilt in minutes.
  # checkov:skip=CKV_AWS_18:Access logging would need a second bucket; CloudTrail data events are the audit trail for state reads and writes.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events of state writes.
  bucket = local.bucket

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.state]
}

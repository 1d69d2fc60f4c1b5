output "state_bucket" {
  description = "Name of the S3 bucket for the environments' state: the bucket of their backend.hcl."
  value       = aws_s3_bucket.state.bucket
}

output "state_kms_key_alias" {
  description = "Alias of the KMS key encrypting the state: the kms_key_id of the environments' backend.hcl."
  value       = aws_kms_alias.state.name
}

output "state_kms_key_arn" {
  description = "ARN of the KMS key encrypting the state, for the IAM policies of whoever runs Terraform."
  value       = aws_kms_key.state.arn
}

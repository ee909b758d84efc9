"""The Pulumi state backend bootstrap (S3 bucket + KMS key); see bootstrap.py."""

"""On-demand prices (USD) the cost model uses, per region. Data only: one place to update.

Source: the public AWS pricing pages / Price List API offer files (AmazonEC2, AmazonRDS,
AmazonElastiCache, AWSELB, AmazonVPC, AWSSecretsManager, AmazonCloudWatch), on-demand, Linux,
Single-AZ unless noted. Transcribed 2026-11-25 without live access to the Price List API from this
machine: check against https://pricing.us-east-1.amazonaws.com before quoting to the cent.
Hourly prices are per hour; storage per GB-month; per-item prices per month.

Usage prices (transcribed 2026-12-01 from the same pages, same caveat): `internet_egress_gb` is
EC2 data transfer out to the internet, first 10 TB/month tier, after the 100 GB/month the account
gets free (`FREE_EGRESS_GB_MONTH`, https://aws.amazon.com/ec2/pricing/on-demand/ "Data Transfer");
`alb_lcu_hourly` per load balancer capacity unit-hour (https://aws.amazon.com/elasticloadbalancing/
pricing/); `nat_gateway_gb` per GB a NAT gateway processes (https://aws.amazon.com/vpc/pricing/);
`log_ingestion_gb` CloudWatch Logs standard ingestion (https://aws.amazon.com/cloudwatch/pricing/).

Parameter Store (transcribed 2026-12-02 from https://aws.amazon.com/systems-manager/pricing/,
"Parameter Store"): standard parameters carry no storage charge and their API calls are free at
standard throughput; an advanced parameter costs $0.05 a month. SecureString values use the
AWS managed key `aws/ssm`, which has no monthly charge (https://aws.amazon.com/kms/pricing/).
"""

from __future__ import annotations

from typing import Any

HOURS_PER_MONTH = 730

PRICES: dict[str, dict[str, Any]] = {
    "eu-west-1": {
        "ec2_hourly": {
            "t4g.nano": 0.0046,
            "t4g.micro": 0.0092,
            "t4g.small": 0.0184,
            "t4g.medium": 0.0368,
            "t4g.large": 0.0736,
            "t4g.xlarge": 0.1472,
            "m7g.medium": 0.0455,
            "m7g.large": 0.0910,
            "m7g.xlarge": 0.1820,
            "c7g.medium": 0.0404,
            "c7g.large": 0.0808,
            "c7g.xlarge": 0.1616,
            "c7g.2xlarge": 0.3232,
        },
        # RDS for PostgreSQL, Single-AZ; Multi-AZ (one standby) is twice the price.
        "rds_hourly": {
            "db.t4g.micro": 0.018,
            "db.t4g.small": 0.036,
            "db.t4g.medium": 0.072,
            "db.t4g.large": 0.144,
            "db.m7g.large": 0.183,
            "db.m7g.xlarge": 0.366,
            "db.r7g.large": 0.263,
            "db.r7g.xlarge": 0.526,
        },
        "rds_storage_gb_month": {"gp3": 0.127, "gp2": 0.127, "io1": 0.138},
        # ElastiCache node-based, Redis OSS prices; Valkey nodes are 20% cheaper.
        "cache_hourly": {
            "cache.t4g.micro": 0.018,
            "cache.t4g.small": 0.036,
            "cache.t4g.medium": 0.073,
            "cache.m7g.large": 0.176,
            "cache.r7g.large": 0.242,
        },
        "ebs_gb_month": {"gp3": 0.088, "gp2": 0.11},
        "nat_gateway_hourly": 0.048,
        "alb_hourly": 0.0252,
        "interface_endpoint_hourly": 0.011,
        "internet_egress_gb": 0.09,
        "alb_lcu_hourly": 0.008,
        "nat_gateway_gb": 0.048,
        "log_ingestion_gb": 0.57,
    },
    "us-east-1": {
        "ec2_hourly": {
            "t4g.nano": 0.0042,
            "t4g.micro": 0.0084,
            "t4g.small": 0.0168,
            "t4g.medium": 0.0336,
            "t4g.large": 0.0672,
            "t4g.xlarge": 0.1344,
            "m7g.medium": 0.0408,
            "m7g.large": 0.0816,
            "m7g.xlarge": 0.1632,
            "c7g.medium": 0.0363,
            "c7g.large": 0.0725,
            "c7g.xlarge": 0.1450,
            "c7g.2xlarge": 0.2900,
        },
        "rds_hourly": {
            "db.t4g.micro": 0.016,
            "db.t4g.small": 0.032,
            "db.t4g.medium": 0.065,
            "db.t4g.large": 0.129,
            "db.m7g.large": 0.168,
            "db.m7g.xlarge": 0.336,
            "db.r7g.large": 0.239,
            "db.r7g.xlarge": 0.478,
        },
        "rds_storage_gb_month": {"gp3": 0.115, "gp2": 0.115, "io1": 0.125},
        "cache_hourly": {
            "cache.t4g.micro": 0.016,
            "cache.t4g.small": 0.032,
            "cache.t4g.medium": 0.065,
            "cache.m7g.large": 0.158,
            "cache.r7g.large": 0.219,
        },
        "ebs_gb_month": {"gp3": 0.08, "gp2": 0.10},
        "nat_gateway_hourly": 0.045,
        "alb_hourly": 0.0225,
        "interface_endpoint_hourly": 0.01,
        "internet_egress_gb": 0.09,
        "alb_lcu_hourly": 0.008,
        "nat_gateway_gb": 0.045,
        "log_ingestion_gb": 0.50,
    },
}

# The same in every region.
PUBLIC_IPV4_HOURLY = 0.005
SECRET_MONTHLY = 0.40
SSM_PARAMETER_MONTHLY = {"Standard": 0.0, "Advanced": 0.05}
ALARM_MONTHLY = 0.10
KMS_KEY_MONTHLY = 1.00
VALKEY_DISCOUNT = 0.8
DEFAULT_ROOT_VOLUME_GB = 8
FREE_EGRESS_GB_MONTH = 100
# Average days in a month (730 h / 24): usage per day becomes usage per month with the same factor
# the hourly prices use.
DAYS_PER_MONTH = HOURS_PER_MONTH / 24

"""The coordinator's ACM certificate, issued for `domain` and DNS-validated in its Route 53 zone.

A component of its own beside the load balancer, not inside it: a deep pause deletes the load
balancer, and a certificate inside it went with it and was reissued on resume (a new ARN and a new
DNS validation, minutes before HTTPS answers). Certificates cost nothing, so it stays through
every pause; the HTTPS listener takes its ARN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class CoordinatorCertificateArgs:
    domain: str
    hosted_zone_id: str
    tags: Mapping[str, str]
    # Where a stack created before this component kept the certificate (the load balancer's URN):
    # aliased, so updating such a stack moves it instead of replacing it.
    moved_from: pulumi.Input[str] | None = None


class CoordinatorCertificate(pulumi.ComponentResource):
    # The certificate's ARN once ACM has issued it: the listener never serves one still pending.
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: CoordinatorCertificateArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("streamr:coordinator:Certificate", name, None, opts)
        aliases = [pulumi.Alias(parent=args.moved_from)] if args.moved_from is not None else None
        child = pulumi.ResourceOptions(parent=self, aliases=aliases)
        certificate = aws.acm.Certificate(
            name,
            domain_name=args.domain,
            validation_method="DNS",
            tags={**args.tags, "Name": name},
            opts=child,
        )
        # One name, so one validation record (ACM's options list has one entry per name).
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-validation",
            zone_id=args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-validated",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        self.arn = validation.certificate_arn
        self.register_outputs({"arn": self.arn})

"""The SRS origin's public address: an Elastic IP of its own, allocated before anything needs it.

The coordinator must know where the origin is (the streamer page's RTMP publish URL, the viewers'
fallback in `/api/v1/play`), and the origin must know where the coordinator is (its hooks). The
address breaks that cycle: it exists before both, the coordinator is told its URLs, and the origin
host is associated with it afterwards. The URL a streamer typed into OBS keeps working after
every pause: without a hosted zone the URLs hold the Elastic IP, which outlives a deep pause (it
bills $3.65/month, attached or not). With the domain's Route 53 zone they hold a name,
`live.<domain>`, pointed at the Elastic IP; a deep pause then releases the address and the record,
and the resume points the name at a new address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from srs import render


@dataclass
class OriginAddressArgs:
    tags: Mapping[str, str]
    # The origin's DNS name and the Route 53 zone to keep it in (both or neither).
    hostname: str | None = None
    hosted_zone_id: str | None = None
    # False on a deep pause with a hostname: nothing holds an address until the resume.
    hold_address: bool = True
    # The coordinator's https URL on a stack with HTTPS: viewers play the origin through it
    # (components/srs_origin.py's rule on its listener), since a browser refuses http media on
    # an https page. None: they play from the origin's own host.
    https_play_url: str | None = None


class OriginAddress(pulumi.ComponentResource):
    # None while a deep pause released the address (hold_address False).
    allocation_id: pulumi.Output[str] | None
    # Where the origin answers: its hostname, else the Elastic IP.
    host: pulumi.Output[str]
    # rtmp://<host>/live: where OBS publishes (stream key as `<name>?key=<key>`).
    publish_url: pulumi.Output[str]
    # The HTTP base of HLS and HTTP-FLV, the viewers' fallback: http://<host>:8080, or the
    # coordinator's https URL with HTTPS.
    play_url: pulumi.Output[str]
    hls_url_template: pulumi.Output[str]
    flv_url_template: pulumi.Output[str]

    def __init__(
        self, name: str, args: OriginAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:streaming:OriginAddress", name, None, opts)
        if (args.hostname is None) != (args.hosted_zone_id is None):
            raise ValueError("an origin hostname needs its hosted zone, and a zone a hostname")
        if args.hostname is None and not args.hold_address:
            raise ValueError("without a hostname the address is the URL: it must be held")
        child = pulumi.ResourceOptions(parent=self)
        self.allocation_id = None
        self.host = pulumi.Output.from_input(args.hostname or "")
        if args.hold_address:
            address = aws.ec2.Eip(
                f"{name}-eip",
                domain="vpc",
                tags={**args.tags, "Name": f"{name}-eip"},
                opts=child,
            )
            self.allocation_id = address.allocation_id
            if args.hostname is None:
                self.host = address.public_ip
            if args.hosted_zone_id is not None and args.hostname is not None:
                aws.route53.Record(
                    f"{name}-dns",
                    zone_id=args.hosted_zone_id,
                    name=args.hostname,
                    type="A",
                    # Short: after a resume the name points at a new address.
                    ttl=60,
                    records=[address.public_ip],
                    opts=child,
                )
        self.publish_url = pulumi.Output.concat("rtmp://", self.host, f"/{render.APP}")
        if args.https_play_url is not None:
            self.play_url = pulumi.Output.from_input(args.https_play_url)
        else:
            self.play_url = pulumi.Output.concat("http://", self.host, f":{render.HTTP_PORT}")
        self.hls_url_template = pulumi.Output.concat(
            self.play_url, f"/{render.APP}/{{stream}}.m3u8"
        )
        self.flv_url_template = pulumi.Output.concat(self.play_url, f"/{render.APP}/{{stream}}.flv")
        self.register_outputs(
            {
                "host": self.host,
                "allocationId": self.allocation_id,
                "publishUrl": self.publish_url,
                "playUrl": self.play_url,
                "hlsUrlTemplate": self.hls_url_template,
                "flvUrlTemplate": self.flv_url_template,
            }
        )

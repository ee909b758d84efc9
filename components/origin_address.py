"""The SRS origin's public address: an Elastic IP of its own, allocated before anything needs it.

The coordinator must know where the origin is (the streamer page's RTMP publish URL, the viewers'
fallback in `/api/v1/play`), and the origin must know where the coordinator is (its hooks). The
address breaks that cycle: it exists before both, the coordinator is told its URLs, and the origin
host is associated with it afterwards. It also outlives a deep pause, which leaves the origin
host out: the URL a streamer typed into OBS keeps working after every pause.
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


class OriginAddress(pulumi.ComponentResource):
    public_ip: pulumi.Output[str]
    allocation_id: pulumi.Output[str]
    # rtmp://<ip>/live: where OBS publishes (stream key as `<name>?key=<key>`).
    publish_url: pulumi.Output[str]
    # http://<ip>:8080: the HTTP base of HLS and HTTP-FLV, the viewers' fallback.
    play_url: pulumi.Output[str]
    hls_url_template: pulumi.Output[str]
    flv_url_template: pulumi.Output[str]

    def __init__(
        self, name: str, args: OriginAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:streaming:OriginAddress", name, None, opts)
        address = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            tags={**args.tags, "Name": f"{name}-eip"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.public_ip = address.public_ip
        self.allocation_id = address.allocation_id
        self.publish_url = pulumi.Output.concat("rtmp://", address.public_ip, f"/{render.APP}")
        self.play_url = pulumi.Output.concat("http://", address.public_ip, f":{render.HTTP_PORT}")
        self.hls_url_template = pulumi.Output.concat(
            self.play_url, f"/{render.APP}/{{stream}}.m3u8"
        )
        self.flv_url_template = pulumi.Output.concat(self.play_url, f"/{render.APP}/{{stream}}.flv")
        self.register_outputs(
            {
                "publicIp": self.public_ip,
                "allocationId": self.allocation_id,
                "publishUrl": self.publish_url,
                "playUrl": self.play_url,
                "hlsUrlTemplate": self.hls_url_template,
                "flvUrlTemplate": self.flv_url_template,
            }
        )

"""The computed outputs AWS would return for a created resource (ids, ARNs, endpoints...).

Deterministic per resource, so runs compare equal; used by the harness in update mode.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offline.provider_rules import NAME_RULES, RANDOM_SUFFIX_LENGTH, auto_name
from offline.sdk_schema import accepts_property, has_output

ACCOUNT_ID = "123456789012"

_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/route:Route": "r-rtb",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/instance:Instance": "i",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/networkInterface:NetworkInterface": "eni",
    "aws:ebs/volume:Volume": "vol",
    "aws:ec2/keyPair:KeyPair": "key",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}


def digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("::".join(parts).encode()).hexdigest()[:length]


def synthesise(
    type_: str, name: str, inputs: dict[str, Any], region: str, incarnation: int = 1
) -> tuple[str, dict[str, Any]]:
    """A deterministic id and the computed outputs AWS would return for this resource.

    `incarnation` counts the times the resource was created (offline/lifecycle.py): a resource
    created again gets a new identity (id, auto-name, addresses), as in AWS.
    """
    computed: dict[str, Any] = {}
    # The first incarnation keeps the name alone as its seed, so plain runs stay as they were.
    seed = name if incarnation == 1 else f"{name}#{incarnation}"
    rule = NAME_RULES.get(type_)
    naming = rule.property if rule is not None else "name"
    if not inputs.get(naming) and (
        rule.auto_named if rule is not None else accepts_property(type_, "name")
    ):
        # Pulumi's auto-naming: the logical name plus a random suffix.
        suffix = digest(type_, seed, length=RANDOM_SUFFIX_LENGTH)
        computed[naming] = auto_name(rule, name, suffix) if rule else f"{name}-{suffix}"
    physical_name = inputs.get(naming) or computed.get(naming) or name
    prefix = _ID_PREFIXES.get(type_)
    resource_id = f"{prefix}-{digest(type_, seed)}" if prefix else physical_name
    module, kind = _service_and_kind(type_)
    if has_output(type_, "arn"):
        computed["arn"] = f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{kind}/{resource_id}"
    if has_output(type_, "tags_all"):
        computed["tagsAll"] = inputs.get("tags") or {}
    special = _COMPUTED.get(type_)
    if special is not None:
        context = _Context(type_, seed, resource_id, physical_name, inputs, region)
        computed.update(special(context))
        resource_id = computed.pop("id", resource_id)
    return resource_id, computed


@dataclass(frozen=True)
class _Context:
    type: str
    # The resource's name, with its incarnation after the first: what its random parts derive from.
    seed: str
    id: str
    physical_name: str
    inputs: dict[str, Any]
    region: str

    def digest(self, length: int = 12) -> str:
        return digest(self.type, self.seed, length=length)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def _rds_instance(c: _Context) -> dict[str, Any]:
    identifier = c.physical_name
    port = int(c.inputs.get("port") or 5432)
    address = f"{identifier}.c{c.digest(11)}.{c.region}.rds.amazonaws.com"
    computed: dict[str, Any] = {
        "id": f"db-{c.digest(26).upper()}",
        "identifier": identifier,
        "address": address,
        "endpoint": f"{address}:{port}",
        "port": port,
        "resourceId": f"db-{c.digest(26).upper()}",
        "arn": c.arn("rds", f"db:{identifier}"),
        "hostedZoneId": "Z29XKXDKYMONMX",
    }
    if c.inputs.get("manageMasterUserPassword"):
        computed["masterUserSecrets"] = [
            {
                "secretArn": c.arn("secretsmanager", f"secret:rds!db-{c.digest(36)}-{c.digest(6)}"),
                "secretStatus": "active",
                "kmsKeyId": c.arn("kms", f"key/{c.digest(36)}"),
            }
        ]
    return computed


def _replication_group(c: _Context) -> dict[str, Any]:
    group_id = c.physical_name
    zone = f"{c.digest(6)}.{c.region}.cache.amazonaws.com"
    nodes = int(c.inputs.get("numCacheClusters") or 1)
    return {
        "id": group_id,
        "replicationGroupId": group_id,
        "arn": c.arn("elasticache", f"replicationgroup:{group_id}"),
        "primaryEndpointAddress": f"master.{group_id}.{zone}",
        "readerEndpointAddress": f"replica.{group_id}.{zone}",
        "port": int(c.inputs.get("port") or 6379),
        "memberClusters": [f"{group_id}-{index:03d}" for index in range(1, nodes + 1)],
    }


def _ec2_instance(c: _Context) -> dict[str, Any]:
    octets = int(c.digest(4), 16)
    private_ip = f"10.0.{octets % 250}.{octets // 256 % 250 + 4}"
    computed = {
        "privateIp": private_ip,
        "privateDns": f"ip-{private_ip.replace('.', '-')}.{c.region}.compute.internal",
        "primaryNetworkInterfaceId": f"eni-{c.digest()}",
        "instanceState": "running",
        "arn": c.arn("ec2", f"instance/{c.id}"),
    }
    if c.inputs.get("associatePublicIpAddress"):
        public_ip = f"203.0.113.{octets % 250 + 1}"
        computed["publicIp"] = public_ip
        computed["publicDns"] = (
            f"ec2-{public_ip.replace('.', '-')}.{c.region}.compute.amazonaws.com"
        )
    return computed


def _public_ip(c: _Context) -> dict[str, Any]:
    return {"publicIp": f"198.51.100.{int(c.digest(4), 16) % 250 + 1}", "allocationId": c.id}


def _nat_gateway(c: _Context) -> dict[str, Any]:
    return {
        "publicIp": f"198.51.100.{int(c.digest(4), 16) % 250 + 1}",
        "networkInterfaceId": f"eni-{c.digest()}",
    }


def _log_group(c: _Context) -> dict[str, Any]:
    return {"id": c.physical_name, "arn": c.arn("logs", f"log-group:{c.physical_name}")}


def _iam_role(c: _Context) -> dict[str, Any]:
    return {
        "id": c.physical_name,
        "arn": c.arn("iam", f"role/{c.physical_name}", regional=False),
        "uniqueId": f"AROA{c.digest(17).upper()}",
    }


def _iam_policy(c: _Context) -> dict[str, Any]:
    arn = c.arn("iam", f"policy/{c.physical_name}", regional=False)
    return {"id": arn, "arn": arn, "policyId": f"ANPA{c.digest(17).upper()}"}


def _instance_profile(c: _Context) -> dict[str, Any]:
    arn = c.arn("iam", f"instance-profile/{c.physical_name}", regional=False)
    return {"id": c.physical_name, "arn": arn, "uniqueId": f"AIPA{c.digest(17).upper()}"}


def _ssm_parameter(c: _Context) -> dict[str, Any]:
    """A hierarchical name's leading slash is the ARN's separator: `parameter/a/b`, not `//a/b`."""
    name = c.physical_name
    return {"arn": c.arn("ssm", f"parameter/{name.removeprefix('/')}")}


def _secret(c: _Context) -> dict[str, Any]:
    arn = c.arn("secretsmanager", f"secret:{c.physical_name}-{c.digest(6)}")
    return {"id": arn, "arn": arn}


def _load_balancer(c: _Context) -> dict[str, Any]:
    suffix = f"app/{c.physical_name}/{c.digest(16)}"
    return {
        "arn": c.arn("elasticloadbalancing", f"loadbalancer/{suffix}"),
        "arnSuffix": suffix,
        "dnsName": f"{c.physical_name}-{int(c.digest(8), 16)}.{c.region}.elb.amazonaws.com",
        "zoneId": "Z32O12XQLNTSW2",
    }


def _certificate(c: _Context) -> dict[str, Any]:
    # ACM's DNS validation: one CNAME per name, under the name, pointing into acm-validations.aws.
    domain = c.inputs["domainName"]
    return {
        "arn": c.arn("acm", f"certificate/{_uuid(c.digest(32))}"),
        "status": "PENDING_VALIDATION",
        "domainValidationOptions": [
            {
                "domainName": domain,
                "resourceRecordName": f"_{c.digest(32)}.{domain}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{c.digest(32)[::-1]}.abcdefghij.acm-validations.aws.",
            }
        ],
    }


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def _route53_record(c: _Context) -> dict[str, Any]:
    fqdn = str(c.inputs["name"]).rstrip(".")
    return {"id": f"{c.inputs['zoneId']}_{fqdn}_{c.inputs['type']}", "fqdn": fqdn}


def _certificate_validation(c: _Context) -> dict[str, Any]:
    return {"id": str(c.inputs["certificateArn"])}


def _target_group(c: _Context) -> dict[str, Any]:
    suffix = f"targetgroup/{c.physical_name}/{c.digest(16)}"
    return {"arn": c.arn("elasticloadbalancing", suffix), "arnSuffix": suffix}


def _ecr_repository(c: _Context) -> dict[str, Any]:
    return {
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{c.region}.amazonaws.com/{c.physical_name}",
        "registryId": ACCOUNT_ID,
        "arn": c.arn("ecr", f"repository/{c.physical_name}"),
    }


def _sns_topic(c: _Context) -> dict[str, Any]:
    arn = c.arn("sns", c.physical_name)
    return {"id": arn, "arn": arn}


def _sqs_queue(c: _Context) -> dict[str, Any]:
    url = f"https://sqs.{c.region}.amazonaws.com/{ACCOUNT_ID}/{c.physical_name}"
    return {"id": url, "url": url, "arn": c.arn("sqs", c.physical_name), "name": c.physical_name}


def _lambda_function(c: _Context) -> dict[str, Any]:
    arn = c.arn("lambda", f"function:{c.physical_name}")
    return {
        "name": c.physical_name,
        "arn": arn,
        "qualifiedArn": f"{arn}:1",
        "invokeArn": (
            f"arn:aws:apigateway:{c.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        ),
        "version": "1",
    }


def _function_url(c: _Context) -> dict[str, Any]:
    url_id = c.digest(32)
    return {"functionUrl": f"https://{url_id}.lambda-url.{c.region}.on.aws/", "urlId": url_id}


def _launch_template(c: _Context) -> dict[str, Any]:
    return {"latestVersion": 1, "defaultVersion": 1}


def _container_image(c: _Context) -> dict[str, Any]:
    # The registry's digest follows what was built: different inputs, a different digest.
    built = hashlib.sha256(json.dumps(c.inputs, sort_keys=True, default=str).encode()).hexdigest()
    tags = c.inputs.get("tags") or []
    return {"digest": f"sha256:{built}", "ref": f"{tags[0]}@sha256:{built}" if tags else ""}


def _random_password(c: _Context) -> dict[str, Any]:
    length = int(c.inputs.get("length") or 16)
    alphabet = string.ascii_letters + string.digits
    if c.inputs.get("special", True):
        alphabet += c.inputs.get("overrideSpecial") or "!#$%&*()-_=+[]{}<>:?"
    seed = hashlib.sha256(f"{c.type}::{c.seed}".encode()).digest()
    result = "".join(
        alphabet[seed[index % len(seed)] * (index + 1) % len(alphabet)] for index in range(length)
    )
    return {"id": "none", "result": result, "bcryptHash": f"$2a$10${c.digest(53)}"}


def _random_id(c: _Context) -> dict[str, Any]:
    byte_length = int(c.inputs.get("byteLength") or 8)
    hex_value = hashlib.sha256(f"{c.type}::{c.seed}".encode()).hexdigest()[: byte_length * 2]
    return {"id": hex_value, "hex": hex_value, "dec": str(int(hex_value, 16))}


_COMPUTED: dict[str, Callable[[_Context], dict[str, Any]]] = {
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:ec2/eip:Eip": _public_ip,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/policy:Policy": _iam_policy,
    "aws:iam/instanceProfile:InstanceProfile": _instance_profile,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:acm/certificateValidation:CertificateValidation": _certificate_validation,
    "aws:route53/record:Record": _route53_record,
    "aws:ecr/repository:Repository": _ecr_repository,
    "aws:sns/topic:Topic": _sns_topic,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:lambda/function:Function": _lambda_function,
    "aws:lambda/functionUrl:FunctionUrl": _function_url,
    "random:index/randomPassword:RandomPassword": _random_password,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "docker-build:index:Image": _container_image,
    "random:index/randomId:RandomId": _random_id,
}


def _service_and_kind(type_: str) -> tuple[str, str]:
    package_module, kind = type_.split(":")[1:3]
    return package_module.split("/")[0], kind[:1].lower() + kind[1:]

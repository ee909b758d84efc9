"""Run the Pulumi program, or one component, offline under Pulumi's mocks.

The one place that knows how: infrastructure tests, the policy harness, the cost report and
`make plan` all call `run_program` / `run_component` and read the returned `ProgramRun`.

- Config comes from `stacks/Pulumi.<stack>.yaml`, passed to the program as the strings the Pulumi
  CLI would pass, with `overrides` applied on top.
- Update mode (`preview=False`) answers every resource with its inputs plus synthesised computed
  outputs (ids, ARNs, endpoints, DNS names), deterministic per resource, like `pulumi up`.
- Preview mode (`preview=True`) answers with the inputs only and no id, so computed outputs are
  unknown, like `pulumi preview`; the program must cope with that.
- Invokes (availability zones, SSM parameters, caller identity...) get realistic answers.
- Each run gets a fresh event loop, mock monitor, root stack and config, so a process (a test
  session) may run the program any number of times.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import importlib
import inspect
import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from ops.stack_file import stack_config

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
ACCOUNT_ID = "123456789012"


class _Unknown:
    """A value only the cloud provider can know, as in a real preview."""

    def __repr__(self) -> str:
        return "(known after apply)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unknown)

    def __hash__(self) -> int:
        return 0


UNKNOWN = _Unknown()


class OfflineHarnessError(Exception):
    """The harness itself cannot go on (unknown stack, invoke it has no answer for...)."""


class ProgramFailed(Exception):
    """The program raised; `__cause__` is its exception, `resources` what registered before."""

    def __init__(self, cause: BaseException, resources: list[Resource]):
        super().__init__(str(cause))
        self.resources = resources


@dataclass(frozen=True)
class Resource:
    """One registered resource as the engine would see it (camelCase wire names)."""

    type: str
    name: str
    urn: str
    id: str | None
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    secret_inputs: frozenset[str] = frozenset()
    ignore_changes: frozenset[str] = frozenset()

    @property
    def taggable(self) -> bool:
        """True when the resource type accepts `tags` (read from its Pulumi SDK class)."""
        return _accepts_property(self.type, "tags")


@dataclass(frozen=True)
class ProgramRun:
    """What one evaluation registered and exported; `outputs` resolved, UNKNOWN where unknown."""

    stack: str
    preview: bool
    config: dict[str, str]
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str] = field(default_factory=frozenset)

    def of_type(self, type_: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        if len(found) != 1:
            names = ", ".join(resource.name for resource in found) or "none"
            raise AssertionError(f"expected exactly one {type_}, found {len(found)}: {names}")
        return found[0]

    def named(self, name: str) -> Resource:
        found = [resource for resource in self.resources if resource.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected exactly one resource named {name}, found {len(found)}")
        return found[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [resource for resource in self.resources if resource.parent == parent.urn]

    def by_id(self, resource_id: Any) -> Resource | None:
        """The resource a synthesised id (update mode) belongs to, to follow references."""
        if not isinstance(resource_id, str):
            return None
        return next((r for r in self.resources if r.custom and r.id == resource_id), None)


def run_program(
    stack: str = "dev", overrides: Mapping[str, Any] | None = None, preview: bool = False
) -> ProgramRun:
    """Run the whole program (`program.build` over the stack's typed config)."""

    def whole_program() -> Mapping[str, Any]:
        import program
        from stack_config import StackConfig

        return program.build(StackConfig.load())

    return run_component(whole_program, stack=stack, overrides=overrides, preview=preview)


def run_component(
    fn: Callable[[], Mapping[str, Any] | None],
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run `fn` as a Pulumi program; a mapping it returns becomes the stack outputs."""
    config = stack_config(stack, overrides)
    region = config.get("aws:region", "eu-west-1")
    recorder = _Recorder(_OfflineMocks(region=region, preview=preview))
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    async def program() -> None:
        exported = fn() or {}
        for name, value in exported.items():
            pulumi.export(name, value)
        for name, value in exported.items():
            outputs[name], secret = await _resolve(value)
            if secret:
                secret_outputs.add(name)

    loop = asyncio.new_event_loop()
    # A failed run leaves futures holding the same exception; it is raised once, as ProgramFailed.
    loop.set_exception_handler(lambda _loop, _context: None)
    loop.set_default_executor(_InlineExecutor())
    asyncio.set_event_loop(loop)
    try:
        settings.reset_options(project=PROJECT, stack=stack, preview=preview)
        pulumi.runtime.set_all_config(config, secret_keys=[])
        pulumi_mocks.set_mocks(
            recorder.mocks, project=PROJECT, stack=stack, preview=preview, monitor=recorder
        )
        try:
            loop.run_until_complete(run_pulumi_func(program))
        except Exception as error:
            raise ProgramFailed(error, recorder.registered()) from error
    finally:
        settings.reset_options(project=None, stack=None)
        pulumi.runtime.set_all_config({}, secret_keys=[])
        loop.close()
        asyncio.set_event_loop(None)
    return ProgramRun(
        stack=stack,
        preview=preview,
        config=config,
        resources=recorder.registered(),
        outputs=outputs,
        secret_outputs=frozenset(secret_outputs),
    )


async def _resolve(value: Any) -> tuple[Any, bool]:
    output = pulumi.Output.from_input(value)
    known = await output.is_known()
    secret = await output.is_secret()
    resolved = await output.future(with_unknowns=True) if known else UNKNOWN
    return _plain(resolved), secret


def _plain(value: Any) -> Any:
    """Mock-side values with Pulumi's unknown and secret markers made plain."""
    if isinstance(value, pulumi.output.Unknown) or value == rpc.UNKNOWN:
        return UNKNOWN
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        # The wire carries every number as a double; 5432.0 was written as 5432.
        return int(value)
    return value


# -- the mock engine --------------------------------------------------------------------------


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the runtime's RPCs to the mock monitor inline, on the loop's own thread.

    Worker threads would each leave an event loop behind (the mock monitor creates one per
    thread) that nothing closes; inline calls also make the registration order deterministic.
    (A ThreadPoolExecutor only because asyncio accepts nothing else; it never starts a thread.)
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as a thread would
            future.set_exception(error)
        return future


class _Recorder(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping each resource's inputs and parent (mocks never see it)."""

    def __init__(self, mocks: _OfflineMocks):
        super().__init__(mocks)
        self.recorded: dict[str, Resource] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        outputs = self.resources[response.urn].state
        secret_outputs = set(request.additionalSecretOutputs) & set(outputs)
        if secret_outputs:
            # The engine, not the SDK, marks `additional_secret_outputs` secret; so must we.
            outputs = {
                key: rpc.wrap_rpc_secret(value) if key in secret_outputs else value
                for key, value in outputs.items()
            }
            serialized = _sync_await(rpc.serialize_properties(outputs, {}))
            response = resource_pb2.RegisterResourceResponse(
                urn=response.urn, id=response.id, object=serialized
            )
        self.recorded[response.urn] = Resource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            id=response.id or None,
            custom=request.custom,
            inputs=_plain(inputs),
            outputs=_plain(outputs),
            parent=None if "::pulumi:pulumi:Stack::" in request.parent else request.parent,
            secret_inputs=frozenset(
                key for key, value in inputs.items() if rpc.is_rpc_secret(value)
            ),
            ignore_changes=frozenset(request.ignoreChanges),
        )
        return response

    def registered(self) -> list[Resource]:
        return list(self.recorded.values())


class _OfflineMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str, preview: bool):
        self.region = region
        self.preview = preview

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom:
            return "", {}
        if self.preview:
            # As in `pulumi preview`: inputs are known, the id and computed outputs are not.
            return "", dict(args.inputs)
        resource_id, computed = _synthesise(args.typ, args.name, args.inputs, self.region)
        return resource_id, {**args.inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        answer = _INVOKES.get(args.token)
        if answer is None:
            raise OfflineHarnessError(
                f"the offline harness has no answer for invoke {args.token}; "
                "add one to _INVOKES in offline/harness.py"
            )
        return answer(dict(args.args), self.region), []


# -- synthesised computed outputs ---------------------------------------------------------------

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


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("::".join(parts).encode()).hexdigest()[:length]


def _synthesise(
    type_: str, name: str, inputs: dict[str, Any], region: str
) -> tuple[str, dict[str, Any]]:
    """A deterministic id and the computed outputs AWS would return for this resource."""
    computed: dict[str, Any] = {}
    if _accepts_property(type_, "name") and not inputs.get("name"):
        # Pulumi's auto-naming: the logical name plus a random suffix.
        computed["name"] = f"{name}-{_digest(type_, name, length=7)}"
    physical_name = inputs.get("name") or computed.get("name") or name
    prefix = _ID_PREFIXES.get(type_)
    resource_id = f"{prefix}-{_digest(type_, name)}" if prefix else physical_name
    module, kind = _service_and_kind(type_)
    if _has_output(type_, "arn"):
        computed["arn"] = f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{kind}/{resource_id}"
    if _has_output(type_, "tags_all"):
        computed["tagsAll"] = inputs.get("tags") or {}
    special = _COMPUTED.get(type_)
    if special is not None:
        context = _Context(type_, name, resource_id, physical_name, inputs, region)
        computed.update(special(context))
        resource_id = computed.pop("id", resource_id)
    return resource_id, computed


@dataclass(frozen=True)
class _Context:
    type: str
    name: str
    id: str
    physical_name: str
    inputs: dict[str, Any]
    region: str

    def digest(self, length: int = 12) -> str:
        return _digest(self.type, self.name, length=length)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def _rds_instance(c: _Context) -> dict[str, Any]:
    identifier = c.inputs.get("identifier") or f"{c.name}-{c.digest(7)}"
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
    group_id = c.inputs.get("replicationGroupId") or f"{c.name}-{c.digest(7)}"
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
    seed = hashlib.sha256(f"{c.type}::{c.name}".encode()).digest()
    result = "".join(
        alphabet[seed[index % len(seed)] * (index + 1) % len(alphabet)] for index in range(length)
    )
    return {"id": "none", "result": result, "bcryptHash": f"$2a$10${c.digest(53)}"}


def _random_id(c: _Context) -> dict[str, Any]:
    byte_length = int(c.inputs.get("byteLength") or 8)
    hex_value = hashlib.sha256(f"{c.type}::{c.name}".encode()).hexdigest()[: byte_length * 2]
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
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:ecr/repository:Repository": _ecr_repository,
    "aws:sns/topic:Topic": _sns_topic,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:lambda/function:Function": _lambda_function,
    "random:index/randomPassword:RandomPassword": _random_password,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "docker-build:index:Image": _container_image,
    "random:index/randomId:RandomId": _random_id,
}


def _service_and_kind(type_: str) -> tuple[str, str]:
    package_module, kind = type_.split(":")[1:3]
    return package_module.split("/")[0], kind[:1].lower() + kind[1:]


@cache
def _resource_class(type_: str) -> type | None:
    """The Pulumi SDK class for a type token, e.g. aws:ec2/vpc:Vpc -> pulumi_aws.ec2.Vpc."""
    package, module_path, class_name = type_.split(":")
    module = module_path.split("/")[0]
    try:
        sdk = importlib.import_module(f"pulumi_{package.replace('-', '_')}")
    except ImportError:
        return None
    # Modules named like Python keywords get a trailing underscore (`lambda` -> `lambda_`).
    namespace = sdk if module == "index" else getattr(sdk, module, getattr(sdk, f"{module}_", None))
    return getattr(namespace, class_name, None)


@cache
def _accepts_property(type_: str, python_name: str) -> bool:
    cls = _resource_class(type_)
    if cls is None:
        return False
    return python_name in inspect.signature(cls._internal_init).parameters


@cache
def _has_output(type_: str, python_name: str) -> bool:
    cls = _resource_class(type_)
    return cls is not None and isinstance(getattr(cls, python_name, None), property)


# -- invokes ------------------------------------------------------------------------------------


def _availability_zones(args: dict[str, Any], region: str) -> dict[str, Any]:
    letters = "abc"
    return {
        "id": region,
        "region": region,
        "names": [f"{region}{letter}" for letter in letters],
        "zoneIds": [f"{region[:2]}{region.split('-')[1][0]}1-az{index}" for index in (1, 2, 3)],
        "groupNames": [region] * len(letters),
        "state": args.get("state", "available"),
    }


def _ssm_parameter(args: dict[str, Any], region: str) -> dict[str, Any]:
    name = args["name"]
    is_image = "/ami-" in name or name.endswith("-ami")
    value = f"ami-{_digest(name, region)}" if is_image else f"offline-value-of-{name}"
    return {
        "id": name,
        "name": name,
        "arn": f"arn:aws:ssm:{region}::parameter{name}",
        "type": "String",
        "value": value,
        "insecureValue": value,
        "version": 1,
        "withDecryption": args.get("withDecryption", True),
        "region": region,
    }


def _ami(args: dict[str, Any], region: str) -> dict[str, Any]:
    image_id = f"ami-{_digest(json.dumps(args, sort_keys=True), region)}"
    return {
        "id": image_id,
        "imageId": image_id,
        "architecture": "arm64",
        "name": "al2023-ami-2023.6-kernel-6.1-arm64",
        "rootDeviceName": "/dev/xvda",
        "virtualizationType": "hvm",
        "region": region,
    }


def _caller_identity(_args: dict[str, Any], _region: str) -> dict[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
        "userId": "AIDAOFFLINEOFFLINE",
    }


def _partition(_args: dict[str, Any], _region: str) -> dict[str, Any]:
    return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}


def _region(_args: dict[str, Any], region: str) -> dict[str, Any]:
    return {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


def _ecr_authorization_token(args: dict[str, Any], region: str) -> dict[str, Any]:
    registry = args.get("registryId") or ACCOUNT_ID
    password = f"offline-ecr-password-{_digest(registry, region)}"
    return {
        "id": region,
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "expiresAt": "2030-01-01T12:00:00Z",
        "password": password,
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{region}.amazonaws.com",
        "userName": "AWS",
        "region": region,
    }


def _elb_service_account(_args: dict[str, Any], region: str) -> dict[str, Any]:
    # The region's Elastic Load Balancing account (eu-west-1's real one; others synthesised).
    account = "156460612806" if region == "eu-west-1" else str(int(_digest(region), 16))[:12]
    return {"id": account, "arn": f"arn:aws:iam::{account}:root", "region": region}


def _policy_document(args: dict[str, Any], _region: str) -> dict[str, Any]:
    """Render `aws.iam.get_policy_document` the way AWS's provider does, so policies are real."""
    statements = []
    for statement in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if statement.get("sid"):
            rendered["Sid"] = statement["sid"]
        rendered["Effect"] = statement.get("effect") or "Allow"
        for key, wire in (("actions", "Action"), ("notActions", "NotAction")):
            if statement.get(key):
                rendered[wire] = _single_or_list(statement[key])
        for key, wire in (("resources", "Resource"), ("notResources", "NotResource")):
            if statement.get(key):
                rendered[wire] = _single_or_list(statement[key])
        for key, wire in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if statement.get(key):
                rendered[wire] = {
                    principal["type"]: _single_or_list(principal["identifiers"])
                    for principal in statement[key]
                }
        conditions: dict[str, dict[str, Any]] = {}
        for condition in statement.get("conditions") or []:
            conditions.setdefault(condition["test"], {})[condition["variable"]] = _single_or_list(
                condition["values"]
            )
        if conditions:
            rendered["Condition"] = conditions
        statements.append(rendered)
    document = {"Version": args.get("version") or "2012-10-17", "Statement": statements}
    text = json.dumps(document, indent=2)
    return {"id": _digest(text), "json": text, "minifiedJson": json.dumps(document)}


def _single_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else sorted(values)


_INVOKES: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:ssm/getParameter:getParameter": _ssm_parameter,
    "aws:ec2/getAmi:getAmi": _ami,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getRegion:getRegion": _region,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": _ecr_authorization_token,
    "aws:elb/getServiceAccount:getServiceAccount": _elb_service_account,
}

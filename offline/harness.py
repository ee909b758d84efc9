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
import concurrent.futures
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from offline.computed import synthesise
from offline.invokes import INVOKES
from offline.provider_rules import name_problems
from offline.sdk_schema import accepts_property
from ops.stack_file import stack_config

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
# What `stacks/Pulumi.prod.yaml` leaves to its operator (a domain they own, and its Route 53 zone
# or a certificate). An offline run of a stack without them fills them in with names RFC 2606
# reserves for documentation, which the stack config refuses everywhere else (a real `pulumi up`
# included), so a plan of the committed prod stack shows what a deploy creates and cannot be
# mistaken for one.
DOCUMENTATION_VALUES = {
    "streamr:domain": "stream.example.org",
    "streamr:hostedZoneId": "Z0DOCUMENTATION0EXAMPLE",
}


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


class ProviderRefused(Exception):
    """What `pulumi preview` would stop on: the provider or AWS refuses a resource's inputs."""


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
    # URNs of the resources it waits for (explicit `depends_on` plus those its inputs reference).
    dependencies: frozenset[str] = frozenset()
    protect: bool = False
    delete_before_replace: bool = False

    @property
    def taggable(self) -> bool:
        """True when the resource type accepts `tags` (read from its Pulumi SDK class)."""
        return accepts_property(self.type, "tags")


@dataclass(frozen=True)
class ProgramRun:
    """What one evaluation registered and exported; `outputs` resolved, UNKNOWN where unknown."""

    stack: str
    preview: bool
    config: dict[str, str]
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str] = field(default_factory=frozenset)
    # Config the harness filled in with documentation names (DOCUMENTATION_VALUES).
    documentation: dict[str, str] = field(default_factory=dict)

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
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    preview: bool = False,
    documentation_values: bool = True,
) -> ProgramRun:
    """Run the whole program (`program.build` over the stack's typed config).

    `documentation_values`: fill in what a prod stack leaves to its operator (see
    DOCUMENTATION_VALUES); False runs the stack exactly as its file and overrides say.
    """
    filled = documentation_for(stack_config(stack, overrides)) if documentation_values else {}
    exempt = frozenset(key.split(":", 1)[1] for key in filled)

    def whole_program() -> Mapping[str, Any]:
        import program
        from stack_config import StackConfig

        return program.build(StackConfig.load(documentation_keys=exempt))

    run = run_component(
        whole_program, stack=stack, overrides={**(overrides or {}), **filled}, preview=preview
    )
    return dataclasses.replace(run, documentation=filled)


def documentation_for(config: Mapping[str, str]) -> dict[str, str]:
    """The documentation values a prod stack without its operator's domain needs to evaluate."""
    if config.get("streamr:stage") != "prod" or config.get("streamr:domain"):
        return {}
    filled = {"streamr:domain": DOCUMENTATION_VALUES["streamr:domain"]}
    if not config.get("streamr:certificateArn") and not config.get("streamr:hostedZoneId"):
        filled["streamr:hostedZoneId"] = DOCUMENTATION_VALUES["streamr:hostedZoneId"]
    return filled


def run_component(
    fn: Callable[[], Mapping[str, Any] | None],
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run `fn` as a Pulumi program; a mapping it returns becomes the stack outputs."""
    config = stack_config(stack, overrides)
    region = config.get("aws:region", "eu-west-1")
    mocks = _OfflineMocks(region=region, preview=preview)
    recorder = _Recorder(mocks)
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
        if mocks.refused:
            # Every refusal at once, in registration order, as `pulumi preview` lists them.
            refused = ProviderRefused("; ".join(mocks.refused))
            raise ProgramFailed(refused, recorder.registered()) from refused
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
            dependencies=frozenset(request.dependencies),
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
        )
        return response

    def registered(self) -> list[Resource]:
        return list(self.recorded.values())


class _OfflineMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str, preview: bool):
        self.region = region
        self.preview = preview
        self.refused: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom:
            return "", {}
        # A refused resource is noted and the run goes on, so one run names every refusal.
        self.refused += name_problems(args.typ, args.name, dict(args.inputs))
        if self.preview:
            # As in `pulumi preview`: inputs are known, the id and computed outputs are not.
            return "", dict(args.inputs)
        resource_id, computed = synthesise(args.typ, args.name, args.inputs, self.region)
        return resource_id, {**args.inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        answer = INVOKES.get(args.token)
        if answer is None:
            raise OfflineHarnessError(
                f"the offline harness has no answer for invoke {args.token}; "
                "add one to INVOKES in offline/invokes.py"
            )
        return answer(dict(args.args), self.region), []

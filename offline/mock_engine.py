"""The mock engine under the offline harness: Pulumi's mock monitor, recording every registered
resource as the engine would see it, and the mocks answering with synthesised outputs.

`offline/harness.py` runs programs on it; this module knows the wire (RPC values, secrets,
unknowns), the harness the runs.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from offline.computed import synthesise
from offline.invokes import INVOKES
from offline.lifecycle import History
from offline.provider_rules import (
    LISTENER_RULE,
    PARAMETER,
    ListenerRules,
    name_problems,
    parameter_problems,
)
from offline.sdk_schema import accepts_property


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
    # How many times this URN was created in its history of runs (offline/lifecycle.py).
    incarnation: int = 1
    # Parent URNs its aliases name: where the resource lived before a move (`pulumi.Alias`).
    alias_parents: frozenset[str] = frozenset()

    @property
    def taggable(self) -> bool:
        """True when the resource type accepts `tags` (read from its Pulumi SDK class)."""
        return accepts_property(self.type, "tags")


def plain(value: Any) -> Any:
    """Mock-side values with Pulumi's unknown and secret markers made plain."""
    if isinstance(value, pulumi.output.Unknown) or value == rpc.UNKNOWN:
        return UNKNOWN
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        # The wire carries every number as a double; 5432.0 was written as 5432.
        return int(value)
    return value


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
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


class Recorder(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping each resource's inputs and parent (mocks never see it)."""

    def __init__(self, mocks: OfflineMocks):
        super().__init__(mocks)
        # The same mocks, typed: they learn the URN being registered and know its incarnation.
        self.offline = mocks
        self.recorded: dict[str, Resource] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.offline.registering = self.make_urn(request.parent, request.type, request.name)
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
            inputs=plain(inputs),
            outputs=plain(outputs),
            parent=None if "::pulumi:pulumi:Stack::" in request.parent else request.parent,
            secret_inputs=frozenset(
                key for key, value in inputs.items() if rpc.is_rpc_secret(value)
            ),
            ignore_changes=frozenset(request.ignoreChanges),
            dependencies=frozenset(request.dependencies),
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
            incarnation=self.offline.incarnations.get(response.urn, 1),
            alias_parents=frozenset(
                alias.spec.parentUrn for alias in request.aliases if alias.spec.parentUrn
            ),
        )
        return response

    def registered(self) -> list[Resource]:
        return list(self.recorded.values())


class OfflineMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str, preview: bool, history: History):
        self.region = region
        self.preview = preview
        self.history = history
        self.refused: list[str] = []
        self.listener_rules = ListenerRules()
        # The URN being registered (set by the recorder) and each custom resource's incarnation.
        self.registering = ""
        self.incarnations: dict[str, int] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom:
            return "", {}
        # A refused resource is noted and the run goes on, so one run names every refusal.
        self.refused += name_problems(args.typ, args.name, dict(args.inputs))
        if args.typ == LISTENER_RULE:
            self.refused += self.listener_rules.problems(args.name, dict(args.inputs))
        if args.typ == PARAMETER:
            self.refused += parameter_problems(args.name, plain(dict(args.inputs)), self.region)
        urn, inputs = self.registering, dict(args.inputs)
        incarnation = self.history.incarnation(urn, args.typ, inputs)
        self.incarnations[urn] = incarnation
        if self.preview:
            # As in `pulumi preview`: inputs are known, the id and computed outputs are not.
            return "", inputs
        resource_id, computed = synthesise(args.typ, args.name, inputs, self.region, incarnation)
        before = self.history.alive.get(urn)
        if before is not None and before.incarnation == incarnation and resource_id != before.id:
            # A new physical identity (a changed name): the provider replaces the resource.
            incarnation = self.history.creations[urn] + 1
            self.incarnations[urn] = incarnation
            resource_id, computed = synthesise(
                args.typ, args.name, inputs, self.region, incarnation
            )
        return resource_id, {**inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        answer = INVOKES.get(args.token)
        if answer is None:
            raise OfflineHarnessError(
                f"the offline harness has no answer for invoke {args.token}; "
                "add one to INVOKES in offline/invokes.py"
            )
        return answer(dict(args.args), self.region), []

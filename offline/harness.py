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
- A run may update an earlier one (`previous`), as `pulumi up` updates a stack: a resource the
  earlier run had keeps its identity, one it lacked (or one replaced) is created anew with a new
  id and new endpoints (offline/lifecycle.py), so a test can see what a change would replace.
- Each run gets a fresh event loop, mock monitor, root stack and config, so a process (a test
  session) may run the program any number of times.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func

from offline.lifecycle import NO_HISTORY, Alive, History
from offline.mock_engine import (
    UNKNOWN,
    InlineExecutor,
    OfflineHarnessError,
    OfflineMocks,
    Recorder,
    Resource,
    plain,
)
from ops.stack_file import stack_config

__all__ = [
    "DOCUMENTATION_VALUES",
    "ROOT",
    "UNKNOWN",
    "OfflineHarnessError",
    "ProgramFailed",
    "ProgramRun",
    "ProviderRefused",
    "Resource",
    "documentation_for",
    "run_component",
    "run_program",
]

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


class ProviderRefused(Exception):
    """What `pulumi preview` would stop on: the provider or AWS refuses a resource's inputs."""


class ProgramFailed(Exception):
    """The program raised; `__cause__` is its exception, `resources` what registered before."""

    def __init__(self, cause: BaseException, resources: list[Resource]):
        super().__init__(str(cause))
        self.resources = resources


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
    # URN -> creations so far, over this run and the runs it updates (deleted resources included).
    creations: dict[str, int] = field(default_factory=dict)

    @property
    def incarnations(self) -> dict[str, int]:
        """URN -> incarnation of each custom resource this run has (see lifecycle.changes)."""
        return {r.urn: r.incarnation for r in self.resources if r.custom}

    @property
    def history(self) -> History:
        """What a run updating this one starts from."""
        alive = {
            r.urn: Alive(type=r.type, id=r.id, inputs=r.inputs, incarnation=r.incarnation)
            for r in self.resources
            if r.custom
        }
        return History(alive=alive, creations=self.creations)

    def of_type(self, type_: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        if len(found) != 1:
            names = ", ".join(resource.name for resource in found) or "none"
            raise AssertionError(f"expected exactly one {type_}, found {len(found)}: {names}")
        return found[0]

    def named(self, name: str, type_: str | None = None) -> Resource:
        """The resource called `name` (of `type_`, where a component and its resource share it)."""
        found = [
            resource
            for resource in self.resources
            if resource.name == name and type_ in (None, resource.type)
        ]
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
    previous: ProgramRun | None = None,
) -> ProgramRun:
    """Run the whole program (`program.build` over the stack's typed config).

    `documentation_values`: fill in what a prod stack leaves to its operator (see
    DOCUMENTATION_VALUES); False runs the stack exactly as its file and overrides say.
    `previous`: the run this one updates (see the module docstring).
    """
    filled = documentation_for(stack_config(stack, overrides)) if documentation_values else {}
    exempt = frozenset(key.split(":", 1)[1] for key in filled)

    def whole_program() -> Mapping[str, Any]:
        import program
        from stack_config import StackConfig

        return program.build(StackConfig.load(documentation_keys=exempt))

    run = run_component(
        whole_program,
        stack=stack,
        overrides={**(overrides or {}), **filled},
        preview=preview,
        history=previous.history if previous is not None else NO_HISTORY,
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
    history: History = NO_HISTORY,
) -> ProgramRun:
    """Run `fn` as a Pulumi program; a mapping it returns becomes the stack outputs."""
    config = stack_config(stack, overrides)
    region = config.get("aws:region", "eu-west-1")
    mocks = OfflineMocks(region=region, preview=preview, history=history)
    recorder = Recorder(mocks)
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
    loop.set_default_executor(InlineExecutor())
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
        creations={**history.creations, **mocks.incarnations},
    )


async def _resolve(value: Any) -> tuple[Any, bool]:
    output = pulumi.Output.from_input(value)
    known = await output.is_known()
    secret = await output.is_secret()
    resolved = await output.future(with_unknowns=True) if known else UNKNOWN
    return plain(resolved), secret

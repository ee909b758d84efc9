"""Run the policy pack in process over an offline program run, as `pulumi preview` would.

    python -m offline.policy_check --stack dev [--set paused=true ...]

Every resource becomes a `ResourceValidationArgs` (its inputs, camelCase, as the engine sends them)
for each resource policy, and the whole run one `StackValidationArgs` (inputs merged with the
synthesised outputs, as after an update) for each stack policy. The CrossGuard policy objects from
`policies.rules.policies()` do the validating, with each rule's default config plus overrides.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from offline.harness import ProgramRun, run_program
from ops.arguments import Parser
from ops.stack_file import StackFileError
from policies.rules import RULES, policies


@dataclass(frozen=True)
class Violation:
    policy: str
    enforcement: str
    resource: str | None
    message: str


def _options(resource: Any) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=sorted(resource.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        additional_secret_outputs=[],
        # What the engine sends when the program sets none.
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        parent=resource.parent,
    )


def check(
    run: ProgramRun, config: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Violation]:
    """Every violation of every enabled policy over `run`; `config` per policy name overrides."""
    config = config or {}
    found: list[Violation] = []
    rules = {rule.name: rule for rule in RULES}
    custom = [resource for resource in run.resources if resource.custom]
    for policy in policies():
        given = dict(config.get(policy.name, {}))
        # A policy without a level of its own takes the pack's default, advisory.
        default = policy.enforcement_level or EnforcementLevel.ADVISORY
        level = EnforcementLevel(given.pop("enforcementLevel", default.value))
        if level is EnforcementLevel.DISABLED:
            continue
        settings = {**rules[policy.name].defaults(), **given}

        def report(
            message: str,
            urn: str | None,
            *,
            _name: str = policy.name,
            _level: str = level.value,
            _resource: str | None = None,
        ) -> None:
            found.append(Violation(_name, _level, urn or _resource, message))  # fmt: skip

        if isinstance(policy, ResourceValidationPolicy):
            for resource in custom:
                args = ResourceValidationArgs(
                    resource.type,
                    resource.inputs,
                    resource.urn,
                    resource.name,
                    _options(resource),
                    None,
                    settings,
                )
                policy.validate(
                    args, lambda message, urn, _r=resource.urn: report(message, urn, _resource=_r)
                )
        else:
            resources = [
                PolicyResource(
                    r.type,
                    {**r.outputs, **r.inputs, "id": r.id},
                    r.urn,
                    r.name,
                    _options(r),
                    None,
                    None,
                    [],
                    {},
                )
                for r in custom
            ]
            policy.validate(StackValidationArgs(resources, settings), report)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m offline.policy_check")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    options = parser.parse_args(argv)
    overrides = parser.key_values("--set", options.set)
    try:
        violations = check(run_program(options.stack, overrides))
    except StackFileError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    for violation in violations:
        print(
            f"[{violation.enforcement}] {violation.policy}: {violation.message} "
            f"({violation.resource or 'stack'})"
        )
    mandatory = [v for v in violations if v.enforcement == "mandatory"]
    print(f"{len(violations)} violation(s), {len(mandatory)} mandatory, {len(RULES)} policies.")
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())

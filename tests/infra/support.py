"""Shared helpers for the infrastructure tests: cached program runs and security-group rules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from offline.harness import ProgramRun, Resource, run_program

STACKS = ("dev", "prod")
WORLD = {"0.0.0.0/0", "::/0"}
# (stack, config overrides as JSON, preview) -> the run and its fingerprint when it was made.
_runs: dict[tuple[str, str, bool], tuple[ProgramRun, str]] = {}


def evaluated(
    stack: str, overrides: Mapping[str, Any] | None = None, preview: bool = False
) -> ProgramRun:
    """`run_program(stack, overrides, preview=preview)`, evaluated once per session.

    Many tests read the same evaluation (a whole program under Pulumi mocks takes seconds), so
    they share it; a test must not change it, and `check_unchanged` (run on every reuse and at
    the end of the session) fails if one did.
    """
    key = (stack, json.dumps(overrides or {}, sort_keys=True), preview)
    if key not in _runs:
        run = run_program(stack, overrides, preview=preview)
        _runs[key] = (run, _fingerprint(run))
    else:
        _check(key)
    return _runs[key][0]


def check_unchanged() -> None:
    """Fail if any shared evaluation differs from what it was when it was made."""
    for key in _runs:
        _check(key)


def _check(key: tuple[str, str, bool]) -> None:
    run, fingerprint = _runs[key]
    if _fingerprint(run) != fingerprint:
        stack, overrides, preview = key
        raise AssertionError(
            f"a test changed the shared evaluation of {stack} with {overrides} "
            f"(preview={preview}): copy a run before changing it"
        )


def _fingerprint(run: ProgramRun) -> str:
    return hashlib.sha256(repr(run).encode()).hexdigest()


def rule_set(run: ProgramRun, group: Resource, direction: str) -> set[tuple[Any, ...]] | None:
    """`(protocol, from, to, peers)` per inline rule, peers as CIDRs or security-group names.

    None when the group does not manage that direction inline.
    """
    rules = group.inputs.get(direction)
    if rules is None:
        return None
    found = set()
    for rule in rules:
        peers = frozenset(
            [
                *rule.get("cidrBlocks", []),
                *rule.get("ipv6CidrBlocks", []),
                *(_name(run, group_id) for group_id in rule.get("securityGroups", [])),
            ]
        )
        found.add((rule["protocol"], rule["fromPort"], rule["toPort"], peers))
    return found


def _name(run: ProgramRun, group_id: Any) -> Any:
    resource = run.by_id(group_id)
    return resource.name if resource is not None else group_id


def world_open(run: ProgramRun, port: int) -> list[str]:
    """Every ingress rule in the program admitting the internet to `port` (inline or standalone)."""
    offenders = []
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress") or []:
            sources = set(rule.get("cidrBlocks", [])) | set(rule.get("ipv6CidrBlocks", []))
            if sources & WORLD and _covers(
                rule["protocol"], rule["fromPort"], rule["toPort"], port
            ):
                offenders.append(group.name)
    for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        sources = {rule.inputs.get("cidrIpv4"), rule.inputs.get("cidrIpv6")}
        protocol = rule.inputs.get("ipProtocol")
        low, high = rule.inputs.get("fromPort", 0), rule.inputs.get("toPort", 65535)
        if sources & WORLD and _covers(protocol, low, high, port):
            offenders.append(rule.name)
    return offenders


def _covers(protocol: Any, low: Any, high: Any, port: int) -> bool:
    if str(protocol) in ("-1", "all"):
        return True
    return str(protocol) in ("tcp", "6") and low <= port <= high

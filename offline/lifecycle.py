"""What `pulumi up` does to each resource from one run of the program to the next.

The mocks synthesise ids, ARNs and endpoints from a resource's name, so two runs agree. A resource
a run leaves out (a deep pause drops the load balancer) is deleted, and when a later run brings it
back AWS creates a new one: a new load balancer DNS name, a new certificate ARN, a new Elastic IP.
A resource whose replace-forcing input changes is a new one too. The harness counts each URN's
creations (its *incarnation*) across the runs of one history and synthesises every incarnation
after the first differently, so a changed endpoint shows in the outputs; `changes` says, between
two runs, which resources were kept and which were deleted, created or replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Inputs the AWS provider cannot update in place (ForceNew in its schema): a change replaces the
# resource. Only for the types the platform's user-facing endpoints hang on; for every other type
# a changed id (a new physical name) still counts as a replacement (see `incarnation`).
REPLACED_ON_CHANGE: Mapping[str, frozenset[str]] = {
    "aws:acm/certificate:Certificate": frozenset(
        {"domainName", "subjectAlternativeNames", "validationMethod", "keyAlgorithm"}
    ),
    "aws:ec2/eip:Eip": frozenset({"domain", "address", "publicIpv4Pool"}),
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"name", "internal", "loadBalancerType"}),
    "aws:lambda/functionUrl:FunctionUrl": frozenset({"functionName", "qualifier"}),
    "aws:route53/record:Record": frozenset({"zoneId", "name"}),
}


@dataclass(frozen=True)
class Alive:
    """A resource as the previous run left it."""

    type: str
    id: str | None
    inputs: Mapping[str, Any]
    incarnation: int


@dataclass(frozen=True)
class History:
    """What the runs so far left: the live resources and how often each URN was ever created."""

    alive: Mapping[str, Alive]
    creations: Mapping[str, int]

    def incarnation(self, urn: str, type_: str, inputs: Mapping[str, Any]) -> int:
        """The incarnation of `urn` registered now with `inputs`, unless its id changes (the
        caller checks that): the same one while it lives, a new one once deleted or replaced."""
        before = self.alive.get(urn)
        if before is not None and not replaced(type_, before.inputs, inputs):
            return before.incarnation
        return self.creations.get(urn, 0) + 1


NO_HISTORY = History(alive={}, creations={})


def replaced(type_: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """True when going from `before` to `after` inputs makes the provider replace the resource."""
    return any(before.get(key) != after.get(key) for key in REPLACED_ON_CHANGE.get(type_, ()))


@dataclass(frozen=True)
class Changes:
    """URNs of custom resources, by what an update from one run to the other does to them."""

    kept: frozenset[str]
    replaced: frozenset[str]
    created: frozenset[str]
    deleted: frozenset[str]


def changes(before: Mapping[str, int], after: Mapping[str, int]) -> Changes:
    """Compare two runs' `incarnations` (URN -> incarnation of each live custom resource): a URN
    in both with another incarnation was replaced, or deleted and created again in between."""
    both = before.keys() & after.keys()
    return Changes(
        kept=frozenset(urn for urn in both if before[urn] == after[urn]),
        replaced=frozenset(urn for urn in both if before[urn] != after[urn]),
        created=frozenset(after.keys() - before.keys()),
        deleted=frozenset(before.keys() - after.keys()),
    )

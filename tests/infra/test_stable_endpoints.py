"""Issue 22, stable endpoints: a deep pause and resume keep every endpoint a user or streamer types
or bookmarks; with a hosted zone all of them, without one the subset the README names.

Each cycle is three `pulumi up`s of one stack, each run updating the state the one before left
(`run_program(previous=...)`): running, `paused: true`, `paused: false`. The harness gives a
resource deleted and created again, or replaced, a new identity (offline/lifecycle.py), as AWS
does, so a changed endpoint shows in the outputs and a replaced resource in `changes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from offline.harness import ProgramRun, run_component, run_program
from offline.lifecycle import NO_HISTORY, changes
from tests.infra.support import evaluated

# Every output someone types or bookmarks: the coordinator (friends' node kits take
# `--coordinator <url>`, the dashboards and API docs), OBS's RTMP publish URL, the players' HLS
# and HTTP-FLV URLs, the mesh's login server and its address, the wake page, the CloudWatch
# dashboard.
USER_FACING = frozenset(
    {
        "coordinatorUrl",
        "apiDocsUrl",
        "rtmpIngestUrl",
        "hlsUrlTemplate",
        "flvUrlTemplate",
        "headscaleUrl",
        "headscalePublicIp",
        "wakeUrl",
        "dashboardUrl",
    }
)
# The program's own wiring and the operator's tools (ids, secrets' ARNs, data store addresses).
INTERNAL = frozenset(
    {
        "vpcId",
        "publicSubnetIds",
        "privateSubnetIds",
        "coordinatorSecurityGroupId",
        "databaseAddress",
        "databasePort",
        "databaseSecretArn",
        "coordinatorSecretsParameter",
        "cacheAddress",
        "cachePort",
        "headscaleApiKeyParameter",
        "pauseFunctionName",
        "wakeTokenParameter",
        "wakeGithubTokenParameter",
        "githubPreviewRoleArn",
        "githubDeployRoleArn",
    }
)
# Without a hosted zone the coordinator is at its load balancer's own DNS name: a deep pause
# deletes the load balancer, so these are gone while paused and new after (README, "Stable
# endpoints").
CHANGED_WITHOUT_ZONE = frozenset({"coordinatorUrl", "apiDocsUrl"})
# The cache is left out of a deep pause and created anew: a new address, which the program hands
# the coordinator itself.
RECREATED_INTERNALLY = frozenset({"cacheAddress"})
# What must outlive a deep pause for those endpoints to (names after `streamr-<stage>-`): the
# certificate, its DNS validation, the mesh's Elastic IP, its data, DNS name and the coordinator's
# API key (the mesh host itself is deleted and created again on the same address and volume), the
# wake function's URL, the dashboard, the database; without a zone the origin's Elastic IP too.
KEPT = {
    "web-certificate",
    "web-certificate-validation",
    "web-certificate-validated",
    "headscale-eip",
    "headscale-data",
    "headscale-dns",
    "headscale-api-key",
    "wake-url",
    "monitoring-dashboard",
    "db-postgres",
}

GITHUB = {
    "githubRepository": "acme/streamr-p2p",
    "stateBucket": "acme-streamr-state",
    "secretsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
# prod with its hosted zone (the harness's documentation domain and zone), woken on demand and
# deployed from GitHub so every output appears; dev as committed: no domain, no zone.
WITH_ZONE = ("prod", {"wakeEndpoint": True, "idlePauseMinutes": 30, **GITHUB})
WITHOUT_ZONE = ("dev", {})


def deep_pause_cycle(stack: str, overrides: Mapping[str, Any]) -> tuple[ProgramRun, ...]:
    """Running, then deep-paused, then resumed: each run an update of the one before."""
    running = evaluated(stack, overrides)
    paused = run_program(stack, {**overrides, "paused": True}, previous=running)
    resumed = run_program(stack, {**overrides, "paused": False}, previous=paused)
    return running, paused, resumed


@pytest.fixture(scope="module")
def zoned() -> tuple[ProgramRun, ...]:
    return deep_pause_cycle(*WITH_ZONE)


@pytest.fixture(scope="module")
def zoneless() -> tuple[ProgramRun, ...]:
    return deep_pause_cycle(*WITHOUT_ZONE)


def names(urns: frozenset[str]) -> set[str]:
    return {urn.rsplit("::", 1)[1] for urn in urns}


def changed_outputs(before: ProgramRun, after: ProgramRun) -> set[str]:
    """Outputs both runs have with different values."""
    return {
        k
        for k in before.outputs.keys() & after.outputs.keys()
        if before.outputs[k] != after.outputs[k]
    }


def test_every_output_is_either_user_facing_or_internal(
    zoned: tuple[ProgramRun, ...], zoneless: tuple[ProgramRun, ...]
) -> None:
    """A new output must be sorted here, so a new user-facing one cannot escape the tests below."""
    for run in (*zoned, *zoneless):
        assert set(run.outputs) <= USER_FACING | INTERNAL, run.stack
    # The zoned cycle has every output the program can export.
    assert set(zoned[0].outputs) == USER_FACING | INTERNAL


def test_with_a_hosted_zone_every_user_facing_output_survives_a_deep_pause(
    zoned: tuple[ProgramRun, ...],
) -> None:
    running, paused, resumed = zoned
    for name in sorted(USER_FACING):
        assert running.outputs[name] == paused.outputs[name] == resumed.outputs[name], name
    assert running.outputs["coordinatorUrl"] == "https://stream.example.org"
    # Of all outputs, only the re-created cache's address differs after the resume.
    assert changed_outputs(running, resumed) == RECREATED_INTERNALLY


def test_without_a_hosted_zone_the_documented_subset_survives(
    zoneless: tuple[ProgramRun, ...],
) -> None:
    running, paused, resumed = zoneless
    assert set(running.outputs) >= USER_FACING
    for name in sorted(USER_FACING - CHANGED_WITHOUT_ZONE):
        assert running.outputs[name] == paused.outputs[name] == resumed.outputs[name], name
    # What changes, as the README says: the coordinator's URL is gone while paused, new after.
    assert not CHANGED_WITHOUT_ZONE & set(paused.outputs)
    assert changed_outputs(running, resumed) == CHANGED_WITHOUT_ZONE | RECREATED_INTERNALLY
    assert ".elb.amazonaws.com" in resumed.outputs["coordinatorUrl"]


@pytest.mark.parametrize("cycle", ["zoned", "zoneless"])
def test_a_deep_pause_replaces_nothing_it_keeps(cycle: str, request: pytest.FixtureRequest) -> None:
    """Pausing and resuming replace nothing; after the cycle exactly what the pause deleted is
    new, and the resources the endpoints hang on are the same ones."""
    running, paused, resumed = request.getfixturevalue(cycle)
    pausing = changes(running.incarnations, paused.incarnations)
    resuming = changes(paused.incarnations, resumed.incarnations)
    cycle_changes = changes(running.incarnations, resumed.incarnations)
    # The pause adds only the schedule that holds it (components/pause_schedule.py).
    assert names(pausing.created) == {f"streamr-{running.stack}-pause-hold-paused"}
    assert pausing.deleted and not pausing.replaced
    assert resuming.deleted == pausing.created and not resuming.replaced
    assert resuming.created == pausing.deleted
    assert cycle_changes.replaced == pausing.deleted
    assert not cycle_changes.created and not cycle_changes.deleted
    # In the mocks' view as in AWS: what was kept has the same id (and ARN, address, name).
    before_ids = {r.urn: r.id for r in running.resources if r.custom}
    after_ids = {r.urn: r.id for r in resumed.resources if r.custom}
    assert {urn for urn in cycle_changes.kept if before_ids[urn] != after_ids[urn]} == set()
    prefix = f"streamr-{running.stack}-"
    present = {r.name.removeprefix(prefix): r.urn for r in running.resources if r.custom}
    # The mesh host is recreated, on the Elastic IP, data volume and key parameter it had.
    assert present["headscale-host"] in pausing.deleted
    # dev has no domain: no certificate, no DNS names.
    expected = (
        KEPT
        if cycle == "zoned"
        else {n for n in KEPT if "certificate" not in n and "dns" not in n} | {"srs-address-eip"}
    )
    assert expected <= present.keys()
    assert {present[name] for name in expected} <= cycle_changes.kept
    certificates = running.of_type("aws:acm/certificate:Certificate")
    assert len(certificates) == (1 if cycle == "zoned" else 0)
    for certificate in certificates:
        assert certificate.urn in cycle_changes.kept
        reissued = resumed.one("aws:acm/certificate:Certificate")
        assert reissued.outputs["arn"] == certificate.outputs["arn"]


# -- the mocks can see the problem -------------------------------------------------------------


def entrance_program(with_balancer: bool, domain: str = "stream.example.org") -> dict[str, Any]:
    """The arrangement before the certificate moved out: a component a deep pause leaves out,
    holding the load balancer and the certificate; returns the URL users would bookmark."""
    entrance = pulumi.ComponentResource("test:entrance:Entrance", "entrance")
    certificate = None
    balancer = None
    if with_balancer:
        child = pulumi.ResourceOptions(parent=entrance)
        certificate = aws.acm.Certificate(
            "entrance-certificate", domain_name=domain, validation_method="DNS", opts=child
        )
        balancer = aws.lb.LoadBalancer("entrance-alb", load_balancer_type="application", opts=child)
    return {
        "certificateArn": certificate.arn if certificate else None,
        "url": pulumi.Output.concat("http://", balancer.dns_name) if balancer else None,
    }


def test_the_cycle_shows_what_a_deep_pause_recreates() -> None:
    """The checks above can fail: a certificate and load balancer inside what a deep pause leaves
    out come back as new resources, with a new ARN and a new DNS name."""
    running = run_component(lambda: entrance_program(True))
    paused = run_component(lambda: entrance_program(False), history=running.history)
    resumed = run_component(lambda: entrance_program(True), history=paused.history)
    assert changes(running.incarnations, paused.incarnations).deleted == set(running.incarnations)
    cycle = changes(running.incarnations, resumed.incarnations)
    assert cycle.replaced == set(running.incarnations) and not cycle.kept
    assert changed_outputs(running, resumed) == {"certificateArn", "url"}
    # Without the cycle's history, the same program's runs agree (plain runs stay deterministic).
    again = run_component(lambda: entrance_program(True), history=NO_HISTORY)
    assert again.outputs == running.outputs


def test_a_changed_input_the_provider_cannot_update_replaces_the_resource() -> None:
    running = run_component(lambda: entrance_program(True))
    kept = run_component(lambda: entrance_program(True), history=running.history)
    renamed = run_component(
        lambda: entrance_program(True, domain="live.example.org"), history=running.history
    )
    assert changes(running.incarnations, kept.incarnations).replaced == frozenset()
    assert changed_outputs(running, kept) == set()
    replaced = changes(running.incarnations, renamed.incarnations).replaced
    assert names(replaced) == {"entrance-certificate"}
    assert changed_outputs(running, renamed) == {"certificateArn"}

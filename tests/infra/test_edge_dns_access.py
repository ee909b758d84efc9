"""Edge names on AWS (issue 23): with a hosted zone, the coordinator is told `edge.<domain>` and
its zone, and may change in that zone only the edge names' A records and their ACME challenges'
TXT records, through a role whose short-lived credentials the host hands the container (which
cannot reach the instance's own: IMDS hop limit 1)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import yaml
from streamr_coordinator.domain.edge_names import challenge_name, edge_name

from components.coordinator_access import edge_record_names
from offline.harness import ProgramRun
from tests.infra.test_coordinator_service import settings_file, user_data

ZONE = "Z0DOCUMENTATION0EXAMPLE"  # offline.harness.DOCUMENTATION_VALUES
EDGE_DOMAIN = "edge.stream.example.org"
NAMES = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
TYPES = "route53:ChangeResourceRecordSetsRecordTypes"


def _policy(run: ProgramRun, name: str) -> dict[str, Any]:
    return json.loads(run.named(name).inputs["policy"])


def _may_change(statement: dict[str, Any], record: str, record_type: str) -> bool:
    """IAM's reading of the statement's conditions for one change (StringLike: `*` is any run
    of characters; names as Route 53 normalises them: lower case, no final dot)."""
    conditions = statement["Condition"]
    return (
        any(
            fnmatchcase(record, pattern) for pattern in conditions["ForAllValues:StringLike"][NAMES]
        )
        and record_type in conditions["ForAllValues:StringEquals"][TYPES]
    )


def test_prod_with_its_zone_writes_edge_names_and_nothing_else(prod: ProgramRun) -> None:
    prefix = "streamr-prod-coordinator"
    (statement,) = _policy(prod, f"{prefix}-edge-dns-policy")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "route53:ChangeResourceRecordSets"
    assert statement["Resource"] == f"arn:aws:route53:::hostedzone/{ZONE}"
    assert statement["Condition"]["ForAllValues:StringLike"][NAMES] == [
        f"*.{EDGE_DOMAIN}",
        f"_acme-challenge.*.{EDGE_DOMAIN}",
    ]
    assert statement["Condition"]["ForAllValues:StringEquals"][TYPES] == ["A", "TXT"]
    assert statement["Condition"]["Null"] == {NAMES: "false"}
    # What the coordinator writes is allowed (its own functions make the names) ...
    node = edge_name(EDGE_DOMAIN, 42)
    assert _may_change(statement, node, "A")
    assert _may_change(statement, challenge_name(node), "TXT")
    # ... and the zone's other names, and other record types, are not.
    for record in ("stream.example.org", "mesh.stream.example.org", "_x1.stream.example.org"):
        assert not _may_change(statement, record, "A")
    assert not _may_change(statement, node, "CNAME")
    assert not _may_change(statement, f"{EDGE_DOMAIN}.attacker.example", "A")


def test_only_the_hosts_role_may_assume_the_edge_dns_role(prod: ProgramRun) -> None:
    prefix = "streamr-prod-coordinator"
    edge_role = prod.named(f"{prefix}-edge-dns-role")
    host_role = prod.named(f"{prefix}-role")
    trust = json.loads(edge_role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": host_role.outputs["arn"]},
            "Action": "sts:AssumeRole",
        }
    ]
    assert edge_role.inputs["maxSessionDuration"] == 3600
    statements = {s["Sid"]: s for s in _policy(prod, f"{prefix}-policy")["Statement"]}
    assert statements["AssumeEdgeDnsRole"] == {
        "Sid": "AssumeEdgeDnsRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": edge_role.outputs["arn"],
    }
    assert not any("route53" in json.dumps(s["Action"]) for s in statements.values())


def test_prod_tells_the_coordinator_its_edge_domain_zone_and_role(prod: ProgramRun) -> None:
    conf = settings_file(prod)
    role = prod.named("streamr-prod-coordinator-edge-dns-role").outputs["arn"]
    assert f"EDGE_DOMAIN={EDGE_DOMAIN}\n" in conf
    assert f"EDGE_ZONE_ID={ZONE}\n" in conf
    assert f"EDGE_DNS_ROLE_ARN={role}\n" in conf
    script = _file(prod, "/usr/local/sbin/streamr-coordinator-run")
    assert 'echo "STREAMR_EDGE_DOMAIN=$EDGE_DOMAIN"' in script
    assert 'echo "STREAMR_EDGE_ZONE_ID=$EDGE_ZONE_ID"' in script
    assert 'echo "AWS_CONFIG_FILE=/etc/streamr/aws-config"' in script
    secrets = _file(prod, "/usr/local/sbin/streamr-coordinator-secrets")
    assert 'aws sts assume-role --region "$REGION" --role-arn "$EDGE_DNS_ROLE_ARN"' in secrets


def test_without_a_zone_there_are_no_edge_names(dev: ProgramRun) -> None:
    assert not [r for r in dev.resources if "edge-dns" in r.name]
    assert "EDGE_" not in settings_file(dev)
    statements = _policy(dev, "streamr-dev-coordinator-policy")["Statement"]
    assert "AssumeEdgeDnsRole" not in {s["Sid"] for s in statements}


def test_the_names_are_normalised_as_route53_compares_them() -> None:
    assert edge_record_names("Edge.Example.COM.") == [
        "*.edge.example.com",
        "_acme-challenge.*.edge.example.com",
    ]


def _file(run: ProgramRun, path: str) -> str:
    document = yaml.safe_load(user_data(run))
    return next(f["content"] for f in document["write_files"] if f["path"] == path)

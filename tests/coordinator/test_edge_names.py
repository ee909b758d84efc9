"""Edge names: each node's public name, its A record and its ACME DNS-01 challenges, written to
Route 53 (moto's, in-process) by the coordinator, and the https edge URLs viewers then get."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from pydantic import ValidationError
from streamr_coordinator.app import create_app
from streamr_coordinator.domain.edge_names import address_change, challenge_change
from streamr_coordinator.edge_dns import already_gone
from streamr_coordinator.settings import Settings

from .conftest import BOOTSTRAP, HOOK_SECRET
from .support import Api

DOMAIN = "edge.example.com"
# 43 characters of base64url, as an ACME server's DNS-01 key authorization digest is.
VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
OTHER_VALUE = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


@dataclass(frozen=True)
class Zone:
    client: Any
    zone_id: str


@pytest.fixture
def route53(monkeypatch: pytest.MonkeyPatch) -> Iterator[Zone]:
    """An AWS account (moto) with the hosted zone `example.com`."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("route53", region_name="us-east-1")
        zone = client.create_hosted_zone(Name="example.com", CallerReference="test")
        yield Zone(client, zone["HostedZone"]["Id"])


def _records(route53: Zone) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """The zone's records other than its own SOA and NS: (name, type) -> (TTL, values)."""
    listed = route53.client.list_resource_record_sets(HostedZoneId=route53.zone_id)
    sets = listed["ResourceRecordSets"]
    return {
        (record["Name"], record["Type"]): (
            record["TTL"],
            [value["Value"] for value in record["ResourceRecords"]],
        )
        for record in sets
        if record["Type"] not in ("SOA", "NS")
    }


@pytest.fixture
def named(settings: Settings, route53: Zone) -> Iterator[Api]:
    configured = settings.model_copy(
        update={"edge_domain": DOMAIN, "edge_zone_id": route53.zone_id}
    )
    with TestClient(create_app(configured)) as client:
        yield Api(client, hook_secret=HOOK_SECRET, bootstrap_token=BOOTSTRAP)


def _bearer(node: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {node['node_token']}"}


def _announce(api: Api, node: dict[str, Any], address: str, tls_port: int | None = None):
    return api.client.put(
        f"/api/v1/nodes/{node['id']}/edge",
        json={"play_base_url": f"http://{address}:8080", "tls_port": tls_port},
        headers=_bearer(node),
    )


def _challenge(api: Api, method: str, node: dict[str, Any], value: str, node_id: int = 0):
    return api.client.request(
        method,
        f"/api/v1/nodes/{node_id or node['id']}/acme-challenge",
        json={"value": value},
        headers=_bearer(node),
    )


def _live_with_edge(api: Api, node: dict[str, Any], tls_port: int | None) -> list[dict[str, Any]]:
    stream = api.stream(api.account("streamer"), "show")
    api.publish(stream)
    assert _announce(api, node, "100.64.0.7", tls_port).status_code == 204
    assert api.client.post("/api/v1/node/heartbeat", headers=_bearer(node)).status_code == 200
    answer = api.client.get("/api/v1/play/show")
    assert answer.status_code == 200, answer.text
    return answer.json()["edges"]


def test_a_node_is_told_its_edge_name_and_lists_show_it(named: Api) -> None:
    friend = named.account("friend")
    node = named.node(friend, "den")
    assert node["edge_name"] == f"n{node['id']}.{DOMAIN}"
    (listed,) = named.client.get("/api/v1/nodes", headers=friend.auth).json()
    assert listed["edge_name"] == node["edge_name"]


def test_without_an_edge_domain_a_node_has_no_edge_name_and_no_challenges(api: Api) -> None:
    node = api.node(api.account("friend"), "den")
    assert node["edge_name"] is None
    for method in ("PUT", "DELETE"):
        refused = _challenge(api, method, node, VALUE)
        assert refused.status_code == 409
        assert "STREAMR_EDGE_DOMAIN" in refused.json()["detail"]


def test_announcing_sets_the_edge_names_a_record_to_its_mesh_address(
    named: Api, route53: Zone
) -> None:
    node = named.node(named.account("friend"), "den")
    name = f"n{node['id']}.{DOMAIN}."
    assert _announce(named, node, "100.64.0.7").status_code == 204
    assert _records(route53) == {(name, "A"): (60, ["100.64.0.7"])}
    # The mesh gave it another address: the record follows.
    assert _announce(named, node, "100.64.3.9", tls_port=8443).status_code == 204
    assert _records(route53) == {(name, "A"): (60, ["100.64.3.9"])}


def test_a_challenge_is_published_replaced_and_withdrawn(named: Api, route53: Zone) -> None:
    node = named.node(named.account("friend"), "den")
    name = f"_acme-challenge.n{node['id']}.{DOMAIN}."
    assert _challenge(named, "PUT", node, VALUE).status_code == 204
    assert _records(route53) == {(name, "TXT"): (60, [f'"{VALUE}"'])}
    assert _challenge(named, "PUT", node, OTHER_VALUE).status_code == 204
    assert _records(route53) == {(name, "TXT"): (60, [f'"{OTHER_VALUE}"'])}
    assert _challenge(named, "DELETE", node, OTHER_VALUE).status_code == 204
    assert _records(route53) == {}


def test_only_the_node_itself_may_answer_its_challenge(named: Api, route53: Zone) -> None:
    friend = named.account("friend")
    mine, theirs = named.node(friend, "den"), named.node(friend, "attic")
    url = f"/api/v1/nodes/{mine['id']}/acme-challenge"
    assert named.client.put(url, json={"value": VALUE}).status_code == 401
    assert named.client.put(url, json={"value": VALUE}, headers=friend.auth).status_code == 403
    for method in ("PUT", "DELETE"):
        refused = _challenge(named, method, theirs, VALUE, node_id=mine["id"])
        assert refused.status_code == 403
        assert f"not node {mine['id']}" in refused.json()["detail"]
    assert _records(route53) == {}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (VALUE[:-1], "42 characters"),
        (VALUE + "=", "padded"),
        (VALUE[:-1] + "+", "base64, not base64url"),
        (VALUE[:-1] + '"', "a quote would end the TXT string"),
    ],
)
def test_a_challenge_value_that_acme_never_sends_is_refused(
    named: Api, route53: Zone, value: str, why: str
) -> None:
    node = named.node(named.account("friend"), "den")
    refused = _challenge(named, "PUT", node, value)
    assert refused.status_code == 422, why
    assert refused.json()["detail"].startswith("body.value:"), refused.json()
    assert _records(route53) == {}


@pytest.mark.parametrize("tls_port", [0, 65536, "https"])
def test_a_tls_port_that_is_not_a_port_is_refused(named: Api, route53: Zone, tls_port) -> None:
    node = named.node(named.account("friend"), "den")
    refused = _announce(named, node, "100.64.0.7", tls_port)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("body.tls_port:"), refused.json()
    assert _records(route53) == {}


def test_https_on_an_ipv6_mesh_address_is_refused_with_an_edge_domain(named: Api) -> None:
    node = named.node(named.account("friend"), "den")
    refused = _announce(named, node, "[fd7a:115c:a1e0::5]", tls_port=8443)
    assert refused.status_code == 422
    assert "IPv4" in refused.json()["detail"]


def test_removing_a_node_removes_its_a_record(named: Api, route53: Zone) -> None:
    friend = named.account("friend")
    removed, leaving = named.node(friend, "den"), named.node(friend, "attic")
    assert _announce(named, removed, "100.64.0.7").status_code == 204
    assert _announce(named, leaving, "100.64.0.8").status_code == 204
    assert len(_records(route53)) == 2
    deleted = named.client.delete(f"/api/v1/nodes/{removed['id']}", headers=friend.auth)
    assert deleted.status_code == 204
    assert _records(route53) == {(f"n{leaving['id']}.{DOMAIN}.", "A"): (60, ["100.64.0.8"])}
    assert named.client.delete("/api/v1/node", headers=_bearer(leaving)).status_code == 204
    assert _records(route53) == {}


def test_an_edge_with_a_tls_port_is_played_over_https_by_its_name(named: Api) -> None:
    node = named.node(named.account("friend"), "den")
    (edge,) = _live_with_edge(named, node, tls_port=8443)
    assert edge["flv_url"].startswith(f"https://n{node['id']}.{DOMAIN}:8443/live/show.flv?ticket=")


def test_an_edge_without_a_tls_port_is_played_by_its_mesh_address(named: Api) -> None:
    node = named.node(named.account("friend"), "den")
    (edge,) = _live_with_edge(named, node, tls_port=None)
    assert edge["flv_url"].startswith("http://100.64.0.7:8080/live/show.flv?ticket=")


def test_without_an_edge_domain_a_tls_port_changes_nothing(api: Api) -> None:
    node = api.node(api.account("friend"), "den")
    (edge,) = _live_with_edge(api, node, tls_port=8443)
    assert edge["flv_url"].startswith("http://100.64.0.7:8080/live/show.flv?ticket=")


def test_when_route53_refuses_the_announcement_nothing_is_stored(
    settings: Settings, route53: Zone, sql
) -> None:
    missing_zone = settings.model_copy(
        update={"edge_domain": DOMAIN, "edge_zone_id": "Z0000000000000NOZONE"}
    )
    with TestClient(create_app(missing_zone)) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=BOOTSTRAP)
        node = api.node(api.account("friend"), "den")
        refused = _announce(api, node, "100.64.0.7")
        assert refused.status_code == 502
        assert "Route 53 refused the change: NoSuchHostedZone" in refused.json()["detail"]
        assert _challenge(api, "PUT", node, VALUE).status_code == 502
    assert sql("SELECT play_base_url, tls_port FROM nodes") == [(None, None)]


def test_when_route53_refuses_the_removal_the_node_stays_to_be_removed_again(
    settings: Settings, route53: Zone, sql
) -> None:
    """As with the mesh: the record first, so a failed removal leaves nothing half done."""
    missing_zone = settings.model_copy(
        update={"edge_domain": DOMAIN, "edge_zone_id": "Z0000000000000NOZONE"}
    )
    with TestClient(create_app(missing_zone)) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=BOOTSTRAP)
        friend = api.account("friend")
        node = api.node(friend, "den")
        sql("UPDATE nodes SET play_base_url = 'http://100.64.0.7:8080'")
        refused = client.delete(f"/api/v1/nodes/{node['id']}", headers=friend.auth)
        assert refused.status_code == 502
        assert "NoSuchHostedZone" in refused.json()["detail"]
    assert sql("SELECT count(*) FROM nodes") == [(1,)]
    assert _records(route53) == {}


def test_settings_need_both_edge_keys_or_neither(settings: Settings) -> None:
    fields = settings.model_dump()
    for only in ({"edge_domain": DOMAIN}, {"edge_zone_id": "Z123"}):
        with pytest.raises(ValidationError, match="STREAMR_EDGE_DOMAIN and STREAMR_EDGE_ZONE_ID"):
            Settings(**{**fields, **only})
    with pytest.raises(ValidationError, match="edge_domain"):
        Settings(**{**fields, "edge_domain": "Edge.Example.com", "edge_zone_id": "Z123"})


def test_deleting_what_route53_no_longer_holds_counts_as_done() -> None:
    """Route 53's own words for a DELETE of a missing record or of a replaced value (its
    InvalidChangeBatch messages); moto deletes by name alone, so these are not reproducible
    there."""
    gone = (address_change("DELETE", "n1.edge.example.com", "100.64.0.7"),)
    missing = (
        "Tried to delete resource record set [name='n1.edge.example.com.', type='A'] "
        "but it was not found"
    )
    replaced = (
        "Tried to delete resource record set [name='n1.edge.example.com.', type='A'] "
        "but the values provided do not match the current values"
    )
    assert already_gone("InvalidChangeBatch", missing, gone)
    assert already_gone("InvalidChangeBatch", replaced, gone)
    assert not already_gone("AccessDenied", missing, gone)
    upsert = (challenge_change("UPSERT", "n1.edge.example.com", VALUE),)
    assert not already_gone("InvalidChangeBatch", missing, upsert)

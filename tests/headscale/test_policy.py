"""The ACL policy: valid HuJSON, only defined tags and hosts, exactly the intended reachability."""

from __future__ import annotations

import pytest
from streamr_coordinator.domain.mesh import VIEWER_TAG

from headscale import render
from srs import render as srs_render
from tests.headscale import hujson

EXPECTED_REACHABILITY = {
    ("tag:friend", "tag:origin", "tcp", 1935),
    ("tag:friend", "tag:origin", "tcp", 8080),
    ("tag:viewer", "tag:friend", "tcp", 8080),
}


def policy() -> dict:
    return hujson.loads(render.render_policy())


def destinations(rule: dict) -> list[tuple[str, int]]:
    """`tag:origin:1935,8080` → [("tag:origin", 1935), ("tag:origin", 8080)]."""
    pairs = []
    for dst in rule["dst"]:
        target, ports = dst.rsplit(":", 1)
        if ports == "*":
            raise AssertionError(f"{dst} opens every port")
        for port in ports.split(","):
            low, _, high = port.partition("-")
            pairs.extend((target, number) for number in range(int(low), int(high or low) + 1))
    return pairs


def reachability(document: dict) -> set[tuple[str, str, str, int]]:
    return {
        (src, target, rule.get("proto", "any"), port)
        for rule in document["acls"]
        for src in rule["src"]
        for target, port in destinations(rule)
    }


def test_policy_is_hujson_with_comments() -> None:
    text = render.render_policy()
    assert text.lstrip().startswith("//")
    assert isinstance(policy(), dict)


def test_tags_are_defined_and_owned_by_nobody() -> None:
    assert policy()["tagOwners"] == {"tag:origin": [], "tag:friend": [], "tag:viewer": []}


def test_rules_reference_only_defined_tags_and_hosts() -> None:
    document = policy()
    defined = set(document["tagOwners"]) | set(document.get("hosts", {}))
    referenced = {src for rule in document["acls"] for src in rule["src"]} | {
        target for rule in document["acls"] for target, _ in destinations(rule)
    }
    assert referenced <= defined
    assert "*" not in referenced


def test_reachability_is_exactly_the_intended_set() -> None:
    document = policy()
    assert all(rule["action"] == "accept" for rule in document["acls"])
    assert reachability(document) == EXPECTED_REACHABILITY
    # Everything not listed is denied: there is no catch-all and no grants section widening it.
    assert set(document) == {"tagOwners", "acls"}


def test_origin_and_viewers_initiate_nothing() -> None:
    sources = {src for src, *_ in reachability(policy())}
    assert "tag:origin" not in sources
    assert sources == {"tag:friend", "tag:viewer"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2,], /* c */ "b": "x//y",}', {"a": [1, 2], "b": "x//y"}),
        ('// head\n{"s": "a,]"} // tail', {"s": "a,]"}),
        ('{"q": "say \\"hi\\" /* no */"}', {"q": 'say "hi" /* no */'}),
    ],
)
def test_hujson_reader(text: str, expected: dict) -> None:
    assert hujson.loads(text) == expected


def test_hujson_reader_rejects_unterminated_comment() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        hujson.loads('{"a": 1} /* open')


def test_an_invited_viewer_reaches_exactly_the_friends_edge_port() -> None:
    """The tag an invite's key carries (coordinator) may open the HTTP port friends' edges serve
    viewers on (the SRS edge config) and nothing else; nothing may open a connection to it."""
    reach = reachability(policy())
    assert {(dst, proto, port) for src, dst, proto, port in reach if src == VIEWER_TAG} == {
        ("tag:friend", "tcp", srs_render.HTTP_PORT)
    }
    assert not [rule for rule in reach if rule[1] == VIEWER_TAG]

"""Names the provider or AWS would refuse stop the offline run, as they stop `pulumi preview`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi_aws as aws
import pytest

from offline.harness import ProgramFailed, ProviderRefused, run_component
from offline.provider_rules import NAME_RULES, MissingNameRule, name_problems
from tests.infra.support import evaluated

BOTH_MODES = pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])


def refusal(build: Callable[[], Any], preview: bool) -> str | None:
    """The provider's message when `build` is refused, None when it is accepted."""
    try:
        run_component(build, preview=preview)
    except ProgramFailed as failure:
        assert isinstance(failure.__cause__, ProviderRefused), failure.__cause__
        return str(failure)
    return None


def balancer(logical_name: str, **kwargs: Any) -> Callable[[], None]:
    def build() -> None:
        aws.lb.LoadBalancer(logical_name, load_balancer_type="application", **kwargs)

    return build


@BOTH_MODES
def test_a_33_character_alb_name_fails_and_32_passes(preview: bool) -> None:
    message = refusal(balancer("edge", name="a" * 33), preview)
    assert message is not None
    assert f"name '{'a' * 33}' is 33 characters, longer than maximum length 32" in message
    assert refusal(balancer("edge", name="a" * 32), preview) is None


@BOTH_MODES
def test_an_auto_named_alb_counts_the_random_suffix(preview: bool) -> None:
    # 25 + "-" + 7 random characters = 33.
    message = refusal(balancer("b" * 25), preview)
    assert message == (
        f"aws:lb/loadBalancer:LoadBalancer resource '{'b' * 25}': name '{'b' * 25}' "
        "plus 7 random chars is longer than maximum length 32"
    )
    assert refusal(balancer("b" * 24), preview) is None


def test_a_target_group_has_the_same_limit() -> None:
    def target_group(logical_name: str) -> Callable[[], None]:
        return lambda: aws.lb.TargetGroup(logical_name, port=80, protocol="HTTP") and None

    assert refusal(target_group("streamr-prod-coordinator-tg"), preview=True) is not None
    assert refusal(target_group("streamr-prod-web-tg"), preview=True) is None


def test_characters_aws_refuses_are_named() -> None:
    message = refusal(balancer("edge", name="my_balancer"), preview=False)
    assert message is not None and "does not match" in message
    problems = name_problems(
        "aws:rds/instance:Instance", "db", {"identifier": "Streamr-Prod", "engine": "postgres"}
    )
    assert len(problems) == 1 and "'Streamr-Prod' does not match" in problems[0]


def test_auto_names_are_lower_cased_where_aws_wants_lower_case() -> None:
    run = run_component(lambda: aws.s3.Bucket("Access-Logs") and None)
    assert run.one("aws:s3/bucket:Bucket").outputs["bucket"].startswith("access-logs-")


def test_a_type_that_names_resources_without_a_known_rule_stops_the_run() -> None:
    with pytest.raises(ProgramFailed) as failed:
        run_component(lambda: aws.kinesis.Stream("events", shard_count=1) and None)
    assert isinstance(failed.value.__cause__, MissingNameRule)
    assert "aws:kinesis/stream:Stream" in str(failed.value)
    assert "offline/provider_rules.py" in str(failed.value)


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [("dev", {}), ("prod", {}), ("prod", {"paused": True}), ("dev", {"natStrategy": "gateway"})],
)
def test_every_name_the_program_gives_fits_and_every_naming_type_has_a_rule(
    stack: str, overrides: dict[str, Any]
) -> None:
    run = evaluated(stack, overrides)
    named = {r.type for r in run.resources if r.custom and r.type in NAME_RULES}
    assert "aws:lb/targetGroup:TargetGroup" in named or overrides.get("paused")
    for resource in run.resources:
        rule = NAME_RULES.get(resource.type)
        if rule is None or not resource.custom:
            continue
        physical = resource.outputs[rule.property]
        assert len(physical) <= rule.max_length, (resource.name, physical)


def listener_rules(*rules: dict[str, Any]) -> Callable[[], None]:
    """Rules on one HTTPS listener (the priority and conditions of each as given)."""

    def build() -> None:
        listener = aws.lb.Listener(
            "https",
            load_balancer_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/x",
            port=443,
            default_actions=[
                {"type": "fixed-response", "fixed_response": {"content_type": "text/plain"}}
            ],
        )
        for index, rule in enumerate(rules):
            aws.lb.ListenerRule(
                f"rule-{index}",
                listener_arn=listener.arn,
                actions=[
                    {"type": "fixed-response", "fixed_response": {"content_type": "text/plain"}}
                ],
                **rule,
            )

    return build


def paths(*values: str) -> list[dict[str, Any]]:
    return [{"path_pattern": {"values": list(values)}}]


def test_two_rules_may_not_share_a_priority_on_one_listener() -> None:
    message = refusal(
        listener_rules(
            {"priority": 100, "conditions": paths("/a/*")},
            {"priority": 100, "conditions": paths("/b/*")},
        ),
        preview=False,
    )
    assert message == (
        "aws:lb/listenerRule:ListenerRule resource 'rule-1': priority 100 is taken on its "
        "listener by 'rule-0'"
    )
    distinct = listener_rules(
        {"priority": 100, "conditions": paths("/a/*")},
        {"priority": 101, "conditions": paths("/b/*")},
    )
    assert refusal(distinct, preview=False) is None
    assert refusal(listener_rules({"priority": 0, "conditions": paths("/a")}), False) is not None


def test_a_rule_holds_at_most_five_condition_values_and_five_wildcards() -> None:
    five = paths("/a", "/b", "/c", "/d", "/e")
    assert refusal(listener_rules({"priority": 1, "conditions": five}), False) is None
    six = paths("/a", "/b", "/c", "/d", "/e", "/f")
    message = refusal(listener_rules({"priority": 1, "conditions": six}), False)
    assert message is not None and "6 condition values, more than the 5" in message
    wild = paths("/*/*/*", "/?/?/?")
    message = refusal(listener_rules({"priority": 1, "conditions": wild}), False)
    assert message is not None and "6 wildcards, more than the 5" in message


@BOTH_MODES
def test_a_path_pattern_is_at_most_128_characters_aws_allows(preview: bool) -> None:
    fits = "/" + "a" * 127
    assert refusal(listener_rules({"priority": 1, "conditions": paths(fits)}), preview) is None
    message = refusal(listener_rules({"priority": 1, "conditions": paths(fits + "a")}), preview)
    assert message is not None and "is 129 characters, longer than maximum length 128" in message
    message = refusal(listener_rules({"priority": 1, "conditions": paths("/live/a b")}), preview)
    assert message is not None and "'/live/a b' does not match" in message


def parameter(**kwargs: Any) -> Callable[[], None]:
    def build() -> None:
        aws.ssm.Parameter("secret", type="SecureString", **{"value": "v", **kwargs})

    return build


@BOTH_MODES
def test_a_parameter_name_fits_in_1011_characters_with_its_arn(preview: bool) -> None:
    """eu-west-1's ARN before the name, `arn:aws:ssm:eu-west-1:123456789012:parameter/`, is 45."""
    prefix = len("arn:aws:ssm:eu-west-1:123456789012:parameter/")
    fits = "/" + "a" * (1011 - prefix)
    assert refusal(parameter(name=fits), preview) is None
    message = refusal(parameter(name=fits + "a"), preview)
    assert message is not None
    assert "name is 1012 characters with its ARN, longer than maximum length 1011" in message


@BOTH_MODES
def test_a_parameter_hierarchy_has_at_most_15_levels(preview: bool) -> None:
    assert refusal(parameter(name="/l" * 15), preview) is None
    message = refusal(parameter(name="/l" * 16), preview)
    assert message is not None and "has 16 levels, more than the 15" in message


@BOTH_MODES
def test_a_parameter_name_uses_the_characters_aws_allows_and_no_reserved_prefix(
    preview: bool,
) -> None:
    assert refusal(parameter(name="/streamr-dev-wake/token_1.a"), preview) is None
    message = refusal(parameter(name="/streamr dev/token"), preview)
    assert message is not None and "does not match" in message
    message = refusal(parameter(name="/streamr/tok:en"), preview)
    assert message is not None and "does not match" in message
    for reserved in ("/aws/mine", "/SSM-things/x", "awsome"):
        message = refusal(parameter(name=reserved), preview)
        assert message is not None and "starts with a prefix AWS reserves" in message, reserved


@BOTH_MODES
def test_a_standard_parameter_holds_4_kb_and_an_advanced_one_8_kb(preview: bool) -> None:
    assert refusal(parameter(name="/p", value="x" * 4096), preview) is None
    message = refusal(parameter(name="/p", value="x" * 4097), preview)
    assert message is not None
    assert "value is 4097 bytes, more than the 4096 a Standard parameter may hold" in message
    # Bytes, not characters: 2049 two-byte characters are 4098 bytes.
    assert refusal(parameter(name="/p", value="é" * 2049), preview) is not None
    assert refusal(parameter(name="/p", value="x" * 8192, tier="Advanced"), preview) is None
    assert refusal(parameter(name="/p", value="x" * 8193, tier="Advanced"), preview) is not None

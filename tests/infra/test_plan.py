"""`make plan`: what `pulumi up` would create, grouped by component, with key settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from offline.harness import ROOT
from offline.plan import KEY_SETTINGS, main, render
from stack_config import StackConfig
from tests.infra.support import evaluated


def plan_lines(stack: str, preview: bool = False) -> list[str]:
    return render(evaluated(stack, preview=preview)).splitlines()


def line_for(lines: list[str], name: str) -> str:
    (line,) = [line for line in lines if f"  {name}  " in f"{line}  "]
    return line


def test_resources_are_grouped_under_their_component() -> None:
    lines = plan_lines("dev")
    component_lines = [line for line in lines if line.startswith("streamr.")]
    assert component_lines == [
        "streamr.cache.Cache  streamr-dev-cache",
        "streamr.coordinator.CoordinatorService  streamr-dev-coordinator",
        "streamr.database.Database  streamr-dev-db",
        "streamr.headscale.HeadscaleHost  streamr-dev-headscale",
        "streamr.monitoring.Monitoring  streamr-dev-monitoring",
        "streamr.network.Network  streamr-dev-net",
        "streamr.ops.PauseSchedule  streamr-dev-pause",
        "streamr.streaming.SrsOrigin  streamr-dev-srs",
        "streamr.streaming.OriginAddress  streamr-dev-srs-address",
        "streamr.ops.WakeEndpoint  streamr-dev-wake",
    ]
    database_at = lines.index("streamr.database.Database  streamr-dev-db")
    network_at = lines.index("streamr.network.Network  streamr-dev-net")
    instance = line_for(lines, "streamr-dev-db-postgres")
    assert database_at < lines.index(instance) < network_at
    assert instance.startswith("  aws.rds.Instance  ")


def test_key_settings_show_what_matters() -> None:
    lines = plan_lines("prod")
    database = line_for(lines, "streamr-prod-db-postgres")
    for setting in (
        "class=db.t4g.small",
        "engine=postgres 16",
        "storage=50 GB gp3",
        "encrypted=yes",
        "public=no",
        "multi-AZ=yes",
        "deletion protection=yes",
        "backup days=14",
        "final snapshot=yes",
        "password=managed by RDS",
    ):
        assert setting in database
    assert "in=tcp 5432 streamr-prod-net-coordinator-sg  out=none" in line_for(
        lines, "streamr-prod-db-sg"
    )
    assert "tier=private  cidr=10.0.0.0/20" in line_for(
        lines, "streamr-prod-net-private-eu-west-1a"
    )
    assert "auth token=[secret]" in line_for(lines, "streamr-prod-cache-valkey")
    assert "via=streamr-prod-net-nat-gw" in line_for(
        lines, "streamr-prod-net-private-default-route"
    )


def test_outputs_are_listed_at_the_end() -> None:
    lines = plan_lines("dev")
    start = lines.index("Stack outputs:") + 1
    outputs = lines[start : lines.index("", start)]
    names = [line.split()[0] for line in outputs]
    assert names[:3] == ["vpcId", "publicSubnetIds", "privateSubnetIds"]
    assert "databaseSecretArn" in names
    assert any("resources in 17 components." in line for line in lines)


def test_the_prod_plan_says_which_values_are_documentation_names() -> None:
    """The prod stack file leaves the domain to its operator; the plan says what it shows."""
    lines = plan_lines("prod")
    assert lines[2] == (
        "streamr:domain is not set in the stack file; shown with the documentation value "
        "'stream.example.org' in its place; `pulumi up` needs yours (see the stack file)."
    )
    assert lines[3].startswith("streamr:hostedZoneId is not set in the stack file")
    assert not [line for line in plan_lines("dev") if "is not set in the stack file" in line]


def test_the_plan_ends_with_the_monthly_cost() -> None:
    """The same figures as `make cost`, so a reviewer sees the bill next to the change."""
    from offline.cost_report import build_report

    totals = build_report("dev").totals()
    lines = plan_lines("dev")
    assert lines[-2] == (
        f"Monthly cost: running {totals['running']:.2f} USD, stop-paused "
        f"{totals['stopped']:.2f}, on the stop schedule {totals['scheduled']:.2f}."
    )
    assert lines[-1].startswith("Per component, and deep-paused: `make cost STACK=dev`")
    paused = render(evaluated("dev", {"paused": True})).splitlines()
    assert paused[-2] == f"Monthly cost, deep-paused: {totals['deep_paused']:.2f} USD."
    assert plan_lines("prod", preview=True)[-2].startswith("Monthly cost: running ")


def test_preview_shows_unknowns_as_known_after_apply() -> None:
    lines = plan_lines("dev", preview=True)
    assert "(known after apply)" in line_for(lines, "streamr-dev-db-subnets")
    assert lines[0].endswith("evaluated offline (preview).")


def test_every_key_setting_type_is_a_real_type_token() -> None:
    for token in KEY_SETTINGS:
        package, module, kind = token.split(":")
        assert package in ("aws", "random") and "/" in module and kind[0].isupper(), token


def test_overrides_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "prod", "--set", "paused=true"]) == 0
    assert "NatGateway" not in capsys.readouterr().out
    assert main(["--stack", "dev", "--set", "natStrategy=nat"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("make plan: streamr:natStrategy: 'nat' is not allowed")
    assert main(["--stack", "staging"]) == 2
    assert "no stack 'staging'" in capsys.readouterr().err


def test_make_plan_command_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "offline.plan", "--stack", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "aws.rds.Instance  streamr-dev-db-postgres" in result.stdout


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_plan_fails_like_preview_on_a_name_aws_would_refuse(
    stack: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today's stacks pass; a longer prefix (a new stage, say) pushes the ALB past 32 characters."""
    assert main(["--stack", stack]) == 0
    capsys.readouterr()
    monkeypatch.setattr(
        StackConfig, "prefix", property(lambda self: f"streamr-{self.stage}-eu-west-1")
    )
    assert main(["--stack", stack]) == 2
    error = capsys.readouterr().err
    assert error.startswith("make plan: ")
    # Every refusal is named (the cache's 40-character limit goes too), the ALB's among them.
    assert (
        f"aws:lb/loadBalancer:LoadBalancer resource 'streamr-{stack}-eu-west-1-web-alb': name "
        f"'streamr-{stack}-eu-west-1-web-alb' plus 7 random chars is longer than maximum length 32"
    ) in error

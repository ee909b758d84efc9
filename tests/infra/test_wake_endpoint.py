"""The wake endpoint under Pulumi mocks: a public function URL whose function holds a generated
token it alone reads, may only look, keep its record and ask the pause function to resume, keeps
its URL through a deep pause, and dispatches the GitHub workflow only when a repository is set."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from components.pause_schedule import ops_archive
from components.wake_endpoint import HANDLER, WORKFLOW
from offline.harness import ProgramRun, Resource
from stack_config import StackConfig, StackConfigError
from tests.infra.support import evaluated

GITHUB = {
    "githubRepository": "streamr/streamrp2p",
    "stateBucket": "streamr-state",
    "secretsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return evaluated("dev")


@pytest.fixture(scope="module")
def deep() -> ProgramRun:
    return evaluated("dev", {"paused": True})


PARAMETER = "aws:ssm/parameter:Parameter"


def part(run: ProgramRun, suffix: str) -> Resource:
    """The cloud resource of that name (a SecureParameter component shares its parameter's)."""
    name = f"streamr-{run.stack}-wake-{suffix}"
    return run.named(name, PARAMETER if suffix in ("token", "github-token") else None)


def environment(run: ProgramRun) -> dict[str, str]:
    return part(run, "function").inputs["environment"]["variables"]


def statements(run: ProgramRun) -> dict[str, dict[str, Any]]:
    policy = json.loads(part(run, "policy").inputs["policy"])
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_the_url_is_public_and_the_function_guards_it(dev: ProgramRun) -> None:
    url = part(dev, "url")
    assert url.inputs["authorizationType"] == "NONE"
    assert url.inputs["functionName"] == part(dev, "function").outputs["name"]
    permission = part(dev, "public-url").inputs
    assert permission["action"] == "lambda:InvokeFunctionUrl"
    assert (permission["principal"], permission["functionUrlAuthType"]) == ("*", "NONE")
    assert dev.outputs["wakeUrl"] == url.outputs["functionUrl"]
    function = part(dev, "function").inputs
    assert (function["handler"], function["runtime"]) == (HANDLER, "python3.12")


def test_the_token_is_generated_and_kept_only_in_a_secure_parameter(dev: ProgramRun) -> None:
    token = part(dev, "token")
    assert (token.inputs["type"], token.inputs["tier"]) == ("SecureString", "Standard")
    assert token.inputs["name"] == "/streamr-dev-wake/token"
    assert "value" in token.secret_inputs
    generated = part(dev, "token-value")
    assert generated.inputs["length"] >= 32
    assert token.inputs["value"] == generated.outputs["result"]
    assert not token.ignore_changes  # the program writes it; replacing token-value rotates it
    variables = environment(dev)
    assert variables["WAKE_TOKEN_PARAMETER"] == token.inputs["name"]
    assert generated.outputs["result"] not in json.dumps(variables)
    assert dev.outputs["wakeTokenParameter"] == token.inputs["name"]


def test_the_function_may_only_look_read_its_token_keep_its_record_and_ask_for_a_resume(
    dev: ProgramRun,
) -> None:
    by_sid = statements(dev)
    assert set(by_sid) == {"Logs", "Look", "ReadItsTokens", "DecryptItsParameters",
                           "KeepItsRecord", "AskThePauseFunctionToResume"}  # fmt: skip
    assert by_sid["Logs"]["Resource"] == part(dev, "logs").outputs["arn"] + ":*"
    assert all(action.split(":")[1].startswith("Describe") for action in by_sid["Look"]["Action"])
    assert by_sid["ReadItsTokens"]["Resource"] == [part(dev, "token").outputs["arn"]]
    assert by_sid["ReadItsTokens"]["Action"] == "ssm:GetParameter"
    assert by_sid["DecryptItsParameters"]["Condition"]["StringEquals"] == {
        "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": [part(dev, "token").outputs["arn"]],
    }
    assert by_sid["KeepItsRecord"]["Resource"] == (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/streamr/dev/wake-record"
    )
    assert by_sid["AskThePauseFunctionToResume"] == {
        "Sid": "AskThePauseFunctionToResume",
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": dev.named("streamr-dev-pause-function").outputs["arn"],
    }
    variables = environment(dev)
    assert variables["PAUSE_FUNCTION_NAME"] == dev.outputs["pauseFunctionName"]
    assert variables["RECORD_PARAMETER"] == "/streamr/dev/wake-record"
    assert part(dev, "record").inputs["name"] == variables["RECORD_PARAMETER"]
    # The record is the function's to write: a `pulumi up` does not reset it.
    assert "value" in part(dev, "record").ignore_changes


def test_the_wake_url_survives_a_deep_pause(dev: ProgramRun, deep: ProgramRun) -> None:
    assert deep.outputs["wakeUrl"] == dev.outputs["wakeUrl"]
    assert environment(deep)["DEEP_PAUSED"] == "true"
    assert environment(dev)["DEEP_PAUSED"] == "false"
    # Ingest is checked at the origin's address, which a deep pause keeps.
    address = dev.named("streamr-dev-srs-address-eip").outputs["publicIp"]
    assert environment(dev)["RTMP_HOST"] == address
    assert environment(deep)["RTMP_HOST"] == environment(dev)["RTMP_HOST"]
    # A publish also needs the coordinator (on_publish): asked while it has a load balancer.
    assert environment(dev)["COORDINATOR_URL"] == dev.outputs["coordinatorUrl"]
    assert "COORDINATOR_URL" not in environment(deep)


def test_without_a_repository_there_is_no_github_token_or_dispatch(dev: ProgramRun) -> None:
    assert not any(key.startswith("GITHUB_") for key in environment(dev))
    assert "wakeGithubTokenParameter" not in dev.outputs


def test_with_a_repository_a_deep_wake_dispatches_its_pause_workflow() -> None:
    run = evaluated("dev", {**GITHUB, "paused": True})
    github_token = part(run, "github-token")
    # The operator stores it (README "Go live on demand"): created as a placeholder, kept.
    assert (github_token.inputs["type"], github_token.inputs["value"]) == ("SecureString", "unset")
    assert github_token.ignore_changes == {"value"}
    variables = environment(run)
    assert {key: value for key, value in variables.items() if key.startswith("GITHUB_")} == {
        "GITHUB_REPOSITORY": "streamr/streamrp2p",
        "GITHUB_WORKFLOW": WORKFLOW,
        "GITHUB_REF": "main",
        "GITHUB_TOKEN_PARAMETER": "/streamr-dev-wake/github-token",
    }
    assert statements(run)["ReadItsTokens"]["Resource"] == [
        part(run, "token").outputs["arn"],
        github_token.outputs["arn"],
    ]
    assert run.outputs["wakeGithubTokenParameter"] == "/streamr-dev-wake/github-token"
    workflow = Path(".github/workflows", WORKFLOW).read_text(encoding="utf-8")
    assert "workflow_dispatch:" in workflow and "options: [pause, resume]" in workflow


def test_the_wake_endpoint_is_optional_and_needs_a_pause_to_undo() -> None:
    run = evaluated("dev", {"wakeEndpoint": False})
    assert not run.of_type("streamr:ops:WakeEndpoint")
    assert "wakeUrl" not in run.outputs
    with pytest.raises(StackConfigError) as raised:
        StackConfig.from_mapping(
            {"stage": "dev", "pauseAt": "", "resumeAt": "", "wakeEndpoint": True}, "eu-west-1"
        )
    assert "streamr:wakeEndpoint needs a pause to undo" in str(raised.value)


def test_the_archive_carries_the_wake_handler_and_it_imports(tmp_path: Path) -> None:
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, asset in ops_archive().assets.items():
            archive.write(asset.path, name)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ops.wake_handler as h; "
        "assert h.__file__.startswith(sys.argv[1]); print(h.lambda_handler.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(bundle)], capture_output=True, text=True, check=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.stdout.strip() == "lambda_handler"

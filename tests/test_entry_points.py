"""Every command-line entry point answers a usage or input error with one clear line on stderr and
a non-zero exit, never a traceback. Each runs as the user would run it, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = str(Path(sys.executable).parent / "streamr-coordinator")
# No AWS credentials anywhere: what a new user's machine has.
NO_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STREAMR_"))}
    return subprocess.run(
        list(argv),
        cwd=ROOT,
        env={**clean, **NO_AWS, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


PYTHON = sys.executable
CASES = {
    "plan: unknown stack": (
        [PYTHON, "-m", "offline.plan", "--stack", "staging"],
        "make plan: no stack 'staging'; stacks: dev, prod",
    ),
    "plan: unknown option": (
        [PYTHON, "-m", "offline.plan", "--bogus"],
        "make plan: unrecognized arguments: --bogus (see make plan --help)",
    ),
    "plan: bad config value": (
        [PYTHON, "-m", "offline.plan", "--set", "natStrategy=nat"],
        "make plan: streamr:natStrategy: 'nat' is not allowed; allowed values: none, instance, "
        "gateway",
    ),
    "plan: an override without a value": (
        [PYTHON, "-m", "offline.plan", "--set", "paused"],
        "make plan: --set expects KEY=VALUE, got 'paused' (see make plan --help)",
    ),
    "policy check: an override without a value": (
        [PYTHON, "-m", "offline.policy_check", "--set", "paused"],
        "python -m offline.policy_check: --set expects KEY=VALUE, got 'paused' "
        "(see python -m offline.policy_check --help)",
    ),
    "cost: unknown stack": (
        [PYTHON, "-m", "offline.cost_report", "--stack", "staging"],
        "make cost: no stack 'staging'; stacks: dev, prod",
    ),
    "policy check: unknown stack": (
        [PYTHON, "-m", "offline.policy_check", "--stack", "staging"],
        "python -m offline.policy_check: no stack 'staging'; stacks: dev, prod",
    ),
    "ops: unknown command": (
        [PYTHON, "-m", "ops", "frobnicate", "--stack", "dev"],
        "streamr-ops: argument command: invalid choice: 'frobnicate' (choose from pause, "
        "resume, status) (see streamr-ops --help)",
    ),
    "ops: unknown stack": (
        [PYTHON, "-m", "ops", "status", "--stack", "staging"],
        "streamr-ops: --stack: no stack 'staging'; stacks: dev, prod",
    ),
    "bootstrap: bad bucket": (
        [PYTHON, "-m", "backend.bootstrap", "--bucket", "Bad_Name", "--region", "eu-west-1"],
        "python -m backend.bootstrap: --bucket: 'Bad_Name' is not allowed; allowed values: an S3 "
        "bucket name (3-63 lower-case letters, digits, dots and hyphens, starting and ending "
        "alphanumeric)",
    ),
    "bootstrap: missing arguments": (
        [PYTHON, "-m", "backend.bootstrap"],
        "python -m backend.bootstrap: the following arguments are required: --bucket, --region "
        "(see python -m backend.bootstrap --help)",
    ),
    "coordinator: unknown command": (
        [COORDINATOR, "frobnicate"],
        "streamr-coordinator: argument command: invalid choice: 'frobnicate' (choose from "
        "migrate, serve, create-admin) (see streamr-coordinator --help)",
    ),
    "coordinator: bad port": (
        [COORDINATOR, "serve", "--port", "eighty"],
        "streamr-coordinator serve: argument --port: invalid int value: 'eighty' "
        "(see streamr-coordinator serve --help)",
    ),
    "coordinator: no settings": (
        [COORDINATOR, "migrate"],
        "streamr-coordinator: configuration error: STREAMR_TOKEN_PEPPER: Field required; "
        "STREAMR_HOOK_SECRET: Field required",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_a_non_zero_exit(case: str) -> None:
    argv, expected = CASES[case]
    result = run(*argv)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # Python < 3.12 quotes argparse choices; later ones do not: compare without the quotes.
    assert [line.replace("'", "") for line in result.stderr.splitlines()] == [
        expected.replace("'", "")
    ]


def test_the_coordinator_says_in_one_line_that_the_database_is_unreachable() -> None:
    settings = {
        "STREAMR_DATABASE_URL": "postgresql+psycopg://streamr@127.0.0.1:1/streamr",
        "STREAMR_TOKEN_PEPPER": "p" * 32,
        "STREAMR_HOOK_SECRET": "h" * 32,
    }
    result = run(COORDINATOR, "migrate", env=settings)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamr-coordinator migrate: cannot reach the database: ")


def test_ops_status_without_aws_credentials_still_shows_the_stack_files_schedule() -> None:
    result = run(PYTHON, "-m", "ops", "status", "--stack", "dev")
    assert result.returncode == 5
    assert result.stdout.splitlines() == [
        "streamr/dev in eu-west-1 (from stacks/Pulumi.dev.yaml): pauses 22:00, resumes 08:00 "
        "(Europe/Amsterdam) on every day"
    ]
    assert result.stderr.splitlines() == [
        "streamr-ops: cannot list streamr/dev resources: Unable to locate credentials "
        "(set AWS credentials: aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)"
    ]

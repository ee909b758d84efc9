"""The host bootstrap script: shellcheck-clean, pinned release, key rotation on a calendar timer."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from headscale import render

SCRIPT = Path("headscale/bootstrap.sh")
SHELLCHECK = Path(".venv/bin/shellcheck")


def test_bootstrap_passes_shellcheck() -> None:
    result = subprocess.run(
        [str(SHELLCHECK), "--severity=style", "--shell=bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_bootstrap_is_strict_and_executable() -> None:
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert SCRIPT.stat().st_mode & 0o111


def test_bootstrap_verifies_the_download_before_installing() -> None:
    text = SCRIPT.read_text()
    check = text.index("sha256sum --check")
    install = text.index('install -o root -g root -m 0755 "$download" /usr/bin/headscale')
    assert check < install


def test_pinned_release_is_a_concrete_version_and_digest() -> None:
    assert re.fullmatch(r"0\.29\.\d+", render.HEADSCALE_VERSION)
    assert re.fullmatch(r"[0-9a-f]{64}", render.HEADSCALE_LINUX_ARM64_SHA256)


def test_api_key_is_created_with_expiry_and_never_on_a_command_line() -> None:
    text = SCRIPT.read_text()
    assert 'apikeys create --expiration "$API_KEY_LIFETIME"' in text
    assert "API_KEY_LIFETIME=90d" in text
    assert '--value "file://' in text
    assert "OnCalendar=$API_KEY_ROTATION_CALENDAR" in text
    assert "Persistent=true" in text


def test_unknown_command_is_refused(tmp_path: Path) -> None:
    env_file = tmp_path / "headscale.env"
    env_file.write_text(
        "HEADSCALE_VERSION=0.29.3\nHEADSCALE_SHA256=00\nDATA_VOLUME_ID=vol-1\n"
        f"DATA_DIR={tmp_path}\nAPI_KEY_PARAMETER=/p\nAWS_REGION=eu-central-1\n"
    )
    script = SCRIPT.read_text().replace("/etc/streamr/headscale.env", str(env_file))
    result = subprocess.run(
        ["bash", "-c", script, "bootstrap.sh", "frobnicate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown command 'frobnicate' (allowed: install, rotate-api-key)" in result.stderr


def test_missing_parameter_is_named(tmp_path: Path) -> None:
    env_file = tmp_path / "headscale.env"
    env_file.write_text("HEADSCALE_VERSION=0.29.3\n")
    script = SCRIPT.read_text().replace("/etc/streamr/headscale.env", str(env_file))
    result = subprocess.run(
        ["bash", "-c", script, "bootstrap.sh", "install"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "HEADSCALE_SHA256: missing in" in result.stderr


def test_rotation_stores_the_new_key_through_a_private_file(tmp_path: Path) -> None:
    """Run `rotate-api-key` against stand-ins for headscale and the AWS CLI."""
    key = "hskey-api-abcdefghijkl-0123456789abcdef0123456789abcdef"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    headscale = bin_dir / "headscale"
    headscale.write_text(
        f'#!/usr/bin/env bash\necho "$*" >>"{tmp_path}/headscale.args"\necho {key}\n'
    )
    aws = bin_dir / "aws"
    aws.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >>"{tmp_path}/aws.args"\n'
        'for arg in "$@"; do case "$arg" in file://*) '
        f'cat "${{arg#file://}}" >"{tmp_path}/stored"; stat -c %a "${{arg#file://}}" '
        f'>"{tmp_path}/mode";; esac; done\n'
        "echo v1\n"
    )
    for stub in (headscale, aws):
        stub.chmod(0o755)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env_file = tmp_path / "headscale.env"
    env_file.write_text(
        "HEADSCALE_VERSION=0.29.3\nHEADSCALE_SHA256=00\nDATA_VOLUME_ID=vol-0123456789abcdef0\n"
        f"DATA_DIR={data_dir}\n"
        "API_KEY_PARAMETER=/streamr-dev-headscale/api-key\n"
        "AWS_REGION=eu-west-1\n"
    )
    script = (
        SCRIPT.read_text()
        .replace("/etc/streamr/headscale.env", str(env_file))
        .replace("/usr/bin/headscale", str(headscale))
    )
    result = subprocess.run(
        ["bash", "-c", script, "bootstrap.sh", "rotate-api-key"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "headscale.args").read_text() == "apikeys create --expiration 90d\n"
    assert (tmp_path / "stored").read_text() == key
    assert (tmp_path / "mode").read_text().strip() == "600"
    aws_args = (tmp_path / "aws.args").read_text()
    assert aws_args.startswith(
        "ssm put-parameter --name /streamr-dev-headscale/api-key --type SecureString --overwrite "
        "--value file://"
    )
    assert key not in aws_args
    assert (data_dir / ".coordinator-api-key-issued").exists()

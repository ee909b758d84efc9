"""The coordinator host's user data, booted in a Debian root: what it calls, in which order, how
long it could wait (never near the group's health-check grace), what a second boot and a
credential rotation do, and what it says when a secret cannot be read."""

from __future__ import annotations

import json
import os

from offline.harness import ProgramRun
from tests.boot.conftest import user_data_of
from tests.boot.debian_root import DebianRoot

RUNNER = "/usr/local/sbin/streamr-coordinator-run"
REFRESHER = "/usr/local/sbin/streamr-coordinator-secrets"
SECRETS = "/run/streamr/secrets"
APP_UID = 10001


FIRST_PASSWORD = "first-password"
# The mesh key's parameter until the Headscale host has stored the key: the program's placeholder.
NOT_YET = "echo unset"


# What `aws sts assume-role --query Credentials --output json` prints.
ASSUMED = json.dumps(
    {
        "AccessKeyId": "ASIAEDGEDNS",
        "SecretAccessKey": "edge-dns-secret",
        "SessionToken": "edge-dns-session",
        "Expiration": "2026-12-01T08:00:00+00:00",
    }
)


# The one parameter of the values only the hosts read, as the program stores it (a JSON object).
HOST_SECRETS = {
    "token_pepper": "pepper-0123456789",
    "admin_token": "admin-0123456789",
    "cache_auth_token": "cache-0123456789",
}


def aws_answers(
    password: str = FIRST_PASSWORD,
    mesh_key: str | None = "hskey-api-1",
    assumed: str = ASSUMED,
    host_secrets: dict[str, str] = HOST_SECRETS,
) -> str:
    """The `aws` stand-in: the database secret by ARN, the other secrets' parameters by name
    (the mesh key's holds the placeholder when None); the edge DNS role's credentials."""
    mesh = f'echo "{mesh_key}"' if mesh_key is not None else NOT_YET
    return f"""
case "$*" in
  *sts\\ assume-role*) echo '{assumed}' ;;
  *get-secret-value*'rds!db'*) echo '{{"username": "streamr_admin", "password": "{password}"}}' ;;
  *get-parameter*headscale/api-key*--with-decryption*) {mesh} ;;
  *get-parameter*coordinator/host-secrets*--with-decryption*) echo '{json.dumps(host_secrets)}' ;;
  *get-parameter*--with-decryption*) echo "value-of-$6" ;;
  *ecr\\ get-login-password*) echo "ecr-password" ;;
esac
"""


# `docker login --password-stdin` reads the password its pipe carries (else `aws` gets SIGPIPE).
DOCKER = 'case "$*" in *--password-stdin*) cat >/dev/null ;; esac\n'
CURL_DOWNLOADS = """
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then echo "-----BEGIN CERTIFICATE-----" >"$2"; fi
  shift
done
"""


def boot(root: DebianRoot, run: ProgramRun, **answers: str | None) -> None:
    root.behave({"aws": aws_answers(**answers), "curl": CURL_DOWNLOADS, "docker": DOCKER})  # type: ignore[arg-type]
    first = root.cloud_init(user_data_of(run, f"streamr-{run.stack}-coordinator-lt"))
    assert first.returncode == 0, first.stderr
    # cloud-init installs the packages, then enables the units in order.
    assert first.calls[0] == ["dnf", "install", "-y", "docker", "jq"]
    enabled = [call[3] for call in first.calls if call[:3] == ["systemctl", "enable", "--now"]]
    assert enabled == [
        "docker.service",
        "streamr-coordinator-secrets.timer",
        "streamr-coordinator.service",
    ]


def test_the_service_reads_its_secrets_then_pulls_and_runs_the_image_by_digest(
    root: DebianRoot, prod: ProgramRun
) -> None:
    boot(root, prod)
    started = root.run(RUNNER)  # what systemd runs for streamr-coordinator.service
    assert started.returncode == 0, started.stderr
    secrets_read = started.index("aws", "secretsmanager", "get-secret-value")
    login = started.index("docker", "login")
    pull = started.index("docker", "pull")
    run = started.index("docker", "run")
    assert secrets_read < login < pull < run
    image = started.calls[run][-1]
    assert "@sha256:" in image
    assert started.calls[pull][2] == image
    arguments = started.calls[run]
    assert "/run/streamr/secrets:/run/secrets/streamr:ro" in arguments

    env = root.file("/run/streamr/coordinator.env").read_text()
    assert "STREAMR_DATABASE_USER=streamr_admin" in env
    assert "STREAMR_DATABASE_PASSWORD_FILE=/run/secrets/streamr/database-password" in env
    assert "first-password" not in env  # the password is only in its file
    assert "STREAMR_HEADSCALE_API_KEY_FILE=/run/secrets/streamr/headscale-api-key" in env
    origin = prod.outputs["rtmpIngestUrl"].removeprefix("rtmp://").removesuffix("/live")
    assert f"STREAMR_ORIGIN_PUBLISH_URL=rtmp://{origin}/live\n" in env
    # Prod is HTTPS-only: viewers play the origin under the coordinator's own https origin.
    assert "STREAMR_ORIGIN_PLAY_URL=https://stream.example.org\n" in env
    password = root.file(f"{SECRETS}/database-password")
    assert password.read_text() == "first-password\n"
    assert (password.stat().st_uid, password.stat().st_mode & 0o777) == (APP_UID, 0o400)
    assert root.file(f"{SECRETS}/headscale-api-key").read_text() == "hskey-api-1\n"
    assert oct(root.file("/run/streamr/coordinator.env").stat().st_mode & 0o777) == "0o600"


def test_the_values_only_the_hosts_read_come_from_one_secret_by_key(
    root: DebianRoot, prod: ProgramRun
) -> None:
    """The token pepper, the admin token and the cache's auth token share one parameter (a JSON
    object); the hook secret, which the SRS origin reads too, keeps its own. Only the database
    password comes from Secrets Manager, where RDS rotates it."""
    boot(root, prod)
    started = root.run(RUNNER)
    assert started.returncode == 0, started.stderr
    calls = started.commands("aws")
    read = [
        call[call.index("--secret-id") + 1]
        for call in calls
        if call[:2] == ["secretsmanager", "get-secret-value"]
    ]
    parameters = [call for call in calls if call[:2] == ["ssm", "get-parameter"]]
    assert all("--with-decryption" in call for call in parameters)
    host_secrets = prod.outputs["coordinatorSecretsParameter"]
    hook = "/streamr-prod-coordinator/hook-secret"
    assert read == [prod.outputs["databaseSecretArn"]]
    assert sorted(call[call.index("--name") + 1] for call in parameters) == sorted(
        [prod.outputs["headscaleApiKeyParameter"], host_secrets, hook]
    )
    env = root.file("/run/streamr/coordinator.env").read_text().splitlines()
    assert "STREAMR_TOKEN_PEPPER=pepper-0123456789" in env
    assert "STREAMR_ADMIN_BOOTSTRAP_TOKEN=admin-0123456789" in env
    assert f"STREAMR_HOOK_SECRET=value-of-{hook}" in env
    cache = prod.one("aws:elasticache/replicationGroup:ReplicationGroup").outputs
    address = f"{cache['primaryEndpointAddress']}:{cache['port']}"
    assert f"STREAMR_REDIS_URL=rediss://:cache-0123456789@{address}/0" in env


def test_a_value_missing_from_the_host_secrets_stops_the_start_with_its_key(
    root: DebianRoot, prod: ProgramRun
) -> None:
    boot(root, prod)
    root.behave({"aws": aws_answers(host_secrets={"token_pepper": "pepper-0123456789"})})
    failed = root.run(RUNNER)
    assert failed.returncode != 0
    host_secrets = prod.outputs["coordinatorSecretsParameter"]
    assert f"no admin_token in {host_secrets}" in failed.stderr
    assert failed.commands("docker") == []  # systemd restarts the unit in 5 s and tries again
    assert not root.file("/run/streamr/coordinator.env").exists()


def test_no_boot_wait_comes_near_the_health_check_grace(root: DebianRoot, prod: ProgramRun) -> None:
    """First deploy: Headscale has not written the mesh key. The instance must still be serving
    before the auto scaling group's grace ends, or the group replaces it, again and again."""
    grace = prod.one("aws:autoscaling/group:Group").inputs["healthCheckGracePeriod"]
    boot(root, prod, mesh_key=None)
    started = root.run(RUNNER)
    assert started.returncode == 0, started.stderr
    assert started.commands("docker")[-1][0] == "run"
    assert started.slept() == 0
    # curl's own retries (5, exponential from 1 s) are the only other wait: about 31 s.
    assert started.slept() + 31 < grace / 2
    assert "no Headscale API key" in started.stderr
    assert not root.file(f"{SECRETS}/headscale-api-key").exists()
    # The timer delivers the key once the Headscale host has stored it.
    root.behave({"aws": aws_answers(mesh_key="hskey-api-first")})
    refreshed = root.run(REFRESHER)
    assert refreshed.returncode == 0, refreshed.stderr
    assert root.file(f"{SECRETS}/headscale-api-key").read_text() == "hskey-api-first\n"


def test_the_timer_carries_a_rotated_password_into_the_file_and_only_then_writes(
    root: DebianRoot, prod: ProgramRun
) -> None:
    boot(root, prod)
    assert root.run(RUNNER).returncode == 0
    unchanged = root.run(REFRESHER)
    assert unchanged.returncode == 0 and "updated" not in unchanged.stderr
    root.behave({"aws": aws_answers(password="rotated-password")})
    rotated = root.run(REFRESHER)
    assert rotated.returncode == 0, rotated.stderr
    assert "updated database-password" in rotated.stderr
    assert root.file(f"{SECRETS}/database-password").read_text() == "rotated-password\n"
    leftovers = [name for name in os.listdir(root.file(SECRETS)) if name.startswith(".")]
    assert leftovers == []


def test_a_second_boot_starts_the_same_service_again_harmlessly(
    root: DebianRoot, prod: ProgramRun
) -> None:
    """A stop/start (the nightly pause) re-runs only the unit, on the same disk."""
    boot(root, prod)
    first = root.run(RUNNER)
    second = root.run(RUNNER)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert len(first.commands("curl")) == 1
    assert second.commands("curl") == []  # the CA bundle is kept
    assert second.index("docker", "rm", "-f", "streamr-coordinator") < second.index("docker", "run")
    assert root.file("/run/streamr/coordinator.env").read_text().count("STREAMR_PORT=") == 1


def test_an_unreadable_database_secret_stops_the_start_with_its_name(
    root: DebianRoot, prod: ProgramRun
) -> None:
    boot(root, prod)
    root.behave(
        {
            "aws": 'case "$*" in *"rds!db"*) echo "AccessDeniedException" >&2; exit 254 ;; esac\n'
            + aws_answers()
        }
    )
    failed = root.run(RUNNER)
    assert failed.returncode != 0
    assert "cannot read the database secret arn:aws:secretsmanager:" in failed.stderr
    assert failed.commands("docker") == []  # systemd restarts the unit in 5 s and tries again


def test_the_container_gets_the_edge_dns_roles_credentials_and_nothing_more(
    root: DebianRoot, prod: ProgramRun
) -> None:
    """Edge names (issue 23): the container cannot reach the instance's credentials (IMDS hop
    limit 1); the host assumes the edge DNS role and keeps its credentials in a file boto3 reads
    through `credential_process`, renewed only when 20 minutes old."""
    boot(root, prod)
    started = root.run(RUNNER)
    assert started.returncode == 0, started.stderr
    (assume,) = [call for call in started.commands("aws") if call[:2] == ["sts", "assume-role"]]
    role = prod.named("streamr-prod-coordinator-edge-dns-role").outputs["arn"]
    assert assume[assume.index("--role-arn") + 1] == role
    assert assume[assume.index("--duration-seconds") + 1] == "3600"
    credentials = root.file(f"{SECRETS}/edge-dns-credentials.json")
    assert json.loads(credentials.read_text()) == {"Version": 1, **json.loads(ASSUMED)}
    assert (credentials.stat().st_uid, credentials.stat().st_mode & 0o777) == (APP_UID, 0o400)
    config = root.file("/etc/streamr/aws-config").read_text()
    assert config == (
        "[default]\ncredential_process = cat /run/secrets/streamr/edge-dns-credentials.json\n"
    )
    arguments = started.calls[started.index("docker", "run")]
    assert "/etc/streamr/aws-config:/etc/streamr/aws-config:ro" in arguments
    env = root.file("/run/streamr/coordinator.env").read_text()
    assert "STREAMR_EDGE_DOMAIN=edge.stream.example.org\n" in env
    assert "STREAMR_EDGE_ZONE_ID=Z0DOCUMENTATION0EXAMPLE\n" in env
    assert "AWS_CONFIG_FILE=/etc/streamr/aws-config\n" in env
    assert "edge-dns-secret" not in env
    # The timer a minute later: the credentials are fresh, STS is not asked again.
    again = root.run(REFRESHER)
    assert again.returncode == 0, again.stderr
    assert not [call for call in again.commands("aws") if call[:2] == ["sts", "assume-role"]]


def test_without_the_edge_dns_role_the_coordinator_still_starts(
    root: DebianRoot, prod: ProgramRun
) -> None:
    boot(root, prod)
    root.behave(
        {
            "aws": 'case "$*" in *assume-role*) echo "AccessDenied" >&2; exit 254 ;; esac\n'
            + aws_answers(),
            "docker": DOCKER,
        }
    )
    started = root.run(RUNNER)
    assert started.returncode == 0, started.stderr
    assert "cannot assume arn:aws:iam::" in started.stderr
    assert not root.file(f"{SECRETS}/edge-dns-credentials.json").exists()
    assert started.commands("docker")[-1][0] == "run"

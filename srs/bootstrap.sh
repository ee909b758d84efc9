#!/usr/bin/env bash
# The SRS origin host (Amazon Linux 2023).
#
#   bootstrap.sh            first boot (cloud-init, once): wait for egress (the Elastic IP is
#                           associated after the instance starts), install Docker and Tailscale,
#                           read the hook secret (the instance role may read only that parameter) into
#                           a root-only file for the hook relay, start the relay and SRS units, and
#                           enable the mesh-join unit
#   bootstrap.sh run-srs    the SRS unit's process: the pinned SRS container, its console log
#                           through the scrubber (no stream key, ticket or credential) to CloudWatch
#   bootstrap.sh join-mesh  one attempt to join the mesh as tag:origin with a single-use key the
#                           coordinator mints; the unit repeats it every 30 s until it succeeds
#                           (a first deploy's coordinator is often not up yet) and again at each
#                           boot, where it finds the host already joined
# Parameters come from /etc/streamr/srs.env (names, URLs: nothing secret). SRS logs every
# hook URL and client param, so the secret never reaches SRS: its hooks go to the relay on
# loopback, which adds the secret as a header (srs/hook_relay.py).
set -euo pipefail

ENV_FILE=${ENV_FILE:-/etc/streamr/srs.env}
CONFIG=${CONFIG:-/etc/streamr/srs.conf}
CREDENTIAL=${CREDENTIAL:-/etc/streamr/hook-credential}

UNIT_DIR=/etc/systemd/system
SCRIPT_PATH=/usr/local/sbin/streamr-srs-bootstrap
RELAY_PATH=/usr/local/sbin/streamr-hook-relay
SCRUB_PATH=/usr/local/sbin/streamr-log-scrub
# 60 x 5 s: the Elastic IP association follows the instance's start within seconds.
EGRESS_ATTEMPTS=60

log() { echo "streamr-srs-bootstrap: $*" >&2; }

wait_for_egress() {
  local attempt
  for attempt in $(seq 1 "$EGRESS_ATTEMPTS"); do
    # Any HTTP answer from the regional endpoint means the host can reach the internet.
    if curl -sS --max-time 5 -o /dev/null "https://ssm.$AWS_REGION.amazonaws.com/"; then
      return
    fi
    log "no route to the internet yet (attempt $attempt/$EGRESS_ATTEMPTS); retrying in 5 s"
    sleep 5
  done
  log "no internet access after $((EGRESS_ATTEMPTS * 5)) s: is the Elastic IP associated?"
  exit 1
}

install_packages() {
  dnf install -y docker jq python3
  if ! command -v tailscale >/dev/null; then
    dnf config-manager --add-repo \
      https://pkgs.tailscale.com/stable/amazon-linux/2023/tailscale.repo
    dnf install -y tailscale
  fi
  systemctl enable --now docker tailscaled
}

hook_secret() {
  aws ssm get-parameter --region "$AWS_REGION" --name "$HOOK_SECRET_PARAMETER" \
    --with-decryption --query Parameter.Value --output text
}

join_mesh() {
  local secret headers answer key_file
  if tailscale status >/dev/null 2>&1; then
    log "already on the mesh"
    return
  fi
  secret=$(hook_secret)
  umask 077
  headers=$(mktemp)
  # Secrets go through files, never command lines (which any local user can read).
  printf 'X-Hook-Secret: %s\n' "$secret" >"$headers"
  if ! answer=$(curl -fsS -X POST -H "@$headers" "$COORDINATOR_URL/api/v1/mesh/origin-key"); then
    rm -f "$headers"
    log "no mesh key from $COORDINATOR_URL yet (is the coordinator up?); systemd retries in 30 s"
    return 1
  fi
  rm -f "$headers"
  key_file=$(mktemp)
  jq -r .preauth_key <<<"$answer" >"$key_file"
  # The tag comes with the key: Headscale refuses --advertise-tags with a tagged key.
  if ! tailscale up --login-server "$(jq -r .login_server <<<"$answer")" \
    --auth-key "file:$key_file" --hostname streamr-origin; then
    rm -f "$key_file"
    log "tailscale up failed; systemd retries in 30 s"
    return 1
  fi
  rm -f "$key_file"
  log "joined the mesh"
}

install_units() {
  cat >"$UNIT_DIR/streamr-hook-relay.service" <<UNIT
[Unit]
Description=StreamrP2P hook relay (SRS hooks on loopback -> the coordinator, secret in a header)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/python3 $RELAY_PATH --listen 127.0.0.1:$HOOK_RELAY_PORT --coordinator $COORDINATOR_URL --credential-file $CREDENTIAL
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
  cat >"$UNIT_DIR/streamr-srs.service" <<UNIT
[Unit]
Description=StreamrP2P SRS origin (console log scrubbed, then shipped to CloudWatch)
After=docker.service streamr-hook-relay.service
Requires=docker.service
Wants=streamr-hook-relay.service

[Service]
ExecStart=$SCRIPT_PATH run-srs
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
  cat >"$UNIT_DIR/streamr-srs-mesh-join.service" <<UNIT
[Unit]
Description=Join the StreamrP2P mesh (retried until the coordinator hands out a key)
After=network-online.target tailscaled.service
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=$SCRIPT_PATH join-mesh
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now streamr-hook-relay.service streamr-srs.service
  # --no-block: the first join may take as long as the coordinator's first deploy.
  systemctl enable --now --no-block streamr-srs-mesh-join.service
}

write_credential() {
  umask 077
  printf '%s\n' "$1" >"$CREDENTIAL.new"
  mv "$CREDENTIAL.new" "$CREDENTIAL"
}

# SRS's raw console output exists only in this pipe: the container keeps no log (--log-driver
# none), the scrubber blanks every query value and credential, and a second container of the same
# image (`cat`) hands the scrubbed lines to Docker's awslogs driver.
run_srs() {
  docker rm -f srs srs-log >/dev/null 2>&1 || true
  docker run --rm --name srs --network host --log-driver none -a stdout -a stderr \
    -v "$CONFIG:/usr/local/srs/conf/streamr.conf:ro" \
    "$SRS_IMAGE" ./objs/srs -c conf/streamr.conf 2>&1 |
    python3 "$SCRUB_PATH" |
    docker run --rm -i -a stdin --name srs-log \
      --log-driver awslogs --log-opt "awslogs-region=$AWS_REGION" \
      --log-opt "awslogs-group=$LOG_GROUP" --log-opt awslogs-stream=srs \
      "$SRS_IMAGE" cat
}

main() {
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  : "${AWS_REGION:?}" "${HOOK_SECRET_PARAMETER:?}" "${COORDINATOR_URL:?}" "${SRS_IMAGE:?}" "${LOG_GROUP:?}"
  : "${HOOK_RELAY_PORT:?}"
  case "${1:-first-boot}" in
    first-boot)
      wait_for_egress
      install_packages
      write_credential "$(hook_secret)"
      install_units
      log "hook relay and SRS origin started ($SRS_IMAGE)"
      ;;
    run-srs)
      run_srs
      ;;
    join-mesh)
      join_mesh
      ;;
    *)
      log "unknown command '$1' (allowed: first-boot, run-srs, join-mesh)"
      exit 2
      ;;
  esac
}

# Sourced by the tests to exercise single steps; run as a program on the host.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi

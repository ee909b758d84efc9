#!/usr/bin/env bash
# Headscale host bootstrap (Amazon Linux 2023, arm64), run by cloud-init on every boot.
#
#   bootstrap.sh install         install the pinned release, mount the data volume, start Headscale,
#                                issue the coordinator's first API key, install the rotation timer
#   bootstrap.sh rotate-api-key  issue a fresh API key and store it in its SSM parameter
#
# Parameters come from a non-secret env file written by user data (see ENV_FILE). Config and ACL
# policy are already in /etc/headscale (written by cloud-init). No secret ever passes through user
# data: the API key is created here and goes straight to a SecureString parameter.
set -euo pipefail

ENV_FILE=/etc/streamr/headscale.env
# shellcheck source=/dev/null
source "$ENV_FILE"
: "${HEADSCALE_VERSION:?missing in $ENV_FILE}"
: "${HEADSCALE_SHA256:?missing in $ENV_FILE}"
: "${DATA_VOLUME_ID:?missing in $ENV_FILE}"
: "${DATA_DIR:?missing in $ENV_FILE}"
: "${API_KEY_PARAMETER:?missing in $ENV_FILE}"
: "${AWS_REGION:?missing in $ENV_FILE}"
export AWS_REGION

# Keys live 90 days and are replaced monthly: the coordinator has two months to pick up a new key
# before the one it holds expires, and at most three keys are valid at once. A calendar timer with
# Persistent=true, because the nightly pause stops the instance and monotonic timers restart at boot.
API_KEY_LIFETIME=90d
API_KEY_ROTATION_CALENDAR=monthly
ISSUED_MARKER="$DATA_DIR/.coordinator-api-key-issued"
# Where user data installs this script; the rotation service calls it from there.
SCRIPT_PATH=/usr/local/sbin/streamr-headscale-bootstrap

log() { printf 'streamr-headscale: %s\n' "$*" >&2; }

# The Elastic IP is associated after the instance starts: until then there is no way out.
EGRESS_ATTEMPTS=60
wait_for_egress() {
  local attempt
  for attempt in $(seq 1 "$EGRESS_ATTEMPTS"); do
    # Any HTTP answer from the regional endpoint means the host can reach the internet.
    if curl --silent --show-error --max-time 5 --output /dev/null \
      "https://ssm.$AWS_REGION.amazonaws.com/"; then
      return
    fi
    log "no route to the internet yet (attempt $attempt/$EGRESS_ATTEMPTS); retrying in 5 s"
    sleep 5
  done
  log "no internet access after $((EGRESS_ATTEMPTS * 5)) s: is the Elastic IP associated?"
  exit 1
}

install_headscale() {
  if [ -x /usr/bin/headscale ] && /usr/bin/headscale version 2>/dev/null | grep -q "$HEADSCALE_VERSION"; then
    return
  fi
  local url="https://github.com/juanfont/headscale/releases/download/v${HEADSCALE_VERSION}/headscale_${HEADSCALE_VERSION}_linux_arm64"
  local download
  download="$(mktemp)"
  curl --fail --silent --show-error --location --retry 5 --output "$download" "$url"
  if ! echo "${HEADSCALE_SHA256}  ${download}" | sha256sum --check --status; then
    rm -f "$download"
    log "checksum mismatch for $url (expected $HEADSCALE_SHA256); refusing to install"
    exit 1
  fi
  install -o root -g root -m 0755 "$download" /usr/bin/headscale
  rm -f "$download"
  log "installed headscale $HEADSCALE_VERSION"
}

ensure_user() {
  if ! id headscale >/dev/null 2>&1; then
    useradd --system --shell /usr/sbin/nologin --home-dir "$DATA_DIR" --no-create-home headscale
  fi
}

# Nitro instances expose EBS volumes as NVMe devices whose serial is the volume id without '-'.
data_device() {
  local link="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DATA_VOLUME_ID/-/}"
  local attempt
  for attempt in $(seq 1 60); do
    if [ -e "$link" ]; then
      readlink -f "$link"
      return
    fi
    log "waiting for data volume $DATA_VOLUME_ID ($attempt/60)"
    sleep 5
  done
  log "data volume $DATA_VOLUME_ID never appeared"
  exit 1
}

mount_data_volume() {
  if mountpoint --quiet "$DATA_DIR"; then
    return
  fi
  local device uuid
  device="$(data_device)"
  # Format only a blank volume: a volume with any filesystem holds the mesh state.
  if ! blkid "$device" >/dev/null 2>&1; then
    log "formatting blank data volume $device"
    mkfs.ext4 -q -L headscale-data "$device"
  fi
  uuid="$(blkid -s UUID -o value "$device")"
  mkdir -p "$DATA_DIR"
  if ! grep -q "UUID=$uuid" /etc/fstab; then
    echo "UUID=$uuid $DATA_DIR ext4 defaults,nofail,noatime 0 2" >>/etc/fstab
  fi
  mount "$DATA_DIR"
  chown headscale:headscale "$DATA_DIR"
  chmod 0750 "$DATA_DIR"
}

start_headscale() {
  chown -R root:headscale /etc/headscale
  chmod 0750 /etc/headscale
  chmod 0640 /etc/headscale/config.yaml /etc/headscale/acl.hujson
  # As the service user: anything configtest creates under $DATA_DIR must stay writable by it.
  runuser -u headscale -- /usr/bin/headscale configtest --config /etc/headscale/config.yaml
  # Never start on the root volume: an unmounted data volume would mean a fresh, empty mesh.
  mkdir -p /etc/systemd/system/headscale.service.d
  printf '[Unit]\nRequiresMountsFor=%s\n' "$DATA_DIR" \
    >/etc/systemd/system/headscale.service.d/data-volume.conf
  systemctl daemon-reload
  systemctl enable headscale.service
  systemctl restart headscale.service
  local attempt
  for attempt in $(seq 1 30); do
    if /usr/bin/headscale users list >/dev/null 2>&1; then
      return
    fi
    log "waiting for headscale to answer on its socket ($attempt/30)"
    sleep 2
  done
  log "headscale did not come up; see journalctl -u headscale"
  exit 1
}

KEY_WORKDIR=""
trap 'rm -rf "${KEY_WORKDIR:-}"' EXIT

rotate_api_key() {
  local key
  KEY_WORKDIR="$(mktemp -d)"
  chmod 0700 "$KEY_WORKDIR"
  key="$(/usr/bin/headscale apikeys create --expiration "$API_KEY_LIFETIME")"
  key="${key//[[:space:]]/}"
  if [ -z "$key" ]; then
    log "headscale printed no API key"
    exit 1
  fi
  # Through a private file, not argv: other processes can read command lines.
  (umask 077 && printf '%s' "$key" >"$KEY_WORKDIR/key")
  aws ssm put-parameter --name "$API_KEY_PARAMETER" --type SecureString --overwrite \
    --value "file://$KEY_WORKDIR/key" --output text --query Version >/dev/null
  # Which parameter holds it: a volume whose key went elsewhere (an older stack kept it in
  # Secrets Manager) gets a new one into this parameter at the next boot.
  printf '%s\n' "$API_KEY_PARAMETER" >"$ISSUED_MARKER"
  log "stored a new coordinator API key (valid $API_KEY_LIFETIME) in $API_KEY_PARAMETER"
}

install_rotation_timer() {
  cat >/etc/systemd/system/streamr-headscale-api-key.service <<UNIT
[Unit]
Description=Rotate the coordinator's Headscale API key
After=headscale.service
Requires=headscale.service

[Service]
Type=oneshot
ExecStart=$SCRIPT_PATH rotate-api-key
UNIT
  cat >/etc/systemd/system/streamr-headscale-api-key.timer <<UNIT
[Unit]
Description=Rotate the coordinator's Headscale API key ($API_KEY_ROTATION_CALENDAR)

[Timer]
OnCalendar=$API_KEY_ROTATION_CALENDAR
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
UNIT
  systemctl daemon-reload
  systemctl enable --now streamr-headscale-api-key.timer
}

main() {
  case "${1:-install}" in
    install)
      wait_for_egress
      install_headscale
      ensure_user
      mount_data_volume
      start_headscale
      # The data volume outlives instances (and deep pauses): issue the first key into this
      # parameter once, then the timer takes over.
      if [ "$(cat "$ISSUED_MARKER" 2>/dev/null)" != "$API_KEY_PARAMETER" ]; then
        rotate_api_key
      fi
      install_rotation_timer
      ;;
    rotate-api-key)
      rotate_api_key
      ;;
    *)
      log "unknown command '$1' (allowed: install, rotate-api-key)"
      exit 2
      ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# The SRS origin host's first boot (Amazon Linux 2023, run once by cloud-init):
#   1. install Docker and Tailscale;
#   2. read the hook secret from Secrets Manager (the instance role may read only that secret);
#   3. join the mesh as tag:origin with a single-use key the coordinator mints for this host;
#   4. fill the secret into the rendered config and run the pinned SRS container, logging to
#      CloudWatch.
# Parameters come from /etc/streamr/srs.env (names, ARNs, URLs: nothing secret).
set -euo pipefail

ENV_FILE=${ENV_FILE:-/etc/streamr/srs.env}
TEMPLATE=${TEMPLATE:-/etc/streamr/srs.conf.template}
CONFIG=${CONFIG:-/etc/streamr/srs.conf}

log() { echo "streamr-srs-bootstrap: $*" >&2; }

install_packages() {
  dnf install -y docker jq
  if ! command -v tailscale >/dev/null; then
    dnf config-manager --add-repo \
      https://pkgs.tailscale.com/stable/amazon-linux/2023/tailscale.repo
    dnf install -y tailscale
  fi
  systemctl enable --now docker tailscaled
}

hook_secret() {
  aws secretsmanager get-secret-value --region "$AWS_REGION" --secret-id "$HOOK_SECRET_ARN" \
    --query SecretString --output text
}

join_mesh() {
  local secret=$1 headers answer key_file
  if tailscale status >/dev/null 2>&1; then
    log "already on the mesh"
    return
  fi
  umask 077
  headers=$(mktemp)
  key_file=$(mktemp)
  # Secrets go through files, never command lines (which any local user can read).
  printf 'X-Hook-Secret: %s\n' "$secret" >"$headers"
  for attempt in $(seq 1 60); do
    if answer=$(curl -fsS -X POST -H "@$headers" "$COORDINATOR_URL/api/v1/mesh/origin-key"); then
      break
    fi
    log "coordinator not ready for a mesh key (attempt $attempt); retrying in 10 s"
    answer=""
    sleep 10
  done
  rm -f "$headers"
  if [ -z "$answer" ]; then
    log "no mesh key from $COORDINATOR_URL after 10 minutes"
    rm -f "$key_file"
    return 1
  fi
  jq -r .preauth_key <<<"$answer" >"$key_file"
  # The tag comes with the key: Headscale refuses --advertise-tags with a tagged key.
  tailscale up --login-server "$(jq -r .login_server <<<"$answer")" \
    --auth-key "file:$key_file" --hostname streamr-origin
  rm -f "$key_file"
}

write_config() {
  local secret=$1 template
  template=$(<"$TEMPLATE")
  umask 077
  printf '%s\n' "${template//@STREAMR_HOOK_SECRET@/"$secret"}" >"$CONFIG.new"
  mv "$CONFIG.new" "$CONFIG"
}

run_srs() {
  docker rm -f srs >/dev/null 2>&1 || true
  docker run -d --name srs --restart unless-stopped \
    -p 1935:1935 -p 8080:8080 -p 1985:1985 \
    -v "$CONFIG:/usr/local/srs/conf/streamr.conf:ro" \
    --log-driver awslogs --log-opt "awslogs-region=$AWS_REGION" \
    --log-opt "awslogs-group=$LOG_GROUP" --log-opt awslogs-stream=srs \
    "$SRS_IMAGE" ./objs/srs -c conf/streamr.conf
}

main() {
  local secret
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  : "${AWS_REGION:?}" "${HOOK_SECRET_ARN:?}" "${COORDINATOR_URL:?}" "${SRS_IMAGE:?}" "${LOG_GROUP:?}"
  install_packages
  secret=$(hook_secret)
  write_config "$secret"
  join_mesh "$secret" || log "continuing without the mesh: friends cannot relay until it joins"
  run_srs
  log "SRS origin running ($SRS_IMAGE)"
}

# Sourced by the tests to exercise single steps; run as a program on the host.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi

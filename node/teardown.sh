#!/usr/bin/env bash
# StreamrP2P friend node: stop relaying, in one command (as root). Undoes node/setup.sh:
# stops and removes the reporter and hook relay services, the certificate renewal timer and the
# SRS edge, removes the node from the coordinator (which also removes its mesh machine), leaves
# the mesh, and deletes the node's state (the edge's certificate and key with it).
# Running it again (or after a half-finished setup) is safe: what is already gone is skipped.
# If the coordinator cannot be reached the state is kept, so running it again retries.
set -euo pipefail

STATE_DIR="/var/lib/streamr-node"
INSTALL_DIR="/opt/streamr-node"
UNIT_DIR="/etc/systemd/system"
COORDINATOR=""
UNIT="streamr-reporter.service"
RELAY_UNIT="streamr-hook-relay.service"
CERT_TIMER="streamr-edge-cert.timer"
CERT_UNIT="streamr-edge-cert.service"
EDGE_CONTAINER="streamr-edge"

usage() {
  cat <<EOF
usage: $0 [options]
  --state-dir DIR     the node's state, as given to setup.sh (default $STATE_DIR)
  --install-dir DIR   where the reporter was installed (default $INSTALL_DIR)
  --unit-dir DIR      systemd unit directory (default $UNIT_DIR)
  --coordinator URL   only if the state does not say (it does after setup.sh)
EOF
}

log() { printf 'teardown: %s\n' "$*" >&2; }
die() {
  printf 'teardown: error: %s\n' "$*" >&2
  exit 1
}

parse_args() {
  while (($#)); do
    case $1 in
      --state-dir) STATE_DIR=${2:?--state-dir needs a value} ;;
      --install-dir) INSTALL_DIR=${2:?--install-dir needs a value} ;;
      --unit-dir) UNIT_DIR=${2:?--unit-dir needs a value} ;;
      --coordinator) COORDINATOR=${2:?--coordinator needs a value} ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage >&2
        die "unknown option: $1"
        ;;
    esac
    shift 2
  done
}

stop_services() {
  local unit
  for unit in "$UNIT" "$RELAY_UNIT" "$CERT_TIMER"; do
    if command -v systemctl >/dev/null && [[ -f $UNIT_DIR/$unit ]]; then
      systemctl disable --now "$unit" || log "could not stop $unit (continuing)"
      rm -f "$UNIT_DIR/$unit"
      systemctl daemon-reload
      log "$unit removed"
    fi
  done
  rm -f "$UNIT_DIR/$CERT_UNIT" # the timer's oneshot: nothing to stop once the timer is gone
  rm -rf "$INSTALL_DIR"
}

stop_edge() {
  if command -v docker >/dev/null && docker inspect "$EDGE_CONTAINER" >/dev/null 2>&1; then
    docker rm -f "$EDGE_CONTAINER" >/dev/null
    log "SRS edge removed"
  fi
}

node_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
    "$STATE_DIR/node.json" "$1"
}

leave_coordinator() {
  [[ -f $STATE_DIR/node.json ]] || return 0
  local coordinator header status
  coordinator=${COORDINATOR:-$(node_field coordinator)}
  [[ -n $coordinator ]] || die "$STATE_DIR/node.json does not name the coordinator: pass --coordinator URL"
  header=$(mktemp "$STATE_DIR/.auth.XXXXXX")
  printf 'Authorization: Bearer %s\n' "$(node_field node_token)" >"$header"
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE -H "@$header" --max-time 30 \
    "${coordinator%/}/api/v1/node") || status=000
  rm -f "$header"
  case $status in
    204) log "node $(node_field id) removed from the coordinator" ;;
    401) log "the coordinator no longer knows this node's token (already removed)" ;;
    *) die "removing the node at $coordinator failed with HTTP $status; state kept in $STATE_DIR, run this again" ;;
  esac
}

leave_mesh() {
  if command -v tailscale >/dev/null; then
    tailscale logout 2>/dev/null || true
    log "left the mesh"
  fi
}

main() {
  parse_args "$@"
  umask 077
  stop_services
  stop_edge
  leave_coordinator
  leave_mesh
  rm -rf "$STATE_DIR"
  log "done: nothing of the node is left running"
}

main "$@"

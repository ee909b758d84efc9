#!/usr/bin/env bash
# StreamrP2P friend node: from nothing to relaying and earning, in one command (Linux, as root).
#
#   STREAMR_FRIEND_TOKEN=... sudo -E node/setup.sh --coordinator https://api.example.com --name my-pi
#   (or --friend-token-file FILE; the token is never put on a command line)
#
# Registers the node with the coordinator (once: the answer is kept in the state directory),
# joins the mesh with the one-time key it is given, tells the coordinator where viewers can play
# from this edge, starts the SRS edge (pulling from the origin over the mesh; its hooks reach the
# coordinator through the hook relay, which holds the node token) and installs the relay and the
# reporter as systemd services. When the coordinator names the node's edge (n<id>.edge.<domain>)
# and --acme-email is given, it also gets a certificate for that name (node/edge_cert.sh: ACME
# DNS-01, the coordinator writes the TXT record) so the edge serves HTTPS, which https watch pages
# need, and installs a daily renewal timer. Running it again repairs whatever is missing and
# changes nothing else. node/teardown.sh undoes all of it.
set -euo pipefail

KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$KIT_DIR")
COORDINATOR=""
NAME=""
CAPACITY=50
# The coordinator's own limits (schemas.py: NAME_PATTERN, NodeIn.capacity_viewers); a test keeps
# them equal, so a bad value stops here, before the node joins the mesh.
NAME_PATTERN='^[a-z0-9][a-z0-9_-]{1,62}$'
MAX_CAPACITY=10000
FRIEND_TOKEN_FILE=""
ORIGIN_HOST="streamr-origin"
STATE_DIR="/var/lib/streamr-node"
INSTALL_DIR="/opt/streamr-node"
UNIT_DIR="/etc/systemd/system"
UNIT="streamr-reporter.service"
RELAY_UNIT="streamr-hook-relay.service"
EDGE_CONTAINER="streamr-edge"
EDGE_HTTP_PORT=8080
# srs/render.py's HTTP_PORT and HTTPS_PORT (a test keeps them equal).
EDGE_HTTPS_PORT=8443
CERT_UNIT="streamr-edge-cert.service"
CERT_TIMER="streamr-edge-cert.timer"
ACME_EMAIL=""
ACME_DIRECTORY="production"
ACME_DNS_SERVER=""
# Both the option's check and what edge_cert.sh accepts; safe inside the units' sed.
EMAIL_PATTERN='^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$'
# The edge name the certificate is for, once there is one: the edge then serves HTTPS.
TLS_NAME=""

usage() {
  cat <<EOF
usage: $0 --coordinator URL --name NAME [options]
  --coordinator URL         the coordinator's base URL, e.g. https://api.example.com
  --name NAME               this node's name: 2-63 of a-z, 0-9, '-' and '_' (not first)
  --capacity N              viewers this box can serve (1-$MAX_CAPACITY, default $CAPACITY)
  --friend-token-file FILE  file holding your friend session token (or set STREAMR_FRIEND_TOKEN)
  --origin-host HOST        the SRS origin's mesh host name (default $ORIGIN_HOST)
  --state-dir DIR           where the node keeps its token and queue (default $STATE_DIR)
  --install-dir DIR         where the reporter is installed (default $INSTALL_DIR)
  --unit-dir DIR            systemd unit directory (default $UNIT_DIR)
  --acme-email EMAIL        the ACME account's email for the edge's certificate (default
                            hostmaster@ the streamer's domain)
  --acme-directory WHERE    production (Let's Encrypt, default), staging (Let's Encrypt's
                            staging CA, untrusted certificates: for trying) or an https URL
  --acme-dns-server H:P     ask only this DNS server whether the TXT record is visible (a test CA's)
EOF
}

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

parse_args() {
  while (($#)); do
    case $1 in
      --coordinator) COORDINATOR=${2:?--coordinator needs a value} ;;
      --name) NAME=${2:?--name needs a value} ;;
      --capacity) CAPACITY=${2:?--capacity needs a value} ;;
      --friend-token-file) FRIEND_TOKEN_FILE=${2:?--friend-token-file needs a value} ;;
      --origin-host) ORIGIN_HOST=${2:?--origin-host needs a value} ;;
      --state-dir) STATE_DIR=${2:?--state-dir needs a value} ;;
      --install-dir) INSTALL_DIR=${2:?--install-dir needs a value} ;;
      --unit-dir) UNIT_DIR=${2:?--unit-dir needs a value} ;;
      --acme-email) ACME_EMAIL=${2:?--acme-email needs a value} ;;
      --acme-directory) ACME_DIRECTORY=${2:?--acme-directory needs a value} ;;
      --acme-dns-server) ACME_DNS_SERVER=${2:?--acme-dns-server needs a value} ;;
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
  [[ $COORDINATOR =~ ^https?://[^[:space:]/?#]+/?$ ]] ||
    die "--coordinator must be an http(s) base URL such as https://api.example.com, got '$COORDINATOR'"
  COORDINATOR=${COORDINATOR%/}
  [[ $NAME =~ $NAME_PATTERN ]] ||
    die "--name must be 2-63 of a-z, 0-9, '-' and '_', not starting with '-' or '_', got '$NAME'"
  if ! [[ $CAPACITY =~ ^[0-9]{1,6}$ ]] || ((10#$CAPACITY < 1 || 10#$CAPACITY > MAX_CAPACITY)); then
    die "--capacity must be a whole number 1-$MAX_CAPACITY, got '$CAPACITY'"
  fi
  [[ -z $ACME_EMAIL || $ACME_EMAIL =~ $EMAIL_PATTERN ]] ||
    die "--acme-email must be an email address such as you@example.com, got '$ACME_EMAIL'"
  case $ACME_DIRECTORY in
    production) ACME_DIRECTORY="https://acme-v02.api.letsencrypt.org/directory" ;;
    staging) ACME_DIRECTORY="https://acme-staging-v02.api.letsencrypt.org/directory" ;;
  esac
  [[ $ACME_DIRECTORY =~ ^https://[A-Za-z0-9./:_~%-]+$ ]] ||
    die "--acme-directory must be production, staging or an ACME directory's https URL, got '$ACME_DIRECTORY'"
  [[ -z $ACME_DNS_SERVER || $ACME_DNS_SERVER =~ ^[A-Za-z0-9.:-]+:[0-9]{1,5}$ ]] ||
    die "--acme-dns-server must be HOST:PORT, got '$ACME_DNS_SERVER'"
}

check_prerequisites() {
  local missing=() tool
  for tool in curl python3 docker systemctl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (install them, then run this again)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 is $(python3 -V 2>&1); the reporter needs 3.11 or newer"
  [[ -f $REPO_DIR/srs/render.py ]] || die "run this from a StreamrP2P checkout (no srs/render.py)"
  if ! command -v tailscale >/dev/null; then
    log "installing Tailscale (the mesh client) with its official installer"
    curl -fsSL https://tailscale.com/install.sh | sh
  fi
}

# A curl header file, so no token ever appears on a command line (ps shows those).
auth_header() {
  local token=$1 file
  file=$(mktemp "$STATE_DIR/.auth.XXXXXX")
  printf 'Authorization: Bearer %s\n' "$token" >"$file"
  printf '%s' "$file"
}

# api METHOD PATH TOKEN [BODY] -> prints the HTTP status; the answer is in $STATE_DIR/.answer
api() {
  local method=$1 path=$2 token=$3 body=${4:-} header status
  header=$(auth_header "$token")
  status=$(curl -sS -o "$STATE_DIR/.answer" -w '%{http_code}' -X "$method" \
    -H "@$header" -H 'Content-Type: application/json' ${body:+--data "$body"} \
    --max-time 30 "$COORDINATOR$path") || status=000
  rm -f "$header"
  printf '%s' "$status"
}

# A field of node.json; empty when it is missing or null (edge_name without an edge domain).
node_field() {
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' \
    "$STATE_DIR/node.json" "$1"
}

friend_token() {
  if [[ -n $FRIEND_TOKEN_FILE ]]; then
    [[ -r $FRIEND_TOKEN_FILE ]] || die "--friend-token-file $FRIEND_TOKEN_FILE is not readable"
    tr -d '[:space:]' <"$FRIEND_TOKEN_FILE"
  elif [[ -n ${STREAMR_FRIEND_TOKEN:-} ]]; then
    printf '%s' "$STREAMR_FRIEND_TOKEN"
  else
    die "no friend token: pass --friend-token-file FILE or set STREAMR_FRIEND_TOKEN (log in at the coordinator to get one)"
  fi
}

register() {
  if [[ -f $STATE_DIR/node.json ]]; then
    log "already registered as node $(node_field id) ($(node_field name)); not registering again"
    return
  fi
  local token status
  token=$(friend_token)
  status=$(api POST /api/v1/nodes "$token" \
    "{\"name\": \"$NAME\", \"capacity_viewers\": $CAPACITY}")
  case $status in
    201) ;;
    409) die "the coordinator already has a node named '$NAME' but $STATE_DIR holds no state for it: delete that node from your account, or pick another --name" ;;
    401) die "the coordinator refused the friend token (expired? log in again)" ;;
    *) die "registering at $COORDINATOR failed with HTTP $status: $(head -c 500 "$STATE_DIR/.answer")" ;;
  esac
  # node.json is what the reporter reads; mesh.json holds the one-time key until the node joins.
  python3 - "$STATE_DIR" "$COORDINATOR" <<'EOF'
import json, os, sys
state, coordinator = sys.argv[1], sys.argv[2]
answer = json.load(open(os.path.join(state, ".answer")))
node = {key: answer[key] for key in ("id", "name", "node_token", "token_expires_at")}
node["coordinator"] = coordinator
node["edge_name"] = answer.get("edge_name")  # null: the coordinator has no edge domain
for name, content in (("mesh.json", answer.get("mesh")), ("node.json", node)):
    if content is None:
        continue
    path = os.path.join(state, name)
    with open(path + ".tmp", "w") as file:
        json.dump(content, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
    os.replace(path + ".tmp", path)
EOF
  rm -f "$STATE_DIR/.answer"
  log "registered node $(node_field id) as $NAME"
}

mesh_running() {
  tailscale status --json 2>/dev/null |
    python3 -c 'import json, sys; sys.exit(json.load(sys.stdin).get("BackendState") != "Running")'
}

join_mesh() {
  if mesh_running; then
    log "already on the mesh"
    return
  fi
  [[ -f $STATE_DIR/mesh.json ]] ||
    die "not on the mesh and no unused mesh key in $STATE_DIR (the coordinator has no mesh, or the key was used): run node/teardown.sh, then this again"
  local key_file login_server
  key_file="$STATE_DIR/.preauth-key"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); open(sys.argv[2], "w").write(d["preauth_key"])' \
    "$STATE_DIR/mesh.json" "$key_file"
  login_server=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["login_server"])' \
    "$STATE_DIR/mesh.json")
  log "joining the mesh at $login_server"
  if ! tailscale up --login-server "$login_server" --auth-key "file:$key_file" \
    --hostname "${NAME//_/-}" --accept-dns=true; then
    rm -f "$key_file"
    die "tailscale up failed; if the one-time key expired, run node/teardown.sh, then this again"
  fi
  rm -f "$key_file" "$STATE_DIR/mesh.json"
}

# The edge's certificate for its name, unless the coordinator has no edge domain (then HTTP only,
# said loudly). lego cannot open an ACME account without an email; without --acme-email the
# account is the streamer domain's hostmaster (RFC 2142), so the command the friend page shows
# works as it is (Let's Encrypt has sent no expiry mail since June 2025).
obtain_certificate() {
  local edge_name domain
  edge_name=$(node_field edge_name)
  if [[ -z $edge_name ]]; then
    log "the coordinator gives this node no edge name (no edge domain): the edge serves HTTP only"
    return
  fi
  if [[ -z $ACME_EMAIL ]]; then
    domain=${edge_name#*.} # the edge domain, edge.<the streamer's domain>
    [[ ${domain#*.} == *.* ]] && domain=${domain#*.}
    ACME_EMAIL="hostmaster@$domain"
    log "no --acme-email: the certificate's ACME account is $ACME_EMAIL"
  fi
  if ! command -v lego >/dev/null; then
    command -v apt-get >/dev/null ||
      die "lego (the ACME client) is missing: install it (https://go-acme.github.io/lego/installation/), then run this again"
    log "installing lego (the ACME client) from the distribution"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lego
  fi
  install -d -m 0755 "$INSTALL_DIR"
  install -m 0755 "$KIT_DIR/acme_hook.py" "$INSTALL_DIR/acme_hook.py"
  install -m 0755 "$KIT_DIR/edge_cert.sh" "$INSTALL_DIR/edge_cert.sh"
  log "getting a certificate for $edge_name from $ACME_DIRECTORY (DNS-01 through the coordinator)"
  "$INSTALL_DIR/edge_cert.sh" obtain --state-dir "$STATE_DIR" --hook "$INSTALL_DIR/acme_hook.py" \
    --domain "$edge_name" --email "$ACME_EMAIL" --directory "$ACME_DIRECTORY" \
    ${ACME_DNS_SERVER:+--dns-server "$ACME_DNS_SERVER"} ||
    die "no certificate for $edge_name (lego's messages above); run this again to retry"
  TLS_NAME=$edge_name
}

announce_edge() {
  local address status tls=""
  address=$(tailscale ip -4 | head -n 1)
  [[ -n $address ]] || die "tailscale has no IPv4 address on the mesh"
  [[ -z $TLS_NAME ]] || tls=", \"tls_port\": $EDGE_HTTPS_PORT"
  status=$(api PUT "/api/v1/nodes/$(node_field id)/edge" "$(node_field node_token)" \
    "{\"play_base_url\": \"http://$address:$EDGE_HTTP_PORT\"$tls}")
  case $status in
    204) ;;
    401) die "the coordinator no longer knows this node (removed?): run node/teardown.sh, then this again" ;;
    *) die "telling the coordinator this edge's address failed with HTTP $status: $(head -c 500 "$STATE_DIR/.answer")" ;;
  esac
  rm -f "$STATE_DIR/.answer"
  log "viewers can play from http://$address:$EDGE_HTTP_PORT${TLS_NAME:+ and https://$TLS_NAME:$EDGE_HTTPS_PORT}"
}

# The edge config from srs/render.py: no token in it (SRS logs hook URLs); its hooks go to the
# node's hook relay on loopback, which adds the token. Prints the image and the relay's port.
render_edge_config() {
  python3 - "$REPO_DIR" "$STATE_DIR" "$ORIGIN_HOST" "$TLS_NAME" <<'EOF'
import json, os, sys
repo, state, origin, tls_name = sys.argv[1:5]
sys.path.insert(0, repo)
from srs import render

node = json.load(open(os.path.join(state, "node.json")))
settings = render.EdgeSettings(origin, node["name"].replace("_", "-"), tls_name=tls_name or None)
config = render.render_edge(settings)
path = os.path.join(state, "srs-edge.conf")
with open(path + ".tmp", "w") as file:
    file.write(config)
os.replace(path + ".tmp", path)
print(render.SRS_IMAGE, render.HOOK_RELAY_PORT)
EOF
}

start_edge() {
  local image relay_port certificates=()
  read -r image relay_port < <(render_edge_config)
  install_service "$RELAY_UNIT" hook_relay.py "$REPO_DIR/srs/hook_relay.py" "$relay_port"
  # lego's folder as the config's ./conf/tls: SRS reads the files at each handshake, so a
  # renewed certificate is served without a restart.
  [[ -z $TLS_NAME ]] || certificates=(-v "$STATE_DIR/acme/certificates:/usr/local/srs/conf/tls:ro")
  docker rm -f "$EDGE_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --name "$EDGE_CONTAINER" --restart unless-stopped --network host \
    -v "$STATE_DIR/srs-edge.conf:/usr/local/srs/conf/streamr-edge.conf:ro" "${certificates[@]}" \
    "$image" ./objs/srs -c conf/streamr-edge.conf >/dev/null
  log "SRS edge running ($image), pulling from $ORIGIN_HOST over the mesh"
}

# Writes the kit's unit $1 into $UNIT_DIR with this node's values.
write_unit() {
  local unit=$1 relay_port=${2:-}
  install -d -m 0755 "$UNIT_DIR"
  sed -e "s|@INSTALL_DIR@|$INSTALL_DIR|g" -e "s|@STATE_DIR@|$STATE_DIR|g" \
    -e "s|@COORDINATOR@|$COORDINATOR|g" -e "s|@HOOK_RELAY_PORT@|$relay_port|g" \
    -e "s|@EDGE_NAME@|$TLS_NAME|g" -e "s|@ACME_EMAIL@|$ACME_EMAIL|g" \
    -e "s|@ACME_DIRECTORY@|$ACME_DIRECTORY|g" \
    -e "s|@ACME_DNS_OPTION@|${ACME_DNS_SERVER:+ --dns-server $ACME_DNS_SERVER}|g" \
    "$KIT_DIR/$unit" >"$UNIT_DIR/$unit.new"
  chmod 0644 "$UNIT_DIR/$unit.new"
  mv "$UNIT_DIR/$unit.new" "$UNIT_DIR/$unit"
}

# Installs $program as $INSTALL_DIR/$name and the kit's unit $unit with this node's values.
install_service() {
  local unit=$1 name=$2 program=$3 relay_port=${4:-}
  install -d -m 0755 "$INSTALL_DIR"
  install -m 0755 "$program" "$INSTALL_DIR/$name"
  write_unit "$unit" "$relay_port"
  systemctl daemon-reload
  systemctl enable "$unit"
  systemctl restart "$unit"
  log "$name running as $unit"
}

# The daily renewal (edge_cert.sh renew: lego renews with fewer than 30 days left), whenever the
# edge serves HTTPS.
install_cert_renewal() {
  [[ -n $TLS_NAME ]] || return 0
  write_unit "$CERT_UNIT"
  write_unit "$CERT_TIMER"
  systemctl daemon-reload
  systemctl enable --now "$CERT_TIMER"
  log "certificate renewal scheduled daily ($CERT_TIMER)"
}

# Whatever way this ends, no answer (it may hold the node token), header or key file stays behind.
cleanup() {
  [[ -d $STATE_DIR ]] && rm -f "$STATE_DIR/.answer" "$STATE_DIR"/.auth.* "$STATE_DIR/.preauth-key"
  return 0
}

main() {
  parse_args "$@"
  check_prerequisites
  umask 077
  mkdir -p "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
  trap cleanup EXIT
  register
  join_mesh
  obtain_certificate
  announce_edge
  start_edge
  install_service "$UNIT" reporter.py "$KIT_DIR/reporter.py"
  install_cert_renewal
  log "done: node $(node_field id) is relaying; node/teardown.sh stops it"
}

main "$@"

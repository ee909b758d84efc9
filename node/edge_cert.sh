#!/usr/bin/env bash
# StreamrP2P friend node: the edge's HTTPS certificate, obtained and renewed with lego by ACME
# DNS-01 (like `tailscale cert`). An https watch page cannot fetch http:// video (mixed content),
# so the edge serves HTTPS under the name the coordinator gave it (n<id>.edge.<domain>).
#
#   edge_cert.sh obtain|renew --state-dir DIR --hook FILE --domain NAME --email EMAIL \
#                --directory URL [--dns-server HOST:PORT] [--renew-days N]
#
# The certificate key is made here and never leaves the node. lego's `exec` DNS provider runs
# the hook (node/acme_hook.py), which asks the coordinator to write the TXT record with the
# node's token from the state directory: no token on a command line, in the environment or a log.
# `obtain` (node/setup.sh) gets a certificate unless one is there; `renew` (the daily
# streamr-edge-cert.timer) renews it when fewer than --renew-days (30) are left. The key is RSA:
# SRS 6 loads it with SSL_use_RSAPrivateKey_file and refuses every handshake with lego's default
# EC key. SRS reads the key and certificate at each handshake, so a renewed pair is served
# without restarting the edge (both seen on a real SRS 6: tests/fixtures/srs/edge-https).
set -euo pipefail

ACTION=""
STATE_DIR=""
HOOK=""
DOMAIN=""
EMAIL=""
DIRECTORY=""
DNS_SERVER=""
RENEW_DAYS=30

usage() {
  cat <<EOF
usage: $0 obtain|renew --state-dir DIR --hook FILE --domain NAME --email EMAIL --directory URL [options]
  --dns-server HOST:PORT  ask only this DNS server whether the TXT record is visible (a test CA's;
                          by default lego asks the zone's authoritative servers)
  --renew-days N          renew when fewer than N days are left (default $RENEW_DAYS)
EOF
}

die() {
  printf 'edge_cert: error: %s\n' "$*" >&2
  exit 1
}

parse_args() {
  ACTION=${1:-}
  [[ $ACTION == obtain || $ACTION == renew ]] || {
    usage >&2
    die "the first argument must be obtain or renew, got '$ACTION'"
  }
  shift
  while (($#)); do
    case $1 in
      --state-dir) STATE_DIR=${2:?--state-dir needs a value} ;;
      --hook) HOOK=${2:?--hook needs a value} ;;
      --domain) DOMAIN=${2:?--domain needs a value} ;;
      --email) EMAIL=${2:?--email needs a value} ;;
      --directory) DIRECTORY=${2:?--directory needs a value} ;;
      --dns-server) DNS_SERVER=${2:?--dns-server needs a value} ;;
      --renew-days) RENEW_DAYS=${2:?--renew-days needs a value} ;;
      *)
        usage >&2
        die "unknown option: $1"
        ;;
    esac
    shift 2
  done
  [[ -f $STATE_DIR/node.json ]] || die "--state-dir '$STATE_DIR' holds no node.json (run node/setup.sh)"
  [[ -x $HOOK ]] || die "--hook '$HOOK' is not an executable file"
  [[ $DOMAIN =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$ ]] ||
    die "--domain must be a DNS name such as n7.edge.example.com, got '$DOMAIN'"
  [[ $EMAIL =~ ^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$ ]] ||
    die "--email must be an email address, got '$EMAIL'"
  [[ $DIRECTORY =~ ^https://[^[:space:]]+$ ]] ||
    die "--directory must be an ACME directory's https URL, got '$DIRECTORY'"
  [[ -z $DNS_SERVER || $DNS_SERVER =~ ^[^[:space:]]+:[0-9]{1,5}$ ]] ||
    die "--dns-server must be HOST:PORT, got '$DNS_SERVER'"
  [[ $RENEW_DAYS =~ ^[0-9]{1,5}$ ]] || die "--renew-days must be a whole number of days, got '$RENEW_DAYS'"
  command -v lego >/dev/null ||
    die "lego is missing: apt-get install lego (Debian 12 or later), or put its release binary on PATH"
}

main() {
  parse_args "$@"
  umask 077
  local lego=(lego --accept-tos --path "$STATE_DIR/acme" --server "$DIRECTORY" --email "$EMAIL"
    --key-type rsa2048 --dns exec --domains "$DOMAIN")
  if [[ -n $DNS_SERVER ]]; then
    lego+=(--dns.resolvers "$DNS_SERVER" --dns.disable-cp)
  fi
  # The hook finds the node's state (and token) here; Route 53 takes up to a minute or two to
  # make a change visible on all its servers.
  export EXEC_PATH=$HOOK STREAMR_STATE_DIR=$STATE_DIR
  export EXEC_PROPAGATION_TIMEOUT=300 EXEC_POLLING_INTERVAL=5
  if [[ $ACTION == obtain ]]; then
    if [[ -f $STATE_DIR/acme/certificates/$DOMAIN.crt ]]; then
      printf 'edge_cert: %s already has a certificate (the timer renews it)\n' "$DOMAIN" >&2
      return
    fi
    "${lego[@]}" run
  else
    # The timer spreads renewals out itself (RandomizedDelaySec), so lego need not sleep.
    "${lego[@]}" renew --days "$RENEW_DAYS" --no-random-sleep
  fi
}

main "$@"

#!/usr/bin/env bash
# `pulumi up` for one stack from CI, with the deep-pause switch set first.
#
# Usage: .github/scripts/pulumi-up.sh STACK PAUSED
#   STACK   dev or prod (stacks/Pulumi.STACK.yaml)
#   PAUSED  true (deep pause), false (resume), or keep: whatever the last deployment used, so a
#           deploy from main never undoes a scheduled deep pause (the pause workflow resumes).
# Needs PULUMI_BACKEND_URL (the S3 state backend) and AWS credentials in the environment; the
# stack's secrets provider (awskms://...) is read from its stack file; `.venv` with the program's
# requirements (for `python -m ops resume`).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 STACK true|false|keep" >&2
  exit 2
fi
stack="$1"
paused="$2"
case "$stack" in
  dev | prod) ;;
  *)
    echo "unknown stack '$stack'; allowed values: dev, prod" >&2
    exit 2
    ;;
esac
case "$paused" in
  true | false | keep) ;;
  *)
    echo "unknown pause setting '$paused'; allowed values: true, false, keep" >&2
    exit 2
    ;;
esac
: "${PULUMI_BACKEND_URL:?PULUMI_BACKEND_URL is not set: the S3 state backend (README, Continuous delivery)}"

stack_file="stacks/Pulumi.$stack.yaml"

# The paused value of the last deployment: `config refresh` rewrites the stack file from it, so the
# file is restored afterwards. A stack never deployed has none: not paused.
deployed_paused() {
  local backup value=false
  backup="$(mktemp)"
  cp "$stack_file" "$backup"
  if pulumi config refresh --stack "$stack" --force >/dev/null 2>&1; then
    value="$(pulumi config get --stack "$stack" streamr:paused 2>/dev/null || echo false)"
  fi
  cp "$backup" "$stack_file"
  rm -f "$backup"
  echo "$value"
}

pulumi login "$PULUMI_BACKEND_URL"
if [ "$paused" = keep ]; then
  paused="$(deployed_paused)"
fi
# The nightly stop schedule may have stopped the database and hosts: a stopped RDS instance
# refuses every change, and a resumed platform needs them running. Start them first (ops exits 3
# when nothing is deployed yet: a first deploy). A deep pause leaves them as they are.
if [ "$paused" = false ]; then
  status=0
  .venv/bin/python -m ops resume --stack "$stack" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
    echo "could not start the stack's stopped resources (ops resume exit $status); a stopped" \
      "database refuses every change, so pulumi up is not run" >&2
    exit 1
  fi
fi
echo "pulumi up: stack $stack, streamr:paused=$paused"
pulumi config set --stack "$stack" streamr:paused "$paused"
pulumi up --stack "$stack" --yes --policy-pack policies --message "${PULUMI_UP_MESSAGE:-CI}"

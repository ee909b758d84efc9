#!/bin/sh
# Container entrypoint: upgrade the database, then serve (workers from STREAMR_WEB_CONCURRENCY).
# `migrate` takes a PostgreSQL advisory lock, so every instance of a rolling deploy may run it:
# the first upgrades, the others wait and find nothing to do. Arguments run a CLI command instead
# (e.g. `create-admin alice`).
set -eu
if [ "$#" -gt 0 ]; then
  exec streamr-coordinator "$@"
fi
streamr-coordinator migrate
exec streamr-coordinator serve

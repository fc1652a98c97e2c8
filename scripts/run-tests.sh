#!/usr/bin/env bash
# The whole suite: unit, integration (real Docker) and e2e (real server), with the store
# tests also run against a throwaway PostgreSQL that this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_DIR=${DOCKYARD_PG_DIR:-/tmp/dockyard-pg-$(echo "$PWD" | md5sum | cut -c1-8)}
if [ ! -x /usr/lib/postgresql/15/bin/pg_ctl ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "run-tests: installing PostgreSQL 15 ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq && timeout 900 apt-get install -y -qq postgresql-15 >/dev/null
fi
pg_started=0
if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
  if url=$(bash scripts/pg-test.sh start "$PG_DIR"); then
    export DOCKYARD_TEST_PG_URL=$url
    pg_started=1
  else
    echo "run-tests: PostgreSQL did not start; its store tests will be reported as failed" >&2
    export DOCKYARD_TEST_PG_URL=unavailable
  fi
fi
cleanup() { if [ "$pg_started" = 1 ]; then bash scripts/pg-test.sh stop "$PG_DIR" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

export DOCKYARD_REQUIRE_DOCKER=1
# The whole suite is measured (the real server's subprocesses too: see [tool.coverage.run])
# and must keep its coverage of src/dockyard; measured 92% on 2026-11-28. A run that names
# some tests (`run-tests.sh tests/unit/test_store.py`) is not held to the floor.
cov=(--cov=dockyard --cov-report=term --cov-fail-under=89)
for arg in "$@"; do
  if [ -e "${arg%%::*}" ]; then cov=(); fi
done
# The slowest tests are listed at the end, so that a CI log shows where its time goes.
.venv/bin/pytest --durations=25 "${cov[@]}" "$@"

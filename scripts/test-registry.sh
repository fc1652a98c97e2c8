#!/usr/bin/env bash
# A local registry with htpasswd auth for the push/pull tests (never the system service):
#   docker-registry (Debian's distribution/registry 2.x) on 127.0.0.1:5000, plain HTTP
#   (the engine treats 127.0.0.0/8 registries as insecure by default: `docker info`
#   lists them under "Insecure Registries"), user dockyard-test / dockyard-test-pass.
# Idempotent: a registry already answering is left alone; a stale pid file is noticed.
#   bash scripts/test-registry.sh          start (or check) it
#   bash scripts/test-registry.sh stop     stop the one this script started
# Folder: DOCKYARD_REGISTRY_DIR (default /tmp/dockyard-registry): config.yml, htpasswd,
# data/, registry.pid, registry.log.
set -euo pipefail

DIR=${DOCKYARD_REGISTRY_DIR:-/tmp/dockyard-registry}
ADDR=127.0.0.1:5000
USER_NAME=dockyard-test
USER_PASS=dockyard-test-pass
PID_FILE=$DIR/registry.pid

die() { echo "test-registry: ERROR: $*" >&2; exit 1; }
log() { echo "test-registry: $*" >&2; }

running_pid() {  # the pid in the pid file, if that process is our registry
  [ -f "$PID_FILE" ] || return 1
  local pid; pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -q "docker-registry" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

answers() {  # the registry's API root answers (401 without credentials)
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ADDR/v2/" || true)
  [ "$code" = 401 ] || [ "$code" = 200 ]
}

if [ "${1:-start}" = stop ]; then
  if pid=$(running_pid); then
    kill "$pid" && log "stopped ($pid)"
  fi
  rm -f "$PID_FILE"
  exit 0
fi

# One start at a time (parallel test runs).
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w 120 9 || die "could not get lock $DIR/.lock"

if running_pid >/dev/null && answers; then
  echo "registry on $ADDR: running"
  exit 0
fi
if [ -f "$PID_FILE" ] && ! running_pid >/dev/null; then
  log "stale pid file $PID_FILE (process gone); starting anew"
  rm -f "$PID_FILE"
fi
if answers; then
  echo "registry on $ADDR: answered by another process (left alone)"
  exit 0
fi

if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install docker-registry apache2-utils"
  log "installing docker-registry apache2-utils"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d (if present) keeps the package's own service from starting.
  if ! timeout 900 apt-get install -y -qq --no-install-recommends docker-registry apache2-utils \
      >"$DIR/apt.log" 2>&1; then
    timeout 600 apt-get update -qq >>"$DIR/apt.log" 2>&1 || { cat "$DIR/apt.log" >&2; die "apt-get update failed"; }
    timeout 900 apt-get install -y -qq --no-install-recommends docker-registry apache2-utils \
      >>"$DIR/apt.log" 2>&1 || { cat "$DIR/apt.log" >&2; die "apt-get install failed"; }
  fi
fi

mkdir -p "$DIR/data"
htpasswd -Bbc "$DIR/htpasswd" "$USER_NAME" "$USER_PASS" >/dev/null 2>&1
cat >"$DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: $ADDR
auth:
  htpasswd:
    realm: dockyard-test
    path: $DIR/htpasswd
EOF

# setsid: its own session, so that the caller's job control does not take it down.
setsid docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 </dev/null 9>&- &
echo $! >"$PID_FILE"
for _ in $(seq 1 100); do
  if answers; then
    echo "registry on $ADDR: started ($(cat "$PID_FILE"))"
    exit 0
  fi
  running_pid >/dev/null || { cat "$DIR/registry.log" >&2; die "docker-registry exited"; }
  sleep 0.1
done
cat "$DIR/registry.log" >&2
die "docker-registry did not answer on $ADDR within 10 s"

#!/usr/bin/env bash
# Make sure a Docker engine answers. Idempotent: does nothing when `docker info` works.
# On Debian/Ubuntu as root it installs docker.io, starts dockerd in the background
# (pid and log under $STATE_DIR) and waits for the socket; elsewhere it says what to do.
set -euo pipefail

STATE_DIR=${DOCKYARD_STATE_DIR:-/var/lib/dockyard-dev}
SOCK=/var/run/docker.sock
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}

engine_ok() { timeout 10 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_ok; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-docker: no Docker engine answers 'docker info'." >&2
  echo "  Install Docker (https://docs.docker.com/engine/install/) and start it, or set DOCKER_HOST." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io from the distribution ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 900 apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi

mkdir -p "$STATE_DIR"
PIDFILE=/var/run/docker.pid
# A dockerd ended with an earlier session may leave its pid file (and socket) behind.
for pf in "$PIDFILE" "$STATE_DIR/dockerd.pid"; do
  if [ -f "$pf" ]; then
    pid=$(cat "$pf" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "ensure-docker: removing stale pid file $pf" >&2
      rm -f "$pf"
    fi
  fi
done
if ! pgrep -x dockerd >/dev/null 2>&1; then
  rm -f "$SOCK"
  # containerd's own stale state
  rm -f /var/run/docker/containerd/containerd.pid 2>/dev/null || true
  echo "ensure-docker: starting dockerd (log: $STATE_DIR/dockerd.log)" >&2
  nohup dockerd --pidfile "$PIDFILE" >"$STATE_DIR/dockerd.log" 2>&1 &
  echo $! >"$STATE_DIR/dockerd.pid"
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
  if [ -S "$SOCK" ] && engine_ok; then
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
exit 1

#!/usr/bin/env bash
# Extra Docker engines on this machine, for the tests of several engines (issue 12).
#   bash scripts/extra-engines.sh N [--swarm K]   start (or check) engines 1..N; K a swarm
#   bash scripts/extra-engines.sh stop            stop the extras this script started
# Engine K listens on unix:///run/dockyard-eng-K.sock, with its own data root, exec root,
# pid file, cgroup parent, address pool (10.21K.0.0/16) and engine ID (its own key file),
# and runs in a network namespace of its own (dockyard-eng-K): a remote engine has its own
# links, bridge and rules. That is not only realism: a dockerd in the host's namespace
# deletes the host's docker0 (the main engine's default bridge) at start-up with
# `--bridge none`, and again on any restart with `--default-address-pool` (moby
# daemon_unix.go, removeDefaultBridgeInterface). Inside its namespace it may do so freely.
# `--bridge none --iptables=false` still: the extras need no default bridge nor NAT. The
# main engine (/var/run/docker.sock) is never touched.
# Idempotent: a running engine is left alone; a dead pid file is cleaned first. The test
# images are loaded into each engine that lacks them (from the main engine; no pull).
# Folder: DOCKYARD_ENGINES_DIR (default /var/lib/dockyard-engines): eng-K/{data,config.json,
# key.json,dockerd.log}. Needs root.
set -euo pipefail

DIR=${DOCKYARD_ENGINES_DIR:-/var/lib/dockyard-engines}
IMAGES=(dockyard-test/busybox:latest dockyard-test/python:latest)
MAX=9
START_DEADLINE=${DOCKYARD_ENGINES_DEADLINE:-60}

die() { echo "extra-engines: ERROR: $*" >&2; exit 1; }
log() { echo "extra-engines: $*" >&2; }

sock() { echo "/run/dockyard-eng-$1.sock"; }
pidfile() { echo "/run/dockyard-eng-$1.pid"; }
execroot() { echo "/run/dockyard-eng-$1"; }
dk() { local k=$1; shift; docker -H "unix://$(sock "$k")" "$@"; }

running_pid() {  # the pid in engine K's pid file, if that process is its dockerd
  local file pid
  file=$(pidfile "$1")
  [ -f "$file" ] || return 1
  pid=$(cat "$file" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -qa "dockyard-eng-$1.sock" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

netns() { echo "dockyard-eng-$1"; }

ensure_netns() {  # engine K's own network namespace, its loopback up (swarm advertises on it)
  local name; name=$(netns "$1")
  ip netns list | grep -qw "$name" || ip netns add "$name"
  nsenter --net="/run/netns/$name" ip link set lo up
}

answers() { timeout 5 docker -H "unix://$(sock "$1")" version >/dev/null 2>&1; }

stop_all() {
  local k pid
  for k in $(seq 1 $MAX); do
    if pid=$(running_pid "$k"); then
      kill "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      log "engine $k stopped ($pid)"
    fi
    rm -f "$(pidfile "$k")"
    if ip netns list | grep -qw "$(netns "$k")"; then ip netns del "$(netns "$k")"; fi
  done
}

start_one() {  # engine K: started, answering, with the test images
  local k=$1 home="$DIR/eng-$1" pid
  if running_pid "$k" >/dev/null && answers "$k"; then
    log "engine $k: running"
  else
    if [ -f "$(pidfile "$k")" ] && ! running_pid "$k" >/dev/null; then
      log "engine $k: stale pid file (process gone); starting anew"
      rm -f "$(pidfile "$k")"
      # After a SIGKILL its containerd lingers ~2 s; a dockerd started meanwhile adopts
      # the dying one ("containerd is still running") and times out. Wait it out (kill
      # it, ours, past the deadline) and drop its pid file, so a fresh one is started.
      local cpid_file cpid
      cpid_file="$(execroot "$k")/containerd/containerd.pid"
      cpid=$(cat "$cpid_file" 2>/dev/null || true)
      if [ -n "$cpid" ]; then
        for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$cpid" 2>/dev/null && kill -9 "$cpid" 2>/dev/null && sleep 0.5
      fi
      rm -f "$cpid_file"
    fi
    mkdir -p "$home/data" "$(execroot "$k")"
    ensure_netns "$k"
    # Its own key file: else every engine reports the same engine ID.
    cat >"$home/config.json" <<EOF
{"deprecated-key-path": "$home/key.json"}
EOF
    rm -f "$(sock "$k")"
    setsid nsenter --net="/run/netns/$(netns "$k")" dockerd \
      --host "unix://$(sock "$k")" \
      --data-root "$home/data" \
      --exec-root "$(execroot "$k")" \
      --pidfile "$(pidfile "$k")" \
      --config-file "$home/config.json" \
      --default-address-pool "base=10.21$k.0.0/16,size=24" \
      --bridge none --iptables=false --ip-masq=false \
      --cgroup-parent "dockyard-eng-$k" \
      --label "dockyard.test-engine=$k" \
      >"$home/dockerd.log" 2>&1 </dev/null 9>&- &
    pid=$!
    local deadline=$((SECONDS + START_DEADLINE))
    until answers "$k"; do
      kill -0 "$pid" 2>/dev/null || { tail -20 "$home/dockerd.log" >&2; die "engine $k exited"; }
      [ $SECONDS -lt $deadline ] || { tail -20 "$home/dockerd.log" >&2; die "engine $k did not answer in ${START_DEADLINE}s"; }
      sleep 0.2
    done
    log "engine $k: started ($(cat "$(pidfile "$k")"))"
  fi
  local image
  for image in "${IMAGES[@]}"; do
    if ! dk "$k" image inspect "$image" >/dev/null 2>&1; then
      docker image inspect "$image" >/dev/null 2>&1 || die "test image $image missing (scripts/test-images.sh)"
      docker save "$image" | dk "$k" load -q >/dev/null
      log "engine $k: loaded $image"
    fi
  done
}

swarm_init() {  # engine K a single-node swarm (once)
  local state
  state=$(dk "$1" info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    dk "$1" swarm init --advertise-addr 127.0.0.1 >/dev/null
    log "engine $1: swarm initialised"
  fi
}

[ "$(id -u)" = 0 ] || die "run as root"
case "${1:-}" in
  stop) stop_all; exit 0 ;;
  ''|*[!0-9]*) die "usage: extra-engines.sh N [--swarm K] | stop" ;;
esac
count=$1; shift
[ "$count" -ge 1 ] && [ "$count" -le $MAX ] || die "N is 1..$MAX"
swarm=""
while [ $# -gt 0 ]; do
  case $1 in
    --swarm) swarm=${2:?--swarm K}; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w 300 9 || die "could not get lock $DIR/.lock"
for k in $(seq 1 "$count"); do start_one "$k"; done
if [ -n "$swarm" ]; then swarm_init "$swarm"; fi
for k in $(seq 1 "$count"); do echo "unix://$(sock "$k")"; done

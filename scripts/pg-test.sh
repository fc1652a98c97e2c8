#!/usr/bin/env bash
# Throwaway PostgreSQL 15 for tests.
#   scripts/pg-test.sh start DIR   -> prints postgresql://postgres@127.0.0.1:PORT/dockyard_test
#   scripts/pg-test.sh stop DIR    -> stops the server (ok when nothing runs)
# Cluster in DIR/data, log in DIR/log, Unix socket in DIR, URL in DIR/url. Trust auth, user
# postgres, listens on 127.0.0.1 only, fsync=off. `start` is idempotent: a running server is
# reused; a stopped one is restarted on a fresh free port. Only the URL goes to stdout.
# As root, initdb/pg_ctl run as the `postgres` user (DIR is chowned to it, and every parent
# of DIR must be searchable by postgres: /root/... is not). Remove DIR to start from scratch.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB_NAME=dockyard_test
PG_USER=postgres

log() { echo "pg-test: $*" >&2; }
die() { echo "pg-test: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
DIR=$(realpath -m -- "$2")
DATA=$DIR/data
[ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL binaries not found in $PGBIN (set PGBIN)"
PSQL=$PGBIN/psql

if [ "$(id -u)" = 0 ]; then
  id -u "$PG_USER" >/dev/null 2>&1 || die "system user '$PG_USER' does not exist"
  AS_PG=(runuser -u "$PG_USER" --)
else
  AS_PG=()
fi

# pid of the postmaster in DATA if one is really running, else nothing (exit 1).
running_pid() {
  local pidfile=$DATA/postmaster.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(head -n1 "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  timeout 30 "${AS_PG[@]}" "$PGBIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
  # pg_ctl only checks kill(pid, 0); make sure the pid was not reused by something else.
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DATA" || return 1
  echo "$pid"
}

running_port() { sed -n 4p "$DATA/postmaster.pid"; }

url_for() { echo "postgresql://$PG_USER@127.0.0.1:$1/$DB_NAME"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ensure_db() {  # ensure_db PORT
  local port=$1 exists
  exists=$(PGCONNECT_TIMEOUT=10 timeout 30 "$PSQL" -X -h "$DIR" -p "$port" -U "$PG_USER" -d postgres -tAc \
    "select 1 from pg_database where datname = '$DB_NAME'") || die "cannot connect to the server on port $port"
  if [ "$exists" != 1 ]; then
    PGCONNECT_TIMEOUT=10 timeout 30 "$PSQL" -X -q -h "$DIR" -p "$port" -U "$PG_USER" -d postgres \
      -c "create database $DB_NAME" >&2 || die "create database $DB_NAME failed"
  fi
}

publish() {  # publish PORT
  local url; url=$(url_for "$1")
  echo "$url" >"$DIR/url.tmp" && mv -f "$DIR/url.tmp" "$DIR/url"
  echo "$url"
}

do_start() {
  mkdir -p "$DIR"
  if [ "$(id -u)" = 0 ]; then
    chown "$PG_USER:" "$DIR"
    "${AS_PG[@]}" test -w "$DIR" -a -x "$DIR" \
      || die "user $PG_USER cannot write $DIR (a parent directory is not searchable by it?); use a DIR under /tmp"
  fi
  # Unix socket path DIR/.s.PGSQL.NNNNN must fit in sun_path (107 bytes).
  [ $(( ${#DIR} + 18 )) -le 107 ] || die "DIR path too long for a Unix socket: $DIR"

  exec 9>>"$DIR/.pg-test.lock"
  flock -w 120 9 || die "another pg-test.sh holds $DIR/.pg-test.lock"

  if running_pid >/dev/null; then
    local port; port=$(running_port)
    log "reusing running server in $DATA (port $port)"
    ensure_db "$port"
    publish "$port"
    return
  fi

  if [ -f "$DATA/postmaster.pid" ]; then
    log "removing stale $DATA/postmaster.pid"
    rm -f "$DATA/postmaster.pid" "$DIR"/.s.PGSQL.*
  fi

  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"   # partial initdb
    log "initdb $DATA"
    timeout 120 "${AS_PG[@]}" "$PGBIN/initdb" -D "$DATA" -U "$PG_USER" --auth=trust -E UTF8 \
      --locale=C --no-sync >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  fi

  local port attempt
  for attempt in 1 2 3; do
    port=$(free_port) || die "could not find a free TCP port"
    log "starting on 127.0.0.1:$port (log $DIR/log)"
    if timeout 60 "${AS_PG[@]}" "$PGBIN/pg_ctl" start -D "$DATA" -l "$DIR/log" -w -t 30 \
        -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" >&2 9>&-; then
      ensure_db "$port"
      publish "$port"
      return
    fi
    log "start attempt $attempt failed; last log lines:"
    tail -n 5 "$DIR/log" >&2 2>/dev/null || true
    running_pid >/dev/null && { timeout 60 "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 >&2 || true; }
    rm -f "$DATA/postmaster.pid"
  done
  die "could not start PostgreSQL in $DATA (see $DIR/log)"
}

do_stop() {
  if [ ! -d "$DATA" ]; then
    log "nothing in $DATA; nothing to stop"
    return
  fi
  if running_pid >/dev/null; then
    timeout 60 "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w -t 30 >&2 || die "pg_ctl stop failed"
  else
    log "no server running in $DATA"
  fi
  rm -f "$DIR/url"
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac

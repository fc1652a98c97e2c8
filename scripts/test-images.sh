#!/usr/bin/env bash
# Build the local Docker images the test-suite uses, without any registry:
#   dockyard-test/busybox:latest  static busybox rootfs (user 1000 "app", WORKDIR /app)
#   dockyard-test/python:latest   Debian bookworm "essential" + python3-minimal (mmdebstrap)
# Idempotent: an image that already exists is left alone ("present"). Works from any cwd.
# Needs root (apt-get install of busybox-static / mmdebstrap when missing) and a running
# Docker engine. Never pulls from a registry; the python image downloads .debs from the
# Debian mirror the host's apt uses (override: DOCKYARD_DEBIAN_MIRROR=http://.../debian).
# Rebuild: docker rmi dockyard-test/busybox:latest dockyard-test/python:latest && rerun.
set -euo pipefail

BUSYBOX_IMAGE=dockyard-test/busybox:latest
PYTHON_IMAGE=dockyard-test/python:latest
SUITE=bookworm
# Comma-separated; python3-minimal has no json/sqlite3/etc. -- set DOCKYARD_PYTHON_PACKAGES=python3 for the full stdlib.
PYTHON_PACKAGES=${DOCKYARD_PYTHON_PACKAGES:-python3-minimal}
LOCK_FILE=${TMPDIR:-/tmp}/dockyard-test-images.lock

die() { echo "test-images: ERROR: $*" >&2; exit 1; }
log() { echo "test-images: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")"   # any cwd works; nothing below depends on it

command -v docker >/dev/null 2>&1 || die "docker CLI not found"
timeout 30 docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info' (try scripts/ensure-docker.sh)"

# One build at a time (parallel test runs would otherwise build twice).
exec 9>"$LOCK_FILE"
flock -w 1800 9 || die "could not get lock $LOCK_FILE within 30 min"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dockyard-test-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

image_present() { timeout 30 docker image inspect "$1" >/dev/null 2>&1; }

# apt-get install, running `apt-get update` only when the install fails without it.
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $* (or install it yourself)"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install $* yourself"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 900 apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1; then
    log "apt-get install $* failed without an index update; running apt-get update"
    timeout 600 apt-get update -qq >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get update failed"; }
    timeout 900 apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 \
      || { cat "$WORK/apt.log" >&2; die "apt-get install $* failed"; }
  fi
}

# True when $1 is a statically linked executable (a dynamic busybox would not run in the image).
is_static() {
  [ -x "$1" ] || return 1
  ! ldd "$1" >/dev/null 2>&1
}

# Import tarball $2 as image $1 with extra --change args, then smoke-test; remove image on failure.
import_image() {
  local image=$1 tarball=$2; shift 2
  local changes=(--change 'LABEL dockyard.test=true'
                 --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  local c; for c in "$@"; do changes+=(--change "$c"); done
  timeout 600 docker import "${changes[@]}" "$tarball" "$image" >/dev/null \
    || die "docker import of $image failed"
}

check_run() {  # check_run IMAGE EXPECTED-SUBSTRING docker-run-args...
  local image=$1 expect=$2; shift 2
  local out
  if ! out=$(timeout 120 docker run --rm "$@" 2>&1) || [[ "$out" != *"$expect"* ]]; then
    echo "$out" >&2
    timeout 60 docker rmi -f "$image" >/dev/null 2>&1 || true
    die "smoke test of $image failed (docker run --rm $*); image removed"
  fi
}

build_busybox() {
  local bb=/bin/busybox
  if ! is_static "$bb"; then
    log "installing busybox-static (needs a static /bin/busybox)"
    apt_install busybox-static
    is_static "$bb" || die "$bb is still missing or not statically linked after installing busybox-static"
  fi
  local root="$WORK/busybox-root" applet
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,app,tmp}
  cp "$bb" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  [ -e "$root/bin/sh" ] || ln -sf busybox "$root/bin/sh"
  ln -sf /bin/busybox "$root/usr/bin/env"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp"
  chown 1000:1000 "$root/app" 2>/dev/null || true
  chmod 0755 "$root/app"
  tar --numeric-owner -C "$root" -cf "$WORK/busybox.tar" . || die "tar of busybox rootfs failed"
  import_image "$BUSYBOX_IMAGE" "$WORK/busybox.tar" 'CMD ["sh"]' 'WORKDIR /app'
  check_run "$BUSYBOX_IMAGE" "uid=0(root)" "$BUSYBOX_IMAGE" sh -c 'echo ok; id'
  check_run "$BUSYBOX_IMAGE" "uid=1000(app)" --user 1000:1000 "$BUSYBOX_IMAGE" sh -c 'echo ok; id; touch /tmp/x /app/x'
  check_run "$BUSYBOX_IMAGE" "ok" "$BUSYBOX_IMAGE" /usr/bin/env sh -c 'echo ok'
}

# The Debian mirror the host's apt uses for $SUITE (deb822 .sources or one-line format).
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() { if (uris != "" && enabled && (" " suites " ") ~ (" " suite " ")) { split(uris, u, " "); print u[1]; found = 1; exit } }
      /^[[:space:]]*$/ { flush(); uris = ""; suites = ""; enabled = 1; next }
      /^#/ { next }
      tolower($1) == "uris:"    { $1 = ""; uris = $0 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
      BEGIN { enabled = 1 }
      END { if (!found) flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }'
  done
}

build_python() {
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap"
    apt_install mmdebstrap
  fi
  local mirror=${DOCKYARD_DEBIAN_MIRROR:-}
  [ -n "$mirror" ] || mirror=$(host_mirror | grep -E '^(https?|file):' | head -n1 || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  mirror=${mirror%/}
  local opts=()
  # The host's apt proxy (if any) must be used by mmdebstrap's apt too.
  local proxy scheme
  for scheme in http https; do
    proxy=$(apt-config dump 2>/dev/null | sed -nE "s/^Acquire::${scheme}::Proxy \"([^\"]*)\";$/\1/p" | head -n1)
    [ -n "$proxy" ] && opts+=(--aptopt="Acquire::${scheme}::Proxy \"$proxy\"")
  done
  log "mmdebstrap $SUITE from $mirror ${opts[*]:-}"
  if ! timeout 1200 mmdebstrap --quiet --variant=essential --include="$PYTHON_PACKAGES" \
        "${opts[@]}" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$SUITE" "$WORK/python.tar" "deb $mirror $SUITE main" >"$WORK/mmdebstrap.log" 2>&1; then
    tail -n 40 "$WORK/mmdebstrap.log" >&2
    die "mmdebstrap failed (mirror $mirror; set DOCKYARD_DEBIAN_MIRROR to override)"
  fi
  import_image "$PYTHON_IMAGE" "$WORK/python.tar" 'CMD ["python3"]'
  check_run "$PYTHON_IMAGE" "1" "$PYTHON_IMAGE" python3 -c 'print(1)'
  check_run "$PYTHON_IMAGE" "ok" "$PYTHON_IMAGE" /bin/sh -c 'echo ok'
}

ensure_image() {  # ensure_image IMAGE BUILD-FUNCTION
  local image=$1 build=$2 start=$SECONDS
  if image_present "$image"; then
    echo "$image: present"
    return
  fi
  "$build"
  echo "$image: built in $((SECONDS - start)) s"
}

ensure_image "$BUSYBOX_IMAGE" build_busybox
ensure_image "$PYTHON_IMAGE" build_python

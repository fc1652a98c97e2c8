#!/usr/bin/env bash
# Debian's chromium for the web UI's browser tests (tests/e2e/test_ui*.py drive it through
# Playwright with executable_path=/usr/bin/chromium). Playwright's own browser download is
# not used: `playwright install` is never called. Idempotent; does nothing when present.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's chromium package" >&2
  echo "ensure-chromium: (the UI tests will be skipped, or fail with DOCKYARD_REQUIRE_DOCKER=1)" >&2
  exit 0
fi
echo "ensure-chromium: installing chromium ..." >&2
export DEBIAN_FRONTEND=noninteractive
timeout 600 apt-get update -qq
timeout 900 apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

"""The local registry of the push tests (scripts/test-registry.sh starts it)."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REGISTRY = "127.0.0.1:5000"
REGISTRY_USER = "dockyard-test"
REGISTRY_PASS = "dockyard-test-pass"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test-registry.sh"


def _answers() -> bool:
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return True


def require_registry() -> None:
    """The registry answers (started here if needed), or the test skips (fails with
    DOCKYARD_REQUIRE_DOCKER=1)."""
    if _answers():
        return
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if out.returncode == 0 and _answers():
        return
    reason = f"no local registry on {REGISTRY}: {out.stderr.strip()[-500:]}"
    if os.environ.get("DOCKYARD_REQUIRE_DOCKER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)

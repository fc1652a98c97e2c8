"""What ``import dockyard.client`` costs: never the server's stack, and little time (the
CLI starts with it). Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "alembic", "aiodocker", "uvicorn")
ROOT = Path(__file__).resolve().parents[2]


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_the_sdk_never_imports_the_server_stack() -> None:
    # the whole of it: both clients, the terminal and every model
    used = loaded_after(
        "from dockyard.client import Dockyard, AsyncDockyard, Terminal\n"
        "import dockyard.client.models\n"
        "Dockyard('http://127.0.0.1:1', auth=('a', 'b')).close()"
    )
    assert used.isdisjoint(SERVER_STACK), used & set(SERVER_STACK)


def test_import_dockyard_client_is_fast_and_light() -> None:
    used = loaded_after("import dockyard.client")
    assert used.isdisjoint({*SERVER_STACK, "httpx", "websockets", "pydantic"})
    best = min(import_time_us("dockyard.client") for _ in range(3))
    assert best < 150_000, f"import dockyard.client took {best / 1000:.0f} ms"


def import_time_us(module: str) -> int:
    """The cumulative time ``python -X importtime`` reports for ``module``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stderr
    line = next(ln for ln in err.splitlines() if ln.rstrip().endswith(f"| {module}"))
    return int(line.split("|")[1])


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync_client.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

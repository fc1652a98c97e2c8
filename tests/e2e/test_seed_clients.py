"""Seed 001's client examples — Python terminal, Node executor and downloads, and the
complete aiohttp integration example — run against the real server."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.e2e import seed_clients
from tests.server import Server

NODE_DIR = Path(__file__).parent / "node"
HEADERS = basic(*ADMIN)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The seed's Node examples need `ws` and `axios` (from the npm registry, once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the seed's Node examples")
    if not (NODE_DIR / "node_modules" / "ws").exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return NODE_DIR / "node_modules"


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One server for the module: each test makes its own containers."""
    return module_server


def node_env(server: Server, cuid: str) -> dict[str, str]:
    return {
        **os.environ,
        "BASE_URL": server.url,
        "CUID": cuid,
        "DY_USER": ADMIN[0],
        "DY_PASS": ADMIN[1],
    }


def create(server: Server, **body: object) -> str:
    resp = httpx.post(
        f"{server.url}/containers", headers=HEADERS, timeout=60, json={"image": BUSYBOX, **body}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


def test_node_container_executor(server: Server, node_modules: Path) -> None:
    cuid = create(server, start=True)  # main process: sh
    out = subprocess.run(
        ["node", "executor.js"],
        cwd=NODE_DIR,
        env=node_env(server, cuid),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Exit code: 0" in out.stdout
    assert "total" in out.stdout and " .." in out.stdout


def test_node_downloads(server: Server, node_modules: Path, tmp_path: Path) -> None:
    cuid = create(server)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("boot.py", "print('hi')\n")
        zf.writestr("data/config.json", '{"setting": "value"}')
    resp = httpx.post(
        f"{server.url}/containers/{cuid}/upload-zip",
        content=buf.getvalue(),
        headers={**HEADERS, "Content-Type": "application/zip"},
        timeout=60,
    )
    assert resp.status_code == 200
    work = tmp_path / "node-cwd"
    work.mkdir()
    out = subprocess.run(
        ["node", str(NODE_DIR / "download.js")],
        cwd=work,
        env={**node_env(server, cuid), "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (work / "downloaded_file").read_bytes() == b'{"setting": "value"}'
    with zipfile.ZipFile(work / "container_backup.zip") as zf:
        assert sorted(zf.namelist()) == ["boot.py", "data/config.json"]


async def test_python_container_terminal(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    cuid = create(server, start=True)
    terminal = seed_clients.ContainerTerminal(f"127.0.0.1:{server.port}", cuid, *ADMIN)
    await terminal.connect(cols=100, rows=30)
    await terminal.resize(120, 40)
    await terminal.send_input("echo from-the-seed-$((40+2))\n")
    await terminal.send_input("exit 5\n")
    printed = ""
    async with asyncio.timeout(30):
        while "[Process exited with code 5]" not in printed:
            printed += capsys.readouterr().out
            await asyncio.sleep(0.05)  # poll what the seed client printed
    assert "from-the-seed-42" in printed


async def test_complete_aiohttp_integration_example(
    server: Server, seed_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = """
import os
import time
print(f"Hello from container {os.environ.get('CONTAINER_UID')}")
print(f"Environment: {os.environ.get('APP_ENV', 'development')}")
for i in range(5):
    print(f"Iteration {i+1}")
    time.sleep(1)
print("Done!")
"""
    orchestrator = seed_clients.ContainerOrchestrator(server.url, *ADMIN)
    cuid = await orchestrator.deploy_and_run(
        image=seed_image, code=code, env={"APP_ENV": "production"}
    )
    out = capsys.readouterr().out
    assert f"Hello from container {cuid}" in out
    assert "Environment: production" in out
    assert "Iteration 5" in out and "Done!" in out
    assert "Container deleted" in out
    resp = httpx.get(f"{server.url}/containers/{cuid}", headers=HEADERS)
    assert resp.status_code == 404

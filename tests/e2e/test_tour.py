"""The README's tour and the seed 001 examples, unchanged, against the real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import (
    BUSYBOX,
)
from tests.server import Server

ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV_VALUE = "env-value-that-must-never-be-logged-7f3a"
WRONG_PASSWORD = "wrong-password-that-must-never-be-logged-9c1d"


def test_readme_tour_runs_as_written(server: Server, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour:start -->\s*```bash\n(.*?)```", readme, re.S)
    assert block, "README has no tour block"
    env = {
        **os.environ,
        "BASE": server.url,
        "AUTH": f"{ADMIN[0]}:{ADMIN[1]}",
        "IMAGE": BUSYBOX,
        "PYTHON": sys.executable,
    }
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.group(1)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("204")
    cuid = out.stdout.split("created ", 1)[1].split()[0]
    assert '"APP_ENV":"prod"' in out.stdout and '"status":"exited"' in out.stdout
    assert '{"files":1,"bytes":16}' in out.stdout and "hello from /app" in out.stdout
    assert "hello.txt" in out.stdout and "'type': 'exit', 'code': 0" in out.stdout
    assert "Step 3/3 : CMD cat /built.txt" in out.stdout and '"status":"succeeded"' in out.stdout
    assert "built by dockyard" in out.stdout and out.stdout.count("204") >= 3
    assert httpx.get(f"{server.url}/containers/{cuid}", headers=basic(*ADMIN)).status_code == 404


def test_seed_001_examples_unchanged(server: Server, seed_image: str) -> None:
    auth = basic(*ADMIN)
    http = httpx.Client(base_url=server.url, headers=auth, timeout=120)
    # "Create Container" (Python example), payload verbatim.
    payload = {
        "image": "python:3.12-slim",
        "env": {"APP_ENV": "production", "DEBUG": "false"},
        "tags": ["web", "production"],
        "resources": {"cpus": 1.0, "memory": "4096m", "pids": 2048},
        "ports": [{"host": 8080, "container": 80, "protocol": "tcp"}],
    }
    resp = http.post("/containers", json=payload)
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    assert re.fullmatch(r"c[0-9a-f-]{36}", cuid)

    # "List Containers with Pagination": status joined with ',' and a cursor.
    for _ in range(2):
        assert (
            http.post(
                "/containers", json={"image": "python:3.12-slim", "command": ["sleep", "600"]}
            ).status_code
            == 201
        )
    seen, cursor = [], None
    while True:
        params: dict[str, str] = {
            "status": ",".join(["created", "running", "paused"]),
            "limit": "2",
        }
        if cursor:
            params["cursor"] = cursor
        data = http.get("/containers", params=params).json()
        seen += data["containers"]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 3

    # "Update Container Configuration" (Go example): OLD_VAR null removes it.
    http.patch(f"/containers/{cuid}", json={"env": {"OLD_VAR": "x"}})
    resp = http.patch(
        f"/containers/{cuid}",
        json={
            "env": {"NEW_VAR": "value", "OLD_VAR": None},
            "tags": ["updated", "v2"],
            "resources": {"memory": "8192m"},
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["env"] == {"APP_ENV": "production", "DEBUG": "false", "NEW_VAR": "value"}
    assert body["tags"] == ["updated", "v2"] and body["resources"]["memory"] == "8192m"

    # "Port Management": replace the bindings.
    resp = http.patch(
        f"/containers/{cuid}/ports",
        json={
            "ports": [
                {"host": 3000, "container": 3000, "protocol": "tcp"},
                {"host": 9000, "container": 9000, "protocol": "udp"},
            ]
        },
    )
    assert resp.status_code == 200

    # "Container Control Operations" (Ruby example): POST with a JSON content type, no body.
    other = http.post(
        "/containers", json={"image": "python:3.12-slim", "command": ["sleep", "600"]}
    ).json()["cuid"]
    for action, status in (
        ("start", "running"),
        ("pause", "paused"),
        ("unpause", "running"),
        ("restart", "running"),
        ("stop", "exited"),
    ):
        resp = http.post(
            f"/containers/{other}/{action}", headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 200, (action, resp.text)
        assert resp.json()["status"] == status
    # "Error Handling": the status endpoint the seed's safe_api_call wraps.
    assert http.get(f"/containers/{other}/status").json()["status"] == "exited"
    # "Health Monitoring": compose_version in /healthz.
    assert http.get("/healthz").json()["compose_version"]
    http.close()


def test_no_secret_reaches_a_log(server: Server, tmp_path: Path) -> None:
    http = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    resp = http.post(
        "/containers",
        json={
            "image": BUSYBOX,
            "command": "sleep 600",
            "env": {"API_TOKEN": SECRET_ENV_VALUE},
            "start": True,
        },
    )
    assert resp.status_code == 201
    cuid = resp.json()["cuid"]
    http.patch(f"/containers/{cuid}", json={"env": {"OTHER": SECRET_ENV_VALUE + "-2"}})
    http.post(
        "/containers", json={"image": "missing/image:1", "env": {"API_TOKEN": SECRET_ENV_VALUE}}
    )
    for _ in range(3):
        httpx.get(f"{server.url}/containers", headers=basic("admin", WRONG_PASSWORD))
        httpx.get(f"{server.url}/containers", headers=basic("nobody", WRONG_PASSWORD))
    assert http.delete(f"/containers/{cuid}").status_code == 204
    http.close()
    server.stop()

    logged = [server.output, *sorted((tmp_path / "logs").rglob("*"))]
    assert (tmp_path / "logs" / "actions.jsonl").exists()
    for path in logged:
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in (ADMIN[1], SECRET_ENV_VALUE, WRONG_PASSWORD):
                assert secret not in text, f"{secret} found in {path}"
    actions = (tmp_path / "logs" / "actions.jsonl").read_text()
    assert (
        '"error":"auth_error","code":"INVALID_CREDENTIALS"' in actions and '"status":401' in actions
    )
    assert '"auth.failed"' in server.output.read_text()

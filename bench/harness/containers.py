"""Containers made both ways: through Dockyard's API, and as the same compose file run
through the Compose binary (a "raw" project), each kept in the run's context until gone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.base import COMMAND, COMPOSE_TIMEOUT, CREATE_TIMEOUT, GID, IMAGE, UID, BenchError
from harness.context import Ctx

# -- API containers --------------------------------------------------------------------


def api_create(
    client: httpx.Client, ctx: Ctx, rid: str | None = None, command: str = COMMAND
) -> tuple[str, float]:
    """POST /containers (started); its cuid and how long the answer took."""
    t0 = time.perf_counter()
    resp = client.post(
        "/containers",
        json={"image": IMAGE, "command": command, "start": True},
        timeout=CREATE_TIMEOUT,
        headers={"X-Request-ID": rid} if rid else None,
    )
    dt = time.perf_counter() - t0
    if resp.status_code != 201:
        raise BenchError(f"POST /containers: {resp.status_code} {resp.text[:500]}")
    cuid = str(resp.json()["cuid"])
    ctx.api_cuids.add(cuid)
    if resp.json().get("status") != "running":
        raise BenchError(f"created container {cuid} is {resp.json().get('status')}, not running")
    return cuid, dt


def api_delete(client: httpx.Client, ctx: Ctx, cuid: str, rid: str | None = None) -> float:
    t0 = time.perf_counter()
    resp = client.delete(
        f"/containers/{cuid}",
        timeout=CREATE_TIMEOUT,
        headers={"X-Request-ID": rid} if rid else None,
    )
    dt = time.perf_counter() - t0
    if resp.status_code != 204:
        raise BenchError(f"DELETE /containers/{cuid}: {resp.status_code} {resp.text[:500]}")
    ctx.api_cuids.discard(cuid)
    return dt


# -- raw Compose projects --------------------------------------------------------------


def raw_document(
    template: dict[str, Any], api_cuid: str, api_app_dir: str, name: str, app_dir: Path
) -> dict[str, Any]:
    """Dockyard's document for one container, moved to another project and folder.

    The label ``dockyard.managed`` is set to "false" so that the server (its event follower
    and reconcile) ignores the raw containers: only what names the project changes.
    """
    doc = json.loads(json.dumps(template))
    doc["name"] = name
    service = doc["services"]["app"]
    found = False
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("source") == api_app_dir:
            volume["source"] = str(app_dir)
            found = True
    if not found:
        raise BenchError(f"no bind mount of {api_app_dir} in the generated compose file")
    env = service.get("environment") or {}
    if env.get("CONTAINER_UID") == api_cuid:
        env["CONTAINER_UID"] = name
    labels = service.get("labels") or {}
    if "dockyard.cuid" in labels:
        labels["dockyard.cuid"] = name
    if "dockyard.managed" in labels:
        labels["dockyard.managed"] = "false"
    return doc


def make_raw_project(
    ctx: Ctx, template: dict[str, Any], api_cuid: str, api_app_dir: str, name: str
) -> Path:
    project_dir = ctx.raw_root / name
    project_dir.mkdir(mode=0o700, parents=True)
    app_dir = project_dir / "app"
    app_dir.mkdir(mode=0o755)
    os.chown(app_dir, UID, GID)
    doc = raw_document(template, api_cuid, api_app_dir, name, app_dir)
    text = "# Copy of a Dockyard-generated file, for bench/run.py\n"
    text += yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    compose_file = project_dir / "compose.yaml"
    compose_file.write_text(text, encoding="utf-8")
    compose_file.chmod(0o600)
    return project_dir


def raw_argv(ctx: Ctx, name: str, project_dir: Path, verb: str) -> list[str]:
    base = [
        ctx.compose_bin,
        "--project-name",
        name,
        "--project-directory",
        str(project_dir),
        "--file",
        str(project_dir / "compose.yaml"),
    ]
    if verb == "up":
        return [*base, "up", "--detach", "--no-build", "--pull", "never", "--remove-orphans"]
    return [*base, "down", "--remove-orphans", "--timeout", "10"]


def raw_compose(ctx: Ctx, name: str, project_dir: Path, verb: str) -> float:
    """Run one raw Compose call the way the server does (own session, no stdin, pipes)."""
    if verb == "up":
        ctx.raw_projects.add(name)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        raw_argv(ctx, name, project_dir, verb),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ctx.compose_env(),
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=COMPOSE_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"raw compose {verb} {name} failed: {err.decode(errors='replace')[-800:]}")
    if verb == "down":
        ctx.raw_projects.discard(name)
    return dt


async def raw_compose_async(
    ctx: Ctx, name: str, project_dir: Path, verb: str
) -> tuple[float, str | None]:
    if verb == "up":
        ctx.raw_projects.add(name)
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *raw_argv(ctx, name, project_dir, verb),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ctx.compose_env(),
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(COMPOSE_TIMEOUT):
            _, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.shield(proc.wait())
        raise
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        return dt, err.decode(errors="replace")[-500:]
    if verb == "down":
        ctx.raw_projects.discard(name)
    return dt, None


def capture_template(ctx: Ctx, client: httpx.Client) -> tuple[dict[str, Any], str, str]:
    """The compose file Dockyard generated for one container (kept before its delete).

    Returns the parsed document, that container's cuid and its bind-mount source."""
    saved = ctx.root / "generated-compose.yaml"
    if not saved.exists():
        cuid, _ = api_create(client, ctx)
        text = (ctx.data_dir / "containers" / cuid / "compose.yaml").read_text(encoding="utf-8")
        saved.write_text(text, encoding="utf-8")
        api_delete(client, ctx, cuid)
    template = yaml.safe_load(saved.read_text(encoding="utf-8"))
    cuid = str(template["name"])
    return template, cuid, str(ctx.data_dir / "containers" / cuid / "app")

"""The container lifecycle against a real Docker engine and the real Compose binary."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import httpx

from dockyard.domain.containers.compose_doc import container_name
from tests.docker_helpers import (
    BUSYBOX,
    PYTHON,
    TEST_NETWORK,
    docker,
    inspect,
    project_containers,
    wait_for,
)
from tests.integration.conftest import Live
from tests.server import free_port


async def test_created_container_runs_as_the_spec_says(live: Live) -> None:
    c = await live.create(
        image=BUSYBOX,
        command="sleep 600",
        start=True,
        env={"APP_ENV": "production", "PRICE": "5$ ${HOME}"},
        tags=["web", "blue"],
        resources={"cpus": 0.5, "memory": "64m", "pids": 128},
    )
    assert c["status"] == "running" and c["owner"] == "admin"
    name = container_name(c["cuid"])
    info = inspect(name)
    host = info["HostConfig"]
    assert host["Init"] is True
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 128
    assert host["Privileged"] is False
    assert info["Config"]["User"] == "1000:1000"
    assert info["Config"]["Tty"] is True and info["Config"]["OpenStdin"] is True
    assert list(info["NetworkSettings"]["Networks"]) == [TEST_NETWORK]
    assert info["Config"]["Labels"]["dockyard.managed"] == "true"
    env = docker("exec", name, "env")
    assert f"CONTAINER_UID={c['cuid']}" in env
    assert "TAGS=web,blue" in env
    assert "PRICE=5$ ${HOME}" in env
    assert docker("exec", name, "id", "-u").strip() == "1000"
    assert docker("exec", name, "stat", "-c", "%u:%g", "/app").strip() == "1000:1000"
    # The project is an ordinary Compose project an operator can inspect.
    compose_file = live.settings.containers_dir / c["cuid"] / "compose.yaml"
    assert compose_file.stat().st_mode & 0o777 == 0o600
    assert len(project_containers(c["cuid"])) == 1


async def test_shared_network_keeps_tenants_apart(live: Live) -> None:
    net = inspect(TEST_NETWORK)
    assert net["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    server = await live.create(image=BUSYBOX, command="nc -l -p 8000", start=True)
    client = await live.create(image=BUSYBOX, command="sleep 600", start=True)
    ip = inspect(container_name(server["cuid"]))["NetworkSettings"]["Networks"][TEST_NETWORK][
        "IPAddress"
    ]
    out = docker(
        "exec",
        container_name(client["cuid"]),
        "sh",
        "-c",
        f"echo hi | nc -w 2 {ip} 8000 && echo REACHED || echo BLOCKED",
        timeout=30,
    )
    assert "BLOCKED" in out
    none = await live.create(image=BUSYBOX, command="sleep 600", network="none", start=True)
    assert inspect(container_name(none["cuid"]))["HostConfig"]["NetworkMode"] == "none"


async def test_boot_py_runs_with_python3_when_no_command(live: Live) -> None:
    c = await live.create(image=PYTHON)
    app_dir = live.settings.containers_dir / c["cuid"] / "app"
    (app_dir / "boot.py").write_text(
        "import os\nprint('booted', os.environ['CONTAINER_UID'], os.getuid())\n"
    )
    resp = await live.client.post(f"/containers/{c['cuid']}/start")
    assert resp.status_code == 200, resp.text
    name = container_name(c["cuid"])
    logs = wait_for(
        lambda: (out := docker("logs", name)) and "booted" in out and out, what="boot.py output"
    )
    assert f"booted {c['cuid']} 1000" in logs


async def test_image_default_command_when_nothing_else(live: Live) -> None:
    c = await live.create(image=BUSYBOX, start=True)  # CMD ["sh"] with a TTY keeps running
    assert c["status"] == "running"
    assert inspect(container_name(c["cuid"]))["Config"]["Cmd"] == ["sh"]


async def test_lifecycle_and_impossible_transitions(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="sleep 600")
    cuid = c["cuid"]
    assert c["status"] == "created"

    async def act(action: str, expect: int = 200) -> dict[str, Any]:
        resp = await live.client.post(f"/containers/{cuid}/{action}")
        assert resp.status_code == expect, resp.text
        return resp.json()  # type: ignore[no-any-return]

    assert (await act("pause", 422))["error"] == "state_error"
    assert (await act("start"))["status"] == "running"
    assert (await act("start"))["status"] == "running"  # already running: no-op
    assert (await act("pause"))["status"] == "paused"
    assert inspect(container_name(cuid))["State"]["Paused"] is True
    assert (await act("start", 422))["code"] == "INVALID_TRANSITION"
    assert (await act("unpause"))["status"] == "running"
    assert (await act("restart"))["status"] == "running"
    stopped = await act("stop")
    assert stopped["status"] == "exited" and stopped["finished_at"]
    assert (await act("kill", 422))["error"] == "state_error"
    assert (await act("start"))["status"] == "running"
    killed = await act("kill")
    assert killed["status"] == "exited" and killed["exit_code"] == 137

    resp = await live.client.delete(f"/containers/{cuid}")
    assert resp.status_code == 204
    assert project_containers(cuid) == []
    assert not (live.settings.containers_dir / cuid).exists()
    assert (await live.client.get(f"/containers/{cuid}")).status_code == 404


async def test_status_reports_exit_code(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="exit 3", start=True)
    cuid = c["cuid"]

    async def exited() -> dict[str, Any]:
        for _ in range(300):
            body = (await live.client.get(f"/containers/{cuid}/status")).json()
            if body["status"] == "exited":
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)
        raise AssertionError("container did not exit")

    body = await exited()
    assert body["exit_code"] == 3 and body["oom_killed"] is False
    assert body["restart_count"] == 0 and body["finished_at"]


async def test_patch_recreates_a_running_container(live: Live) -> None:
    c = await live.create(
        image=BUSYBOX,
        command="sleep 600",
        start=True,
        env={"KEEP": "1", "OLD_VAR": "x"},
        tags=["a"],
        resources={"memory": "64m", "cpus": 0.5},
    )
    cuid = c["cuid"]
    old_id = inspect(container_name(cuid))["Id"]
    resp = await live.client.patch(
        f"/containers/{cuid}",
        json={
            "env": {"NEW_VAR": "value", "OLD_VAR": None},
            "tags": ["updated", "v2"],
            "resources": {"memory": "96m"},
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["env"] == {"KEEP": "1", "NEW_VAR": "value"}
    assert body["tags"] == ["updated", "v2"]
    assert body["resources"] == {"cpus": 0.5, "memory": "96m", "pids": 256}  # default pids
    assert body["status"] == "running"
    info = inspect(container_name(cuid))
    assert info["Id"] != old_id
    assert info["HostConfig"]["Memory"] == 96 * 1024 * 1024
    env = docker("exec", container_name(cuid), "env")
    assert "NEW_VAR=value" in env and "OLD_VAR" not in env and "TAGS=updated,v2" in env
    # A stopped container just takes the new spec; it applies at the next start.
    await live.client.post(f"/containers/{cuid}/stop")
    resp = await live.client.patch(f"/containers/{cuid}", json={"env": {"LATER": "1"}})
    assert resp.json()["status"] == "exited"
    await live.client.post(f"/containers/{cuid}/start")
    assert "LATER=1" in docker("exec", container_name(cuid), "env")


async def test_ports_conflicts_and_rollback(live: Live) -> None:
    port = free_port()
    a = await live.create(
        image=BUSYBOX,
        command="nc -ll -p 8080 -e echo hello",
        start=True,
        ports=[{"host": port, "container": 8080}],
    )
    bound = inspect(container_name(a["cuid"]))["HostConfig"]["PortBindings"]
    assert bound["8080/tcp"][0]["HostPort"] == str(port)
    # Another container may not take the same host port.
    resp = await live.client.post(
        "/containers", json={"image": BUSYBOX, "ports": [{"host": port, "container": 81}]}
    )
    assert resp.status_code == 409 and resp.json()["code"] == "PORT_IN_USE"

    # A port some other program holds: 409, and the running container keeps its old port.
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        resp = await live.client.patch(
            f"/containers/{a['cuid']}/ports", json={"ports": [{"host": taken, "container": 80}]}
        )
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"] == "conflict"
    after = (await live.client.get(f"/containers/{a['cuid']}")).json()
    assert after["status"] == "running"
    assert after["ports"] == [
        {"container": 8080, "host": port, "protocol": "tcp", "url": f"http://127.0.0.1:{port}"}
    ]
    assert inspect(container_name(a["cuid"]))["HostConfig"]["PortBindings"]["8080/tcp"][0][
        "HostPort"
    ] == str(port)

    new_port = free_port()
    resp = await live.client.patch(
        f"/containers/{a['cuid']}/ports",
        json={
            "ports": [
                {"host": new_port, "container": 8080, "protocol": "tcp"},
                {"host": free_port(), "container": 90, "protocol": "udp"},
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    bindings = inspect(container_name(a["cuid"]))["HostConfig"]["PortBindings"]
    assert bindings["8080/tcp"][0]["HostPort"] == str(new_port) and "90/udp" in bindings
    with socket.create_connection(("127.0.0.1", new_port), timeout=10) as conn:
        assert conn.recv(16).startswith(b"hello")


async def test_reads_never_call_compose(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="sleep 600", start=True)
    # The local engine's runner, behind the routing (domain/engines/routing.py).
    compose = live.services.containers._compose.routes.local.compose
    calls: list[str] = []
    original = compose.run_argv

    async def spy(argv: list[str], **kw: Any) -> str:
        calls.append(" ".join(argv))
        return await original(argv, **kw)

    compose.run_argv = spy
    for path in (
        f"/containers/{c['cuid']}",
        "/containers",
        f"/containers/{c['cuid']}/status",
        "/containers?status=running&tag=x",
        "/healthz",
    ):
        assert (await live.client.get(path)).status_code == 200
    assert calls == []


async def test_owners_see_only_their_own(live: Live) -> None:
    mine = await live.create(image=BUSYBOX, command="sleep 600")
    bob = await live.user_client("bob")
    theirs = (await bob.post("/containers", json={"image": BUSYBOX})).json()
    listed = [x["cuid"] for x in (await bob.get("/containers")).json()["containers"]]
    assert listed == [theirs["cuid"]]
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/start"),
        ("GET", "/status"),
        ("PATCH", "/ports"),
    ):
        resp = await bob.request(
            method,
            f"/containers/{mine['cuid']}{path}",
            json=({"ports": []} if path else {}) if method == "PATCH" else None,
        )
        assert resp.status_code == 404, (method, path, resp.text)
    admin_sees = [x["cuid"] for x in (await live.client.get("/containers")).json()["containers"]]
    assert {mine["cuid"], theirs["cuid"]} <= set(admin_sees)
    viewer = await live.user_client("vera", "viewer")
    assert (await viewer.post("/containers", json={"image": BUSYBOX})).status_code == 403
    await bob.aclose()
    await viewer.aclose()


async def test_fifty_concurrent_creates_all_succeed(live: Live) -> None:
    responses = await asyncio.gather(
        *(
            live.client.post(
                "/containers",
                json={"image": BUSYBOX, "command": "sleep 600", "start": True, "tags": ["burst"]},
            )
            for _ in range(50)
        )
    )
    assert [r.status_code for r in responses] == [201] * 50
    cuids = {r.json()["cuid"] for r in responses}
    page = (await live.client.get("/containers", params={"tag": "burst", "limit": 500})).json()
    assert {x["cuid"] for x in page["containers"]} == cuids
    assert all(x["status"] == "running" for x in page["containers"])
    deleted = await asyncio.gather(*(live.client.delete(f"/containers/{c}") for c in cuids))
    assert [r.status_code for r in deleted] == [204] * 50
    assert os.listdir(live.settings.containers_dir) == []


async def test_list_pagination_and_filters(live: Live) -> None:
    made = [await live.create(image=BUSYBOX, tags=[f"t{i % 2}"]) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await live.client.get("/containers", params=params)).json()
        seen += [x["cuid"] for x in page["containers"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [m["cuid"] for m in reversed(made)]
    t0 = (await live.client.get("/containers", params={"tag": "t0"})).json()["containers"]
    assert [x["cuid"] for x in t0] == [made[4]["cuid"], made[2]["cuid"], made[0]["cuid"]]
    created = (await live.client.get("/containers", params={"status": "created,paused"})).json()
    assert len(created["containers"]) == 5


async def test_status_follows_engine_events(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="sleep 600", start=True)
    docker("stop", "-t", "1", container_name(c["cuid"]))

    async def listed_status() -> str:
        page = (await live.client.get("/containers", params={"status": "exited"})).json()
        return "exited" if any(x["cuid"] == c["cuid"] for x in page["containers"]) else ""

    for _ in range(100):
        if await listed_status():
            break
        await asyncio.sleep(0.1)
    assert await listed_status() == "exited"


async def test_reconcile_marks_missing_and_adopts(live: Live, tmp_path: Path) -> None:
    gone = await live.create(image=BUSYBOX, command="sleep 600")
    docker("rm", "-f", container_name(gone["cuid"]))
    # Marked by the engine's destroy event or by the reconcile, whichever comes first.
    await live.services.reconciler.run_once(startup=False)
    body = (await live.client.get(f"/containers/{gone['cuid']}")).json()
    assert body["status"] == "missing"
    resp = await live.client.post(f"/containers/{gone['cuid']}/start")
    assert resp.status_code == 422
    assert (await live.client.delete(f"/containers/{gone['cuid']}")).status_code == 204

    # A labelled project the database does not know: adopted if its owner exists.
    from dockyard.domain.models import new_cuid

    stray, orphan = new_cuid(), new_cuid()
    for cuid, owner in ((stray, "admin"), (orphan, "nobody")):
        docker(
            "run",
            "-d",
            "--name",
            container_name(cuid),
            "--label",
            "dockyard.managed=true",
            "--label",
            f"dockyard.cuid={cuid}",
            "--label",
            f"dockyard.owner={owner}",
            "--label",
            f"com.docker.compose.project={cuid}",
            "--label",
            f"com.docker.compose.project.working_dir={live.settings.containers_dir / cuid}",
            BUSYBOX,
            "sleep",
            "600",
        )
    for cuid in (stray, orphan):
        (live.settings.containers_dir / cuid).mkdir()
    report = await live.services.reconciler.run_once(startup=False)
    assert stray in report.adopted and orphan in report.orphans
    adopted = (await live.client.get(f"/containers/{stray}")).json()
    assert adopted["status"] == "running" and adopted["owner"] == "admin"
    try:
        health = (await live.client.get("/healthz")).json()
        assert orphan in health["orphans"]
        assert (await live.client.get(f"/containers/{orphan}")).status_code == 404
    finally:
        # The orphan belongs to no account: no delete through the API removes it.
        docker("rm", "-f", container_name(orphan), check=False)


async def test_unknown_image_is_refused_before_anything_is_made(live: Live) -> None:
    resp = await live.client.post("/containers", json={"image": "nope/never:1"})
    assert resp.status_code == 400 and resp.json()["code"] == "IMAGE_NOT_FOUND"
    assert os.listdir(live.settings.containers_dir) == []


async def test_failed_start_on_create_leaves_nothing(live: Live) -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        resp = await live.client.post(
            "/containers",
            json={"image": BUSYBOX, "start": True, "ports": [{"host": taken, "container": 80}]},
        )
    assert resp.status_code == 409, resp.text
    assert (await live.client.get("/containers")).json()["containers"] == []
    live.assert_nothing_left()


async def test_healthz_reports_versions(live: Live) -> None:
    body = (await live.client.get("/healthz")).json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["compose_version"].startswith("2.")
    assert body["docker_version"]
    metrics = await live.client.get("/metrics")
    assert "dockyard_http_requests_total" in metrics.text
    anon = httpx.AsyncClient(transport=live.client._transport, base_url="http://live")
    assert (await anon.get("/healthz")).status_code == 401
    assert (await anon.get("/livez")).json() == {"status": "ok"}
    await anon.aclose()

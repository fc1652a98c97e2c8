"""The SDK (``dockyard.client``) against the real server and engine: what a user of
``Dockyard`` / ``AsyncDockyard`` sees, end to end."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.client import (
    STDERR,
    STDOUT,
    AsyncDockyard,
    Conflict,
    Dockyard,
    InvalidState,
    NotFound,
    Terminal,
    Unauthorized,
    ValidationFailed,
)
from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.registry import REGISTRY, REGISTRY_PASS, REGISTRY_USER, require_registry
from tests.server import ServeFactory, Server


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One server for the module: each test makes its own containers, keys and accounts
    (the 429 test has its own, with a setting)."""
    return module_server


@pytest.fixture
def dy(server: Server) -> Iterator[Dockyard]:
    with Dockyard(server.url, auth=ADMIN) as client:
        yield client


async def test_a_container_from_create_to_delete(server: Server, tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "data").mkdir(parents=True)
    (app / "hello.sh").write_text("echo hello from $CONTAINER_UID; echo oops >&2; exit 3\n")
    blob = os.urandom(200_000)
    (app / "data" / "blob.bin").write_bytes(blob)
    async with AsyncDockyard(server.url, auth=ADMIN) as dy:
        box = await dy.containers.create(BUSYBOX, command="sh -c 'echo booted; sleep 600'")
        assert box.status == "created"
        uploaded = await dy.files.upload(box.cuid, app)
        script = (app / "hello.sh").stat().st_size
        assert (uploaded.files, uploaded.bytes) == (2, len(blob) + script)
        assert (await dy.containers.start(box.cuid)).status == "running"

        async with dy.terminal(box.cuid, cmd="sh /app/hello.sh", tty=False) as term:
            chunks = [chunk async for chunk in term]
        assert term.binary and term.exit_code == 3
        out = b"".join(data for channel, data in chunks if channel == STDOUT)
        err = b"".join(data for channel, data in chunks if channel == STDERR)
        assert out == f"hello from {box.cuid}\n".encode() and err == b"oops\n"

        async with dy.terminal(box.cuid, cmd="head -c 5", tty=False) as term:
            await term.send("ab")
            await term.send(b"\xff\x00\x01")
            echoed = b"".join([data async for _, data in term])
        assert echoed == b"ab\xff\x00\x01" and term.exit_code == 0

        assert await dy.files.download(box.cuid, "data/blob.bin") == blob
        seen: list[tuple[int, int | None]] = []
        dest = await dy.files.download_zip(
            box.cuid, "/app", tmp_path / "app.zip", progress=lambda d, t: seen.append((d, t))
        )
        with zipfile.ZipFile(dest) as zf:
            assert zf.read("data/blob.bin") == blob
        assert seen and seen[-1][0] == dest.stat().st_size

        lines = [line async for line in dy.logs(box.cuid)]
        assert "booted" in lines

        before = time.time() - 1
        await dy.containers.stop(box.cuid)
        types = [e.type async for e in dy.events(cuid=box.cuid, page_size=2)]
        assert {"container.created", "start", "container.action"} <= set(types)
        follow = dy.events(follow=True, cuid=box.cuid, since=str(before))
        stopped = [await anext(follow) for _ in range(2)]
        await follow.aclose()
        assert "die" in {e.type for e in stopped} | {e.type async for e in dy.events(cuid=box.cuid)}

        await dy.containers.delete(box.cuid)
        with pytest.raises(NotFound) as missing:
            await dy.containers.get(box.cuid)
    assert missing.value.code == "CONTAINER_NOT_FOUND" and missing.value.request_id


def test_errors_are_typed_and_carry_the_request_id(server: Server, dy: Dockyard) -> None:
    with pytest.raises(ValidationFailed) as bad:
        dy.containers.create(BUSYBOX, privileged=True)
    assert bad.value.status == 400 and bad.value.request_id
    box = dy.containers.create(BUSYBOX, command="sleep 600")
    with pytest.raises(InvalidState) as state:
        dy.containers.pause(box.cuid)
    assert state.value.code == "INVALID_TRANSITION" and state.value.details["action"] == "pause"
    with Dockyard(server.url, auth=("admin", "wrong-password")) as wrong:
        with pytest.raises(Unauthorized) as denied:
            wrong.containers.get(box.cuid)
    assert denied.value.code == "INVALID_CREDENTIALS"
    # the request id is the one of the answer, as the server logged it
    logged = (server.workdir / "logs" / "actions.jsonl").read_text()
    assert f'"request_id": "{state.value.request_id}"' in logged.replace('":"', '": "')


def test_list_goes_through_every_page(dy: Dockyard) -> None:
    tag = f"sdk-{uuid.uuid4().hex[:8]}"
    made = [dy.containers.create(BUSYBOX, command="sleep 600", tags=[tag]).cuid for _ in range(5)]
    listed = dy.containers.list(tag=tag, page_size=2)
    assert [c.cuid for c in listed] == made[::-1]  # newest first, over three pages
    assert [c.cuid for c in dy.containers.list(tag="no-such-tag")] == []


def test_keys_tokens_and_accounts(server: Server, dy: Dockyard) -> None:
    key = dy.keys.create(description="sdk test")
    with Dockyard(server.url, auth=key.key) as by_key:
        assert by_key.whoami().username == "admin"
    assert key.id in [k.id for k in dy.keys.list()]
    dy.keys.delete(key.id)
    with Dockyard(server.url, auth=key.key) as revoked, pytest.raises(Unauthorized):
        revoked.whoami()
    dy.accounts.create("sdk-user", "sdk-user-password", role="viewer")
    assert "sdk-user" in [a.username for a in dy.accounts.list()]
    with Dockyard(server.url, auth=("sdk-user", "sdk-user-password")) as viewer:
        assert viewer.accounts.me().role == "viewer"
    dy.accounts.delete("sdk-user")


def test_images_and_a_build_with_its_log(dy: Dockyard) -> None:
    assert BUSYBOX in dy.images.get(BUSYBOX).tags
    assert any(BUSYBOX in image.tags for image in dy.images.list(tag="busybox"))
    tag = f"dockyard-e2e/sdk-{uuid.uuid4().hex[:8]}:1"
    try:
        job = dy.builds.create(dockerfile=f"FROM {BUSYBOX}\nRUN echo built-by-sdk\n", tags=[tag])
        log = list(dy.builds.logs(job.job_id, follow=True))
        assert any("built-by-sdk" in line for line in log)
        assert dy.builds.wait(job.job_id).status == "succeeded"
        dy.images.delete(tag)
        with pytest.raises(NotFound):
            dy.images.get(tag)
    finally:
        docker("rmi", "-f", tag, check=False)


def test_a_build_is_followed_step_by_step(dy: Dockyard) -> None:
    tag = f"dockyard-e2e/sdk-steps-{uuid.uuid4().hex[:8]}:1"
    dockerfile = f"FROM {BUSYBOX}\nRUN echo one-{tag}\nRUN echo two\n"
    try:
        job = dy.builds.create(dockerfile=dockerfile, tags=[tag])
        lines = list(dy.builds.follow(job.job_id))
        starts = [(ln.step, ln.total_steps) for ln in lines if ln.starts_step]
        assert starts == [(1, 3), (2, 3), (3, 3)]
        echoed = next(ln for ln in lines if ln.text == f"one-{tag}")
        assert (echoed.step, echoed.total_steps) == (2, 3)
        seen = list(dy.builds.watch(job.job_id, interval=0.1))
        assert seen[-1].status == "succeeded" and seen[-1].step == 3
        assert seen[-1].total_steps == 3 and tag in seen[-1].tags
    finally:
        docker("rmi", "-f", tag, check=False)


def test_a_pull_is_followed_to_its_end_with_its_layers(dy: Dockyard) -> None:
    require_registry()
    image = f"{REGISTRY}/dockyard-e2e/sdk-pull-{uuid.uuid4().hex[:8]}:1"
    auth = {"server": REGISTRY, "username": REGISTRY_USER, "password": REGISTRY_PASS}
    try:
        dockerfile = f"FROM {BUSYBOX}\nRUN echo pulled > /p\n"
        pushed = dy.builds.create(dockerfile=dockerfile, tags=[image], push=True, auth=auth)
        assert dy.builds.wait(pushed.job_id).status == "succeeded"
        with contextlib.suppress(Conflict):  # the pull finds the credential by its host
            dy.http.request("POST", "/registries", json=auth)
        docker("rmi", image)
        job = dy.images.pull(image)
        lines = [ln.text for ln in dy.builds.follow(job.job_id)]
        assert lines[0] == f"Pulling {image}"
        assert lines[-1].startswith(f"Pulled {image} (sha256:")
        final = list(dy.builds.watch(job.job_id, interval=0.1))[-1]
        assert final.status == "succeeded" and final.kind == "pull"
        assert final.progress and all("status" in layer for layer in final.progress.values())
        assert image in dy.images.get(image).tags
    finally:
        docker("rmi", "-f", image, check=False)


def test_a_429_is_retried_after_its_retry_after(serve: ServeFactory) -> None:
    """A real 429: one log follow per container is allowed, a second is refused with
    Retry-After: 5; the SDK waits and retries, and gets in once the first one is gone."""
    server = serve(log_follow_per_container=1)
    actions = server.workdir / "logs" / "actions.jsonl"
    with Dockyard(server.url, auth=ADMIN) as dy:
        box = dy.containers.create(BUSYBOX, command="sh -c 'echo ready; sleep 600'", start=True)
        url = f"{server.url}/containers/{box.cuid}/logs"
        first = httpx.stream("GET", url, params={"follow": "true"}, headers=basic(*ADMIN))
        first_response = first.__enter__()
        assert first_response.status_code == 200

        def refused_once() -> bool:
            return any(
                json.loads(line).get("status") == 429 for line in actions.read_text().splitlines()
            )

        def free_the_slot() -> None:
            wait_for(refused_once, what="the second follow refused with 429")
            first.__exit__(None, None, None)

        closer = threading.Thread(target=free_the_slot)
        closer.start()
        started = time.monotonic()
        lines = dy.logs(box.cuid, follow=True)
        assert next(lines) == "ready"
        waited = time.monotonic() - started
        lines.close()
        closer.join()
    assert waited >= 4.5  # the server said Retry-After: 5


async def test_terminal_resize_signal_detach_and_refusal(server: Server) -> None:
    async with AsyncDockyard(server.url, auth=ADMIN) as dy:
        box = await dy.containers.create(BUSYBOX, start=True)  # sh as PID 1, on a TTY

        async def until(term: Terminal, text: str) -> None:
            seen = b""
            async for _, data in term:
                seen += data
                if text.encode() in seen:
                    return
            raise AssertionError(f"{text!r} never came: {seen[-300:]!r}")

        async with dy.terminal(box.cuid, cmd="sh", cols=100, rows=30) as term:
            await term.send("stty size\n")
            await until(term, "30 100")
            await term.resize(120, 40)
            await term.send("stty size\n")
            await until(term, "40 120")
            await term.send("sleep 300\n")
            await term.signal("KILL")
            assert await term.wait() == 137

        async with dy.terminal(box.cuid) as attached:  # the main process
            await attached.send("echo attached-$((6*7))\n")
            await until(attached, "attached-42")
            await attached.close()
            assert await attached.wait() is None and attached.detached
        assert (await dy.containers.get(box.cuid)).status == "running"

        await dy.containers.stop(box.cuid)
        with pytest.raises(InvalidState) as refused:
            async with dy.terminal(box.cuid) as term:
                await term.wait()
        assert refused.value.code == "NOT_RUNNING" and refused.value.request_id

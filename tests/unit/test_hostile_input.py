"""Hostile create and PATCH bodies (issue 9, #11): each is refused with a 4xx in the
SPEC §9 shape, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, FakeWorld, basic

SPEC9 = {"error", "code", "message", "status", "request_id", "timestamp", "details"}


async def _count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/containers", params={"limit": 500})).json()["containers"])


async def refused(client: httpx.AsyncClient, body: Any, status: int = 400) -> dict[str, Any]:
    before = await _count(client)
    resp = await client.post("/containers", json=body)
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()
    assert SPEC9 <= set(error) and error["status"] == status
    assert await _count(client) == before
    return error


@pytest.mark.parametrize(
    "body",
    [
        {"image": "busybox:test", "name": "web\n"},
        {"image": "busybox:test\n"},
        {"image": "busybox:test", "env": {"KEY\n": "v"}},
        {"image": "busybox:test", "labels": {"team\n": "a"}},
        {"image": "busybox@sha256:zzzz"},
        {"image": "busybox@sha256:abc"},
    ],
)
async def test_a_trailing_newline_or_a_bad_digest_is_refused(
    fake_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    error = await refused(fake_client, body)
    assert error["error"] == "validation_error"


async def test_env_and_labels_have_limits(fake_client: httpx.AsyncClient) -> None:
    many = {f"K{i}": "v" for i in range(10_000)}
    assert "512" in (await refused(fake_client, {"image": "busybox:test", "env": many}))["message"]
    big = {"K": "x" * (300 * 1024)}
    assert "KiB" in (await refused(fake_client, {"image": "busybox:test", "env": big}))["message"]
    labels = {f"l{i}": "v" for i in range(1000)}
    await refused(fake_client, {"image": "busybox:test", "labels": labels})


async def test_nan_and_infinity_are_refused(fake_client: httpx.AsyncClient) -> None:
    for raw in (
        b'{"image": "busybox:test", "resources": {"cpus": NaN}}',
        b'{"image": "busybox:test", "resources": {"cpus": Infinity}}',
    ):
        resp = await fake_client.post(
            "/containers", content=raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "validation_error"


@pytest.mark.parametrize("port", [22, 80, 1023, 2375, 2376, 8080])
async def test_reserved_host_ports_are_never_published(
    fake_client: httpx.AsyncClient, port: int
) -> None:
    """Below 1024, the engine's ports and the service's own (8080 in the test settings)."""
    error = await refused(
        fake_client, {"image": "busybox:test", "ports": [{"host": port, "container": 80}]}
    )
    assert error["code"] == "PORT_NOT_ALLOWED" and error["details"]["provided"] == port
    made = await fake_client.post("/containers", json={"image": "busybox:test"})
    cuid = made.json()["cuid"]
    resp = await fake_client.patch(
        f"/containers/{cuid}/ports", json={"ports": [{"host": port, "container": 80}]}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "PORT_NOT_ALLOWED"
    assert (await fake_client.get(f"/containers/{cuid}")).json()["ports"] == []


async def test_a_container_without_resources_gets_the_default_limits(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    made = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    assert made["resources"] == {"cpus": 1.0, "memory": "512m", "pids": 256}
    service = fake_world.compose.documents[made["cuid"]]["services"]["app"]
    assert (service["cpus"], service["mem_limit"], service["pids_limit"]) == (1.0, "512m", 256)
    # A PATCH that removes a limit gets the default back, never "unlimited".
    resp = await fake_client.patch(
        f"/containers/{made['cuid']}", json={"resources": {"memory": None, "cpus": 0.5}}
    )
    assert resp.json()["resources"] == {"cpus": 0.5, "memory": "512m", "pids": 256}


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
@pytest.mark.parametrize("path", ["/containers", "/accounts"])
async def test_a_body_that_is_not_json_is_415(
    fake_client: httpx.AsyncClient, content_type: str, path: str
) -> None:
    before = await _count(fake_client)
    resp = await fake_client.post(
        path, content=b'{"image": "busybox:test"}', headers={"Content-Type": content_type}
    )
    assert resp.status_code == 415, resp.text
    error = resp.json()
    assert SPEC9 <= set(error) and error["error"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    assert await _count(fake_client) == before


async def test_a_body_without_content_type_is_read_as_json(
    fake_client: httpx.AsyncClient,
) -> None:
    resp = await fake_client.post("/containers", content=b'{"image": "busybox:test"}')
    assert resp.status_code == 201, resp.text


async def test_a_json_body_over_the_limit_is_413_unread(fake_client: httpx.AsyncClient) -> None:
    big = b'{"image": "busybox:test", "env": {"A": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    resp = await fake_client.post(
        "/containers", content=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["code"] == "BODY_TOO_LARGE"

    async def chunks() -> Any:
        for _ in range(3):
            yield b" " * (512 * 1024)

    resp = await fake_client.post(
        "/containers", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["code"] == "BODY_TOO_LARGE"


async def test_a_full_disk_is_507_and_nothing_is_left(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    async def full(project_dir: Any, document: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fake_world.compose, "write", full)
    before = await _count(fake_client)
    error = await refused(fake_client, {"image": "busybox:test"}, status=507)
    assert error["error"] == "insufficient_storage"
    assert await _count(fake_client) == before
    assert list(fake_world.settings.containers_dir.iterdir()) == []


async def test_a_full_database_is_507(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    repo = fake_world.app.state.services.containers._repo

    async def full(record: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(repo, "insert", full)
    resp = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert resp.status_code == 507, resp.text
    assert resp.json()["error"] == "insufficient_storage" and resp.headers["x-request-id"]


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hi")
    return buffer.getvalue()


@pytest.mark.parametrize("case", ["preamble", "many-headers", "long-boundary"])
async def test_malformed_multipart_is_400_and_app_is_untouched(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient, case: str
) -> None:
    """Issue 9 #11: these were 500s."""
    cuid = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    part = b'Content-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n' + _zip()
    boundary = b"b" * 5000 if case == "long-boundary" else b"bb"
    head = b"--" + boundary + b"\r\n"
    if case == "preamble":
        head = b"x" * (8 * 1024 * 1024) + b"\r\n" + head
    if case == "many-headers":
        head += b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))
    body = head + part + b"\r\n--" + boundary + b"--\r\n"
    resp = await fake_client.post(
        f"/containers/{cuid}/upload-zip",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode()},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "INVALID_MULTIPART" and SPEC9 <= set(resp.json())
    assert list((fake_world.settings.containers_dir / cuid / "app").iterdir()) == []


async def test_booleans_are_not_numbers_and_parameters_come_once(
    fake_client: httpx.AsyncClient,
) -> None:
    """Found by schemathesis: `expires_in: true` made a token, and a repeated `tag` was
    silently reduced to its last value."""
    resp = await fake_client.post("/auth/token", json={"expires_in": True})
    assert resp.status_code == 400 and resp.json()["error"] == "validation_error"
    resp = await fake_client.post(
        "/containers", json={"image": "busybox:test", "resources": {"cpus": True}}
    )
    assert resp.status_code == 400
    resp = await fake_client.get("/containers", params=[("tag", "a"), ("tag", "b")])
    assert resp.status_code == 400 and resp.json()["code"] == "REPEATED_PARAMETER"
    assert (await fake_client.get("/containers", params={"status": "running,exited"})).is_success


async def test_host_access_lets_ports_below_1024_through_but_never_the_reserved(
    tmp_path: Path,
) -> None:
    """HOST_ACCESS=true (an admin setting) lifts the first rule only: 80 may be published,
    the engine's ports and the service's own stay refused."""
    world = FakeWorld(tmp_path, host_access=True)
    async with world.app.router.lifespan_context(world.app):
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=basic(*ADMIN)
        ) as client:
            made = await client.post(
                "/containers",
                json={"image": "busybox:test", "ports": [{"host": 80, "container": 80}]},
            )
            assert made.status_code == 201, made.text
            assert made.json()["ports"][0]["host"] == 80
            for port in (2375, 2376, world.settings.port):
                error = await refused(
                    client, {"image": "busybox:test", "ports": [{"host": port, "container": 80}]}
                )
                assert error["code"] == "PORT_NOT_ALLOWED"


async def test_timers_too_large_for_a_date_are_a_400(fake_client: httpx.AsyncClient) -> None:
    """Found by schemathesis: a ttl of 1.5e308 seconds overflowed the expiry date (500)."""
    made = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    for body in ({"ttl": 1.5e308}, {"idle_timeout": 1.3e308}):
        resp = await fake_client.patch(f"/containers/{made['cuid']}", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "INVALID_TIMER"
    error = await refused(fake_client, {"image": "busybox:test", "ttl": 1e300})
    assert error["code"] == "INVALID_TIMER"

"""Walks every error path of the API once and pins SPEC §9's error body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from dockyard.domain.models import Role
from dockyard.errors import DeadlineError, EngineError
from tests.conftest import ADMIN, FakeWorld, basic

ENVELOPE_KEYS = {"error", "code", "message", "status", "request_id", "timestamp", "details"}


def assert_error(
    resp: httpx.Response, status: int, kind: str, code: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["error"] == kind
    assert body["status"] == status
    if code:
        assert body["code"] == code
    assert body["request_id"] == resp.headers["x-request-id"]
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert isinstance(body["details"], dict)
    assert body["message"]
    return body


async def _create(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/containers", json={"image": "busybox:test", **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_every_error_path_renders_the_envelope(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    anon = httpx.AsyncClient(transport=fake_client._transport, base_url="http://test")
    await fake_world.app.state.services.auth.add_account("bob", "bob-password-1", Role.USER)
    await fake_world.app.state.services.auth.add_account("vic", "vic-password-1", Role.VIEWER)

    # 401: none, malformed, wrong password, unknown scheme
    assert_error(await anon.get("/containers"), 401, "auth_error", "AUTH_REQUIRED")
    resp = await anon.get("/containers", headers={"Authorization": "Basic !!!"})
    assert_error(resp, 401, "auth_error", "MALFORMED_CREDENTIALS")
    resp = await anon.get("/containers", headers=basic("admin", "wrong"))
    assert_error(resp, 401, "auth_error", "INVALID_CREDENTIALS")
    assert resp.headers["www-authenticate"].startswith("Basic")
    resp = await anon.get("/containers", headers={"Authorization": "Digest x"})
    assert_error(resp, 401, "auth_error", "UNSUPPORTED_SCHEME")

    # 400: missing image (the seed's own example), unknown field, host access, bad JSON
    body = assert_error(
        await fake_client.post("/containers", json={}), 400, "validation_error", "MISSING_IMAGE"
    )
    assert body["details"]["field"] == "image" and body["details"]["provided"] is None
    assert_error(
        await fake_client.post("/containers", json={"image": "busybox:test", "x": 1}),
        400,
        "validation_error",
        "UNKNOWN_FIELD",
    )
    body = assert_error(
        await fake_client.post("/containers", json={"image": "busybox:test", "privileged": True}),
        400,
        "validation_error",
        "HOST_ACCESS_DENIED",
    )
    assert body["details"]["field"] == "privileged"
    resp = await fake_client.post(
        "/containers", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(resp, 400, "validation_error", "INVALID_JSON")
    assert_error(
        await fake_client.post("/containers", json={"image": "nope:missing"}),
        400,
        "validation_error",
        "IMAGE_NOT_FOUND",
    )
    assert_error(
        await fake_client.get("/containers", params={"cursor": "garbage"}),
        400,
        "validation_error",
        "INVALID_CURSOR",
    )
    assert_error(
        await fake_client.get("/containers", params={"status": "sleepy"}),
        400,
        "validation_error",
        "INVALID_STATUS",
    )
    assert_error(
        await fake_client.get("/containers", params={"limit": 501}),
        400,
        "validation_error",
        "INVALID_LIMIT",
    )

    # 403: a viewer may read but not create
    resp = await anon.post(
        "/containers", json={"image": "busybox:test"}, headers=basic("vic", "vic-password-1")
    )
    assert_error(resp, 403, "forbidden", "PERMISSION_DENIED")

    # 404: unknown container, someone else's container, unknown route; 405
    container = await _create(fake_client, ports=[{"host": 18001, "container": 80}])
    cuid = container["cuid"]
    assert_error(
        await fake_client.get("/containers/c00000000-0000-4000-8000-000000000000"),
        404,
        "not_found",
        "CONTAINER_NOT_FOUND",
    )
    resp = await anon.get(f"/containers/{cuid}", headers=basic("bob", "bob-password-1"))
    assert_error(resp, 404, "not_found", "CONTAINER_NOT_FOUND")
    assert_error(await fake_client.get("/nowhere"), 404, "not_found", "ROUTE_NOT_FOUND")
    assert_error(
        await fake_client.put("/containers"), 405, "method_not_allowed", "METHOD_NOT_ALLOWED"
    )

    # 409: a host port another container holds
    resp = await fake_client.post(
        "/containers", json={"image": "busybox:test", "ports": [{"host": 18001, "container": 81}]}
    )
    assert_error(resp, 409, "conflict", "PORT_IN_USE")

    # 422: an impossible transition
    assert_error(
        await fake_client.post(f"/containers/{cuid}/pause"),
        422,
        "state_error",
        "INVALID_TRANSITION",
    )

    # 500 compose_error, 408 timeout, 502 engine_error: failures below us
    fake_world.compose.fail_next = "Error response from daemon: boom"
    body = assert_error(
        await fake_client.post(f"/containers/{cuid}/start"), 500, "compose_error", "COMPOSE_FAILED"
    )

    async def slow(*_: Any) -> None:
        raise DeadlineError("docker compose up did not finish", code="COMPOSE_TIMEOUT")

    original_up = fake_world.compose.up
    fake_world.compose.up = slow  # type: ignore[method-assign]
    assert_error(
        await fake_client.post(f"/containers/{cuid}/start"), 408, "timeout", "COMPOSE_TIMEOUT"
    )
    fake_world.compose.up = original_up  # type: ignore[method-assign]

    async def broken(*_: Any) -> bool:
        raise EngineError("the engine refused")

    fake_world.engine.image_exists = broken  # type: ignore[method-assign]
    assert_error(
        await fake_client.post("/containers", json={"image": "busybox:test"}),
        502,
        "engine_error",
        "ENGINE_FAILED",
    )

    # 500 for an unexpected bug: no text of it leaks, the request id is quoted
    async def bug(*_: Any) -> bool:
        raise RuntimeError("secret internals")

    fake_world.engine.image_exists = bug  # type: ignore[method-assign]
    body = assert_error(
        await fake_client.post("/containers", json={"image": "busybox:test"}),
        500,
        "internal_error",
        "INTERNAL",
    )
    assert "secret internals" not in body["message"]
    assert body["request_id"] in body["message"]

    # 429: too many failed logins from one source
    for _ in range(12):
        resp = await anon.get("/containers", headers=basic("admin", "wrong-again"))
    body = assert_error(resp, 429, "rate_limited", "RATE_LIMITED")
    assert int(resp.headers["retry-after"]) >= 1
    await anon.aclose()


async def test_client_request_id_is_kept(fake_client: httpx.AsyncClient) -> None:
    resp = await fake_client.get("/containers/cnope", headers={"X-Request-ID": "my-trace-42"})
    assert resp.headers["x-request-id"] == "my-trace-42"
    assert resp.json()["request_id"] == "my-trace-42"
    ok = await fake_client.get("/livez")
    assert ok.headers["x-request-id"]


@pytest.mark.parametrize("dev_mode", [True, False])
async def test_stacktrace_only_in_dev_mode(tmp_path: Any, dev_mode: bool) -> None:
    world = FakeWorld(tmp_path)
    world.settings.dev_mode = dev_mode
    async with world.app.router.lifespan_context(world.app):
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=basic(*ADMIN)
        ) as client:
            resp = await client.post("/containers", json={})
    assert ("stacktrace" in resp.json()) is dev_mode


async def test_only_livez_is_open(fake_world: FakeWorld, fake_client: httpx.AsyncClient) -> None:
    """Deny by default: every route but /livez refuses a request without credentials."""
    anon = httpx.AsyncClient(transport=fake_client._transport, base_url="http://test")
    schema = fake_world.app.openapi()
    routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]
    routes += [("GET", "/openapi.json"), ("GET", "/docs")]
    assert len(routes) > 15
    open_routes = []
    for method, path in routes:
        resp = await anon.request(
            method, path.replace("{cuid}", "c00000000-0000-4000-8000-000000000000")
        )
        if resp.status_code != 401:
            open_routes.append((method, path))
    assert open_routes == [("GET", "/livez")]
    assert (await fake_client.get("/openapi.json")).json()["info"]["title"] == "Dockyard"
    assert "swagger" in (await fake_client.get("/docs")).text.lower()
    me = (await fake_client.get("/auth/whoami")).json()
    assert (me["username"], me["role"], me["credential"]) == ("admin", "admin", "basic")
    assert "accounts:manage" in me["permissions"]
    await anon.aclose()

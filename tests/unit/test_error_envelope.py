"""Walks every error path of the API once and pins SPEC §9's error body."""

from __future__ import annotations

import asyncio
import json
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

    # 400: what the engine refuses for the request's content is the client's to fix
    fake_world.compose.fail_next = "Error response from daemon: No command specified"
    body = assert_error(
        await fake_client.post(f"/containers/{cuid}/start"), 400, "validation_error", "NO_COMMAND"
    )
    assert body["details"]["field"] == "command" and '"command"' in body["message"]

    # 500 compose_error, 408 timeout, 502 engine_error, 503 unavailable: failures below us
    fake_world.compose.fail_next = "Error response from daemon: boom"
    body = assert_error(
        await fake_client.post(f"/containers/{cuid}/start"), 500, "compose_error", "COMPOSE_FAILED"
    )
    fake_world.compose.fail_next = (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?"
    )
    resp = await fake_client.post(f"/containers/{cuid}/start")
    assert_error(resp, 503, "unavailable", "ENGINE_UNAVAILABLE")
    assert int(resp.headers["retry-after"]) >= 1

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
    """Deny by default: every route but /livez refuses a request without credentials
    (and the hub webhook, whose key in the path is its credential: a wrong one is 404)."""
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
    assert open_routes == [("GET", "/livez"), ("POST", "/hub/webhook/{key}")]
    assert (await fake_client.get("/openapi.json")).json()["info"]["title"] == "Dockyard"
    assert "swagger" in (await fake_client.get("/docs")).text.lower()
    me = (await fake_client.get("/auth/whoami")).json()
    assert (me["username"], me["role"], me["credential"]) == ("admin", "admin", "basic")
    assert "accounts:manage" in me["permissions"]
    await anon.aclose()


async def test_action_log_has_the_kind_and_the_code(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    """SPEC §9: ``error`` is the kind, ``code`` the code; a success has neither."""
    anon = httpx.AsyncClient(transport=fake_client._transport, base_url="http://test")
    refused = await anon.get("/containers", headers=basic("admin", "wrong"))
    missing = await fake_client.get("/nowhere")
    ok = await fake_client.get("/containers")
    await anon.aclose()
    log = fake_world.settings.log_dir / "actions.jsonl"
    lines = {e["request_id"]: e for e in map(json.loads, log.read_text().splitlines())}
    entry = lines[refused.headers["x-request-id"]]
    assert (entry["error"], entry["code"], entry["status"]) == (
        "auth_error",
        "INVALID_CREDENTIALS",
        401,
    )
    entry = lines[missing.headers["x-request-id"]]
    assert (entry["error"], entry["code"]) == ("not_found", "ROUTE_NOT_FOUND")
    entry = lines[ok.headers["x-request-id"]]
    assert (entry["error"], entry["code"], entry["status"]) == (None, None, 200)


# -- the WebSocket terminal: refusals before accept and error frames after ------------


async def ws_exchange(app: Any, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Drive one WebSocket connection through the ASGI app; the messages it sent."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("test", 80),
        "client": ("127.0.0.1", 40000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await incoming.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close" or (
            message["type"] == "websocket.http.response.body"
            and not message.get("more_body", False)
        ):
            incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return sent


async def test_ws_refusal_before_accept_is_the_envelope(fake_world: FakeWorld) -> None:
    sent = await ws_exchange(
        fake_world.app,
        "/ws/c00000000-0000-4000-8000-000000000000",
        {"Host": "test", "Authorization": "Basic !!!"},
    )
    start, body = sent[0], sent[-1]
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    resp = httpx.Response(401, headers=headers, content=body["body"])
    assert_error(resp, 401, "auth_error", "MALFORMED_CREDENTIALS")
    assert headers["www-authenticate"].startswith("Basic")


async def test_ws_error_frame_carries_the_envelope(fake_world: FakeWorld) -> None:
    admin = basic(*ADMIN)
    sent = await ws_exchange(
        fake_world.app, "/ws/c00000000-0000-4000-8000-000000000000", {"Host": "test", **admin}
    )
    types = [m["type"] for m in sent]
    assert types == ["websocket.accept", "websocket.send", "websocket.close"]
    frame = json.loads(sent[1]["text"])
    assert frame["type"] == "error"
    body = frame["error"]
    assert set(body) == ENVELOPE_KEYS
    assert (body["error"], body["code"]) == ("not_found", "CONTAINER_NOT_FOUND")
    assert body["status"] == 404
    assert body["request_id"] and datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert sent[2]["code"] == 1008

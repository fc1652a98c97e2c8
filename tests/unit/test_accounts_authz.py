"""Deny by default: every route names a permission, refuses a role without it (403), and
another account's resources answer 404 (issue 5)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocket

from dockyard.api.authz import AUTHENTICATED, OPEN_ROUTES, ROUTE_PERMISSIONS
from dockyard.api.deps import PrincipalDep, get_ws_principal
from dockyard.domain.access.permissions import Permission
from dockyard.errors import AuthError, ForbiddenError
from tests.conftest import FakeWorld, basic

NOBODY_CUID = "c00000000-0000-4000-8000-000000000000"


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, template) the application answers, WebSockets as ``WS``."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            inner = getattr(getattr(route, "original_router", None), "routes", None)
            if inner is not None:  # FastAPI's included router
                walk(inner)
                continue
            path = getattr(route, "path", None)
            if path is None:
                continue
            methods = getattr(route, "methods", None)
            if methods is None:
                found.add(("WS", path))
            else:
                found.update((m, path) for m in methods if m != "HEAD")

    walk(list(app.router.routes))
    return found


def sample_body(method: str, path: str, role: str) -> dict[str, Any] | None:
    """A valid body for each route that takes one (the checks under test come after
    body validation for ownership, before it for permissions)."""
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/containers"): {"image": "busybox:test"},
        ("PATCH", "/containers/{cuid}"): {"tags": ["x"]},
        ("PATCH", "/containers/{cuid}/ports"): {"ports": []},
        ("POST", "/accounts"): {"username": "newbie", "password": "newbie-password", "role": role},
        ("PATCH", "/accounts/{username}"): {"quota": {"max_containers": 3}},
        ("PUT", "/accounts/me/password"): {
            "current_password": "wrong-password",
            "new_password": "another-password",
        },
        ("POST", "/roles"): {"name": "fresh", "permissions": []},
        ("PATCH", "/roles/{name}"): {"description": "x"},
        ("POST", "/servicekeys"): {"description": "k", "role": role},
        ("DELETE", "/servicekeys"): {"key": "dyk_unknown"},
        ("POST", "/auth/token"): {},
    }
    return bodies.get((method, path))


def fill(path: str, cuid: str = NOBODY_CUID) -> str:
    return (
        path.replace("{cuid}", cuid)
        .replace("{username}", "nobody")
        .replace("{name}", "nothing")
        .replace("{key_id}", "0000000000000000")
        .replace("{token_id}", "000000000000000000000000")
    )


async def make_role(
    client: httpx.AsyncClient, name: str, permissions: set[Permission]
) -> httpx.AsyncClient:
    """A custom role and an account holding it; returns a client for that account."""
    resp = await client.post(
        "/roles", json={"name": name, "permissions": sorted(p.value for p in permissions)}
    )
    assert resp.status_code == 201, resp.text
    resp = await client.post(
        "/accounts", json={"username": name, "password": f"{name}-password", "role": name}
    )
    assert resp.status_code == 201, resp.text
    return httpx.AsyncClient(
        transport=client._transport,
        base_url="http://test",
        headers=basic(name, f"{name}-password"),
    )


def test_the_table_and_the_app_have_the_same_routes(fake_world: FakeWorld) -> None:
    routes = app_routes(fake_world.app)
    assert OPEN_ROUTES <= routes
    assert routes - OPEN_ROUTES == set(ROUTE_PERMISSIONS), (
        "undeclared:",
        sorted(routes - OPEN_ROUTES - set(ROUTE_PERMISSIONS)),
        "stale:",
        sorted(set(ROUTE_PERMISSIONS) - routes),
    )


async def test_every_route_refuses_a_role_without_its_permission(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    http_routes = sorted(k for k in ROUTE_PERMISSIONS if k[0] != "WS")
    needed = {p for k, p in ROUTE_PERMISSIONS.items() if p is not AUTHENTICATED}
    assert len(needed) >= 10
    nothing = await make_role(fake_client, "nothing", set())
    clients = {
        p: await make_role(fake_client, f"all-but-{i}", set(Permission) - {p})
        for i, p in enumerate(sorted(needed))
    }
    only = {p: await make_role(fake_client, f"only-{i}", {p}) for i, p in enumerate(sorted(needed))}
    checked = 0
    for method, path in http_routes:
        permission = ROUTE_PERMISSIONS[(method, path)]
        body = sample_body(method, path, "nothing")
        resp = await nothing.request(method, fill(path), json=body)
        if permission is AUTHENTICATED:
            assert resp.status_code != 403, (method, path, resp.text)
            continue
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["details"]["permission"] == permission.value
        # Everything but that one permission is not enough ...
        resp = await clients[permission].request(method, fill(path), json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["code"] == "PERMISSION_DENIED"
        assert resp.json()["details"]["permission"] == permission.value, (method, path)
        # ... and that one permission alone gets past the check.
        own_role = f"only-{sorted(needed).index(permission)}"
        resp = await only[permission].request(
            method, fill(path), json=sample_body(method, path, own_role)
        )
        assert resp.status_code != 403, (method, path, resp.text)
        checked += 1
    assert checked >= 25
    for client in [nothing, *clients.values(), *only.values()]:
        await client.aclose()


async def test_an_undeclared_route_is_refused_to_everybody(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    @fake_world.app.get("/undeclared")
    async def undeclared(principal: PrincipalDep) -> dict[str, str]:
        return {"ok": "no"}

    resp = await fake_client.get("/undeclared")
    assert resp.status_code == 403
    assert resp.json()["code"] == "PERMISSION_UNDECLARED"


async def test_another_users_resources_answer_404(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    for name in ("alice", "bob"):
        resp = await fake_client.post(
            "/accounts", json={"username": name, "password": f"{name}-password", "role": "user"}
        )
        assert resp.status_code == 201
    alice = httpx.AsyncClient(
        transport=fake_client._transport,
        base_url="http://t",
        headers=basic("alice", "alice-password"),
    )
    bob = httpx.AsyncClient(
        transport=fake_client._transport, base_url="http://t", headers=basic("bob", "bob-password")
    )
    cuid = (await alice.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    key_id = (await alice.post("/servicekeys", json={})).json()["id"]
    token_id = (await alice.post("/auth/token")).json()["id"]

    with_cuid = sorted(k for k in ROUTE_PERMISSIONS if "{cuid}" in k[1] and k[0] != "WS")
    assert len(with_cuid) >= 15
    for method, path in with_cuid:
        body = sample_body(method, path, "user")
        resp = await bob.request(method, fill(path, cuid), json=body)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["code"] == "CONTAINER_NOT_FOUND"
        # The same answer as for a container that does not exist at all.
        missing = await bob.request(method, fill(path), json=body)
        assert missing.status_code == 404
    assert (await bob.get("/containers")).json()["containers"] == []
    assert (await bob.delete(f"/servicekeys/{key_id}")).status_code == 404
    assert (await bob.delete(f"/auth/tokens/{token_id}")).status_code == 404
    assert (await bob.get("/servicekeys", params={"owner": "alice"})).json()["servicekeys"] == []
    # The admin sees (and may act on) everyone's.
    assert (await fake_client.get(f"/containers/{cuid}")).status_code == 200
    assert (await fake_client.delete(f"/servicekeys/{key_id}")).status_code == 204
    assert (await fake_client.delete(f"/auth/tokens/{token_id}")).status_code == 204
    await alice.aclose()
    await bob.aclose()


# -- WebSockets: get_ws_principal ------------------------------------------------------


def ws_scope(
    world: FakeWorld,
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    route: str = "/ws/{cuid}",
) -> WebSocket:
    class Route:
        path = route

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "websocket",
        "path": "/ws/" + NOBODY_CUID,
        "headers": raw,
        "query_string": query.encode(),
        "client": ("127.0.0.1", 5555),
        "app": world.app,
        "route": Route(),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        raise AssertionError("nothing may be read before the principal is known")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing may be sent before the principal is known")

    return WebSocket(scope, receive, send)


async def test_ws_principal_takes_headers_and_single_use_tickets(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    admin = basic("admin", "admin-secret-pass")
    principal = await get_ws_principal(ws_scope(fake_world, headers={**admin, "Host": "h:1"}))
    assert principal.username == "admin" and principal.via == "basic"

    key = (await fake_client.post("/servicekeys", json={})).json()["key"]
    principal = await get_ws_principal(ws_scope(fake_world, headers={"X-Service-Key": key}))
    assert principal.via == "key"
    token = (await fake_client.post("/auth/token")).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await get_ws_principal(ws_scope(fake_world, headers=bearer))).via == "token"

    ticket = (await fake_client.post("/auth/ws-ticket")).json()["ticket"]
    principal = await get_ws_principal(ws_scope(fake_world, query=f"ticket={ticket}"))
    assert principal.username == "admin" and principal.via == "ticket"
    with pytest.raises(AuthError) as err:  # single use
        await get_ws_principal(ws_scope(fake_world, query=f"ticket={ticket}"))
    assert err.value.code == "INVALID_TICKET"

    fake_world.app.state.services.auth.tickets.ttl = 0.0  # born expired
    ticket = (await fake_client.post("/auth/ws-ticket")).json()["ticket"]
    with pytest.raises(AuthError):
        await get_ws_principal(ws_scope(fake_world, query=f"ticket={ticket}"))

    with pytest.raises(AuthError) as err:
        await get_ws_principal(ws_scope(fake_world))
    assert err.value.code == "AUTH_REQUIRED"


async def test_ws_origin_must_be_the_services_own(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    admin = basic("admin", "admin-secret-pass")
    for origin, host in (
        ("http://dock.example:8080", "dock.example:8080"),
        ("https://Dock.Example", "dock.example:443"),
        ("http://127.0.0.1", "127.0.0.1"),
    ):
        headers = {**admin, "Origin": origin, "Host": host}
        assert (await get_ws_principal(ws_scope(fake_world, headers=headers))).is_admin
    for origin, host in (
        ("http://evil.example", "dock.example"),
        ("http://dock.example:8081", "dock.example:8080"),
        ("null", "dock.example"),
        ("https://dock.example", "dock.example:80"),
    ):
        headers = {**admin, "Origin": origin, "Host": host}
        with pytest.raises(ForbiddenError) as err:
            await get_ws_principal(ws_scope(fake_world, headers=headers))
        assert err.value.code == "ORIGIN_DENIED", (origin, host)
    # WS_ALLOWED_ORIGINS adds more.
    fake_world.settings.ws_allowed_origins = "https://ui.example"
    headers = {**admin, "Origin": "https://ui.example", "Host": "dock.example"}
    assert (await get_ws_principal(ws_scope(fake_world, headers=headers))).is_admin


async def test_ws_needs_the_exec_permission(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    resp = await fake_client.post(
        "/accounts", json={"username": "vic", "password": "vic-password", "role": "viewer"}
    )
    assert resp.status_code == 201
    token = base64.b64encode(b"vic:vic-password").decode()
    with pytest.raises(ForbiddenError) as err:
        await get_ws_principal(ws_scope(fake_world, headers={"Authorization": f"Basic {token}"}))
    assert err.value.details["permission"] == "containers:exec"
    with pytest.raises(ForbiddenError) as err:  # an undeclared WebSocket route
        await get_ws_principal(
            ws_scope(fake_world, headers=basic("admin", "admin-secret-pass"), route="/ws/other")
        )
    assert err.value.code == "PERMISSION_UNDECLARED"

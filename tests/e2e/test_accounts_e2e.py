"""Issue 5's "done means", tried as a new user would, against the real server and engine:
an admin makes a `user` and a custom "operator" role (start and stop, not create or
delete); each acts through Basic, a service key and a token; each sees only its own
containers; the operator's delete is refused; the audit shows every step; Shipyard-style
service keys work; no password, key or token reaches a log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, project_containers
from tests.server import Server

ALICE = ("alice", "alice-password-3b9e7d")
OLGA = ("olga", "olga-password-5c1a2f")


class Actor:
    """One account, with a client per credential: Basic, service key, bearer token."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        self.name = user
        self.password = password
        self.basic = httpx.Client(base_url=url, headers=basic(user, password), timeout=120)
        self.key: httpx.Client | None = None
        self.token: httpx.Client | None = None
        self.secrets: list[str] = [password]

    def get_credentials(self) -> None:
        resp = self.basic.post("/servicekeys", json={"description": f"{self.name}'s ci"})
        assert resp.status_code == 201, resp.text
        key = resp.json()["key"]
        self.key_id = resp.json()["id"]
        resp = self.basic.post("/auth/token", json={"expires_in": 600})
        assert resp.status_code == 201, resp.text
        token = resp.json()["token"]
        self.token_id = resp.json()["id"]
        self.secrets += [key, token]
        self.key = httpx.Client(base_url=self.url, headers={"X-Service-Key": key}, timeout=120)
        self.token = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    @property
    def clients(self) -> dict[str, httpx.Client]:
        assert self.key is not None and self.token is not None
        return {"basic": self.basic, "key": self.key, "token": self.token}

    def visible(self, via: httpx.Client) -> set[str]:
        resp = via.get("/containers")
        assert resp.status_code == 200, resp.text
        return {c["cuid"] for c in resp.json()["containers"]}

    def close(self) -> None:
        for client in (self.basic, self.key, self.token):
            if client is not None:
                client.close()


def act(client: httpx.Client, cuid: str, action: str, expected: str) -> None:
    resp = client.post(f"/containers/{cuid}/{action}")
    assert resp.status_code == 200, (action, resp.text)
    assert resp.json()["status"] == expected


def test_done_means_walk(server: Server, tmp_path: Path) -> None:
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    made: list[str] = []
    try:
        # The admin creates an operator role and two accounts.
        resp = admin.post(
            "/roles",
            json={
                "name": "operator",
                "permissions": ["containers:read", "containers:control", "keys:manage"],
                "description": "may start and stop, not create or delete",
            },
        )
        assert resp.status_code == 201, resp.text
        for name, password in (ALICE, OLGA):
            resp = admin.post(
                "/accounts", json={"username": name, "password": password, "role": "user"}
            )
            assert resp.status_code == 201, resp.text
        alice = Actor(server.url, *ALICE)
        olga = Actor(server.url, *OLGA)

        # Each creates a container while a plain user; then olga becomes an operator.
        mine = {}
        for actor in (alice, olga):
            resp = actor.basic.post("/containers", json={"image": BUSYBOX, "command": "sleep 600"})
            assert resp.status_code == 201, resp.text
            mine[actor.name] = resp.json()["cuid"]
            made.append(mine[actor.name])
        resp = admin.patch("/accounts/olga", json={"role": "operator"})
        assert resp.status_code == 200 and resp.json()["role"] == "operator"
        for actor in (alice, olga):
            actor.get_credentials()

        # Each acts through all three credentials and sees only its own containers.
        for actor in (alice, olga):
            cuid = mine[actor.name]
            act(actor.basic, cuid, "start", "running")
            act(actor.key, cuid, "stop", "exited")  # type: ignore[arg-type]
            act(actor.token, cuid, "start", "running")  # type: ignore[arg-type]
            act(actor.basic, cuid, "stop", "exited")
            for via, client in actor.clients.items():
                assert actor.visible(client) == {cuid}, (actor.name, via)
                who = client.get("/auth/whoami").json()
                assert who["username"] == actor.name and who["credential"] == via
        assert alice.basic.get(f"/containers/{mine['olga']}").status_code == 404
        assert olga.basic.get(f"/containers/{mine['alice']}").status_code == 404
        assert admin.get(f"/containers/{mine['olga']}").status_code == 200

        # The operator may neither create nor delete, whichever credential it uses.
        for via, client in olga.clients.items():
            resp = client.delete(f"/containers/{mine['olga']}")
            assert resp.status_code == 403, (via, resp.text)
            assert resp.json()["details"]["permission"] == "containers:delete"
            resp = client.post("/containers", json={"image": BUSYBOX})
            assert resp.status_code == 403, (via, resp.text)
        assert project_containers(mine["olga"]), "the refused delete removed something"

        # A user deletes its own container with its key.
        assert alice.key.delete(f"/containers/{mine['alice']}").status_code == 204  # type: ignore[union-attr]
        made.remove(mine["alice"])

        # The audit shows every step, with who, how, what, which and the outcome.
        entries = collect_audit(admin)
        steps = {
            (e["user"], e["credential"].split(":")[0], e["action"], e["resource"], e["status"])
            for e in entries
        }
        for actor in (alice, olga):
            cuid = mine[actor.name]
            assert (actor.name, "basic", "create_container", cuid, 201) in steps
            assert (actor.name, "basic", "start_container", cuid, 200) in steps
            assert (actor.name, "key", "stop_container", cuid, 200) in steps
            assert (actor.name, "token", "start_container", cuid, 200) in steps
            assert (actor.name, "basic", "create_key", actor.key_id, 201) in steps
            assert (actor.name, "basic", "issue_token", actor.token_id, 201) in steps
        for via in ("basic", "key", "token"):
            assert ("olga", via, "delete_container", mine["olga"], 403) in steps
            assert ("olga", via, "create_container", None, 403) in steps
        assert ("alice", "key", "delete_container", mine["alice"], 204) in steps
        assert ("admin", "basic", "create_role", "operator", 201) in steps
        assert ("admin", "basic", "update_account", "olga", 200) in steps
        assert all(e["method"] != "GET" for e in entries)
        olga_only = collect_audit(admin, user="olga", action="delete_container")
        assert [e["status"] for e in olga_only] == [403, 403, 403]

        # Revoking olga's key ends it at once.
        assert admin.delete(f"/servicekeys/{olga.key_id}").status_code == 204
        assert olga.key.get("/auth/whoami").status_code == 401  # type: ignore[union-attr]
        assert olga.token.get("/auth/whoami").status_code == 200  # type: ignore[union-attr]
        secrets = [*alice.secrets, *olga.secrets]
        alice.close()
        olga.close()
    finally:
        for cuid in made:
            admin.delete(f"/containers/{cuid}")
        admin.close()
    server.stop()
    assert_no_secret_logged(server, tmp_path, secrets)


def collect_audit(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 20, **({"cursor": cursor} if cursor else {})}
        resp = admin.get("/audit", params=query)
        assert resp.status_code == 200, resp.text
        entries += resp.json()["entries"]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            return entries


def test_shipyard_style_service_keys(server: Server, tmp_path: Path) -> None:
    """The seed's calls: create a key, send it as X-Service-Key, delete it by value."""
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    resp = admin.post("/servicekeys", json={"description": "test key"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["description"] == "test key" and body["key"]
    key = body["key"]
    listed = admin.get("/servicekeys").json()["servicekeys"]
    assert [k["description"] for k in listed] == ["test key"]
    assert all(key not in str(k) for k in listed)

    with_key = httpx.Client(base_url=server.url, headers={"X-Service-Key": key}, timeout=120)
    assert with_key.get("/containers").status_code == 200
    assert with_key.get("/healthz").json()["compose_version"]
    resp = admin.request("DELETE", "/servicekeys", json={"key": key})
    assert resp.status_code == 204
    resp = with_key.get("/containers")
    assert resp.status_code == 401 and resp.json()["code"] == "INVALID_CREDENTIALS"
    with_key.close()
    admin.close()
    server.stop()
    assert_no_secret_logged(server, tmp_path, [ADMIN[1], key])


def assert_no_secret_logged(server: Server, tmp_path: Path, secrets: list[str]) -> None:
    logged = [server.output, *sorted((tmp_path / "logs").rglob("*"))]
    assert (tmp_path / "logs" / "actions.jsonl").exists()
    for path in logged:
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a secret found in {path}"
    # The database keeps hashes only.
    data = tmp_path / "data"
    for name in ("dockyard.db", "dockyard.db-wal"):
        if (data / name).exists():
            raw = (data / name).read_bytes()
            for secret in secrets:
                assert secret.encode() not in raw, f"a secret found in {name}"


# -- WebSockets: tickets, Origin, revocation ---------------------------------------------


def test_websocket_tickets_origin_and_revocation(server: Server) -> None:
    asyncio.run(_websocket_walk(server))


async def _websocket_walk(server: Server) -> None:
    admin = httpx.AsyncClient(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    resp = await admin.post(
        "/containers", json={"image": BUSYBOX, "command": "sleep 600", "start": True}
    )
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    url = f"ws://127.0.0.1:{server.port}/ws/{cuid}"
    own_origin = f"http://127.0.0.1:{server.port}"
    try:
        # A browser: a ticket in the query, its own Origin.
        ticket = (await admin.post("/auth/ws-ticket")).json()["ticket"]
        async with websockets.connect(f"{url}?ticket={ticket}&cmd=sh", origin=own_origin) as ws:
            await ws.send(json.dumps({"type": "stdin", "data": "echo hi-there; exit 3\n"}))
            frames = [json.loads(m) async for m in _until_closed(ws)]
        assert any(f.get("type") == "exit" and f.get("code") == 3 for f in frames), frames

        # The ticket was single use; another site's Origin is refused whatever it sends.
        assert await _refused(f"{url}?ticket={ticket}&cmd=sh", origin=own_origin) == 401
        assert await _refused(url, origin="http://evil.example", headers=basic(*ADMIN)) == 403

        # A session through a service key ends within seconds when the key is revoked.
        resp = await admin.post("/servicekeys", json={"description": "terminal"})
        key_id, key = resp.json()["id"], resp.json()["key"]
        async with websockets.connect(
            f"{url}?cmd=sh", additional_headers={"X-Service-Key": key}
        ) as ws:
            await ws.send(json.dumps({"type": "stdin", "data": "echo ready\n"}))
            async with asyncio.timeout(10):
                while "ready" not in json.loads(await ws.recv()).get("data", ""):
                    pass
            assert (await admin.delete(f"/servicekeys/{key_id}")).status_code == 204
            async with asyncio.timeout(5):
                frames = [json.loads(m) async for m in _until_closed(ws)]
            assert ws.close_code == 1008
        errors = [f for f in frames if f.get("type") == "error"]
        assert errors and errors[-1]["error"]["code"] == "credentials_revoked", frames

        # Opening a terminal is in the audit too.
        resp = await admin.get("/audit", params={"action": "terminal"})
        entries = resp.json()["entries"]
        assert {(e["method"], e["resource"], e["credential"].split(":")[0]) for e in entries} >= {
            ("WS", cuid, "ticket"),
            ("WS", cuid, "key"),
        }
    finally:
        await admin.delete(f"/containers/{cuid}")
        await admin.aclose()


async def _until_closed(ws: Any) -> Any:
    try:
        async for message in ws:
            yield message
    except websockets.ConnectionClosed:
        return


async def _refused(url: str, **kw: Any) -> int:
    headers = kw.pop("headers", None)
    try:
        async with websockets.connect(url, additional_headers=headers, **kw):
            pass
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError("the WebSocket was accepted")

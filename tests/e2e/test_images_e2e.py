"""``/images`` and ``/registries`` through the real server and engine: who may read and
delete, 409 while a container uses an image, registry credentials that stay with their
owner and whose password appears in no answer and no log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, image_present
from tests.server import Server

SECRET = f"registry-pass-{uuid.uuid4().hex}"


class Seen:
    """Every answer a test got, to look for the secret in all of them at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[str] = []
        self.clients: list[httpx.Client] = []

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def client(self, user: str, password: str) -> httpx.Client:
        def keep(response: httpx.Response) -> None:
            response.read()
            self.bodies.append(response.text)

        client = httpx.Client(
            base_url=self.url,
            headers=basic(user, password),
            timeout=120,
            event_hooks={"response": [keep]},
        )
        self.clients.append(client)
        return client


def error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["code"] == code and body["request_id"]
    return body


def accounts(admin: httpx.Client, seen: Seen) -> dict[str, httpx.Client]:
    out = {}
    for name, role in (("amy", "user"), ("ben", "user"), ("vic", "viewer")):
        resp = admin.post(
            "/accounts", json={"username": name, "password": f"{name}-pw-123", "role": role}
        )
        assert resp.status_code == 201, resp.text
        out[name] = seen.client(name, f"{name}-pw-123")
    return out


@pytest.fixture
def seen(server: Server) -> Iterator[Seen]:
    watcher = Seen(server.url)
    try:
        yield watcher
    finally:
        watcher.close()


def test_images_read_and_delete(server: Server, seen: Seen) -> None:
    admin = seen.client(*ADMIN)
    users = accounts(admin, seen)
    amy, ben, vic = users["amy"], users["ben"], users["vic"]
    with httpx.Client(base_url=server.url) as anonymous:
        error(anonymous.get("/images"), 401, "AUTH_REQUIRED")

    listed = vic.get("/images", params={"tag": "dockyard-test/busybox"})
    assert listed.status_code == 200, listed.text
    (busybox,) = [i for i in listed.json()["images"] if BUSYBOX in i["tags"]]
    assert busybox["size"] > 0 and busybox["architecture"] and busybox["id"].startswith("sha256:")
    one = vic.get(f"/images/{BUSYBOX}")
    assert one.status_code == 200 and one.json()["id"] == busybox["id"]
    assert vic.get(f"/images/{busybox['id']}").json()["tags"] == busybox["tags"]
    error(vic.get("/images/dockyard-e2e/none:1"), 404, "IMAGE_NOT_FOUND")
    error(vic.delete(f"/images/{BUSYBOX}"), 403, "PERMISSION_DENIED")

    copy = f"dockyard-e2e/img-{uuid.uuid4().hex[:10]}:copy"
    docker("tag", BUSYBOX, copy)
    try:
        made = amy.post("/containers", json={"image": copy, "command": ["sleep", "60"]})
        assert made.status_code == 201, made.text
        assert ben.get(f"/images/{copy}").json()["containers"] == 1
        body = error(ben.delete(f"/images/{copy}"), 409, "IMAGE_IN_USE")
        assert body["details"]["containers"] == 1
        error(amy.delete(f"/images/{copy}", params={"force": "true"}), 403, "FORCE_ADMIN_ONLY")
        assert amy.delete(f"/containers/{made.json()['cuid']}").status_code == 204
        assert ben.delete(f"/images/{copy}").status_code == 204
        assert not image_present(copy) and image_present(BUSYBOX)
        error(ben.delete(f"/images/{copy}"), 404, "IMAGE_NOT_FOUND")
    finally:
        docker("rmi", copy, check=False)
    events = admin.get("/events", params={"type": "image.deleted"}).json()["events"]
    assert [e["details"]["image"] for e in events] == [copy]


def test_registries_stay_with_their_owner_and_never_show_the_password(
    server: Server, seen: Seen, tmp_path: Path
) -> None:
    admin = seen.client(*ADMIN)
    users = accounts(admin, seen)
    amy, ben, vic = users["amy"], users["ben"], users["vic"]
    body = {"server": "127.0.0.1:5000", "username": "dockyard-test", "password": SECRET}

    first = amy.post("/registries", json=body, headers={"Idempotency-Key": "reg-1"})
    assert first.status_code == 201, first.text
    made = first.json()
    assert set(made) == {"id", "server", "username", "shared", "owner", "created_at"}
    again = amy.post("/registries", json=body, headers={"Idempotency-Key": "reg-1"})
    assert again.status_code == 201 and again.json()["id"] == made["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert [r["id"] for r in amy.get("/registries").json()["registries"]] == [made["id"]]

    assert ben.get("/registries").json()["registries"] == []
    error(ben.delete(f"/registries/{made['id']}"), 404, "REGISTRY_NOT_FOUND")
    error(ben.post("/registries", json={**body, "shared": True}), 403, "SHARED_REGISTRY_ADMIN_ONLY")
    error(vic.get("/registries"), 403, "PERMISSION_DENIED")
    error(vic.post("/registries", json=body), 403, "PERMISSION_DENIED")

    shared = admin.post("/registries", json={**body, "server": "reg.example", "shared": True})
    assert shared.status_code == 201, shared.text
    assert [r["server"] for r in ben.get("/registries").json()["registries"]] == ["reg.example"]
    error(ben.delete(f"/registries/{shared.json()['id']}"), 403, "SHARED_REGISTRY_ADMIN_ONLY")

    # Refused bodies do not echo the password back either.
    error(
        amy.post("/registries", json={**body, "server": "not a host"}),
        400,
        "INVALID_REGISTRY_SERVER",
    )
    error(amy.post("/registries", json={**body, "password": 1234567890123}), 400, "INVALID_FIELD")
    # Found by schemathesis: ``0`` was taken for false (a sharing flag is a JSON boolean).
    error(amy.post("/registries", json={**body, "shared": 0}), 400, "INVALID_FIELD")
    error(amy.post("/registries", json={**body, "extra": SECRET}), 400, "UNKNOWN_FIELD")
    assert amy.delete(f"/registries/{made['id']}").status_code == 204
    error(amy.delete(f"/registries/{made['id']}"), 404, "REGISTRY_NOT_FOUND")

    server.stop()
    logs = (tmp_path / "logs" / "actions.jsonl").read_text()
    assert "/registries" in logs
    for text in [*seen.bodies, logs, server.output.read_text()]:
        assert SECRET not in text and "1234567890123" not in text
    store = (tmp_path / "data" / "dockyard.db").read_bytes()
    assert SECRET.encode() not in store

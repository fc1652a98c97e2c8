"""Seed 003 (spin-docker) end to end, as its user sees it (issue 11's "Done means"):
create from an image → ports assigned without asking → used → left alone → stopped by
itself → started again on the same port → the port kept across a Dockyard restart →
released on delete. Every automatic action is an event and an audit entry of `system`."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import local_image, wait_for
from tests.server import ServeFactory

USER = ("spin", "spin-user-pass-1")


@pytest.fixture(scope="module")
def web_image() -> Iterator[str]:
    with local_image("dockyard-test/spin-web") as ref:
        yield ref


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def _serves(url: str, text: str) -> bool:
    resp = _get(url)
    return resp is not None and resp.status_code == 200 and resp.text == text


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, text)
    return buf.getvalue()


def _system_did(admin: httpx.Client, cuid: str, action: str) -> bool:
    events = admin.get("/events", params={"cuid": cuid, "type": action}).json()["events"]
    audit = admin.get("/audit", params={"resource": cuid}).json()["entries"]
    return any(e["actor"] == "system" for e in events) and any(
        e["action"] == action and e["user"] == "system" for e in audit
    )


def _status(user: httpx.Client, cuid: str) -> Any:
    return user.get(f"/containers/{cuid}").json()["status"]


def test_spin_docker_flow(serve: ServeFactory, web_image: str) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120) as admin:
        made = admin.post(
            "/accounts", json={"username": USER[0], "password": USER[1], "role": "user"}
        )
        assert made.status_code == 201, made.text
    user = httpx.Client(base_url=server.url, headers=basic(*USER), timeout=120)
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    with user, admin:
        # Spun up: the image's port gets a host port from PORT_RANGE, with a ready URL.
        body = {"image": web_image, "publish_all": True, "idle_timeout": 4, "start": True}
        resp = user.post("/containers", json=body)
        assert resp.status_code == 201, resp.text
        created = resp.json()
        cuid = created["cuid"]
        (mapping,) = created["ports"]
        assert mapping["container"] == 8000 and 20000 <= mapping["host"] <= 29999
        url = mapping["url"]
        assert url.endswith(f":{mapping['host']}")

        # Used: code uploaded into /app is served on that port.
        upload = user.post(
            f"/containers/{cuid}/upload-zip",
            content=_zip("index.txt", "hello spin"),
            headers={"Content-Type": "application/zip"},
        )
        assert upload.status_code == 200, upload.text
        wait_for(lambda: _serves(f"{url}/app/index.txt", "hello spin"), what="the page")
        assert user.get(f"/containers/{cuid}").json()["last_activity_at"] is not None

        # Left alone: stopped by the system, which says so in the events and the audit.
        wait_for(lambda: _status(user, cuid) == "exited", timeout=60, what="the idle stop")
        wait_for(lambda: _system_did(admin, cuid, "container.idle_stopped"), what="records")
        wait_for(lambda: _get(f"{url}/app/index.txt") is None, what="the port to close")

        # Started again: the same host port, the same /app.
        assert user.post(f"/containers/{cuid}/start").status_code == 200
        assert user.get(f"/containers/{cuid}").json()["ports"][0]["host"] == mapping["host"]
        wait_for(lambda: _serves(f"{url}/app/index.txt", "hello spin"), what="the page again")

    # Dockyard restarts (killed, no goodbye): the port is still the container's.
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, headers=basic(*USER), timeout=120) as user:
        shown = user.get(f"/containers/{cuid}").json()
        assert shown["ports"][0]["host"] == mapping["host"]
        assert user.delete(f"/containers/{cuid}").status_code == 204
        # Released: another container may take that very port now.
        fixed = {"container": 8000, "host": mapping["host"]}
        again = user.post("/containers", json={"image": web_image, "ports": [fixed]})
        assert again.status_code == 201, again.text
        assert user.delete(f"/containers/{again.json()['cuid']}").status_code == 204

"""Host access per engine (issue 12): an admin's switch on an engine; only admins may ask
for it, only where it is on; the Compose document gets exactly what was asked, and the
policy refuses anything else, also on a later document once the switch is off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.domain.containers.compose_doc import Placement, compose_document
from dockyard.domain.containers.policy import check_document
from dockyard.domain.models import ContainerSpec, HostAccess
from dockyard.errors import ValidationError
from tests.conftest import FakeWorld, basic

HOST = {
    "privileged": True,
    "binds": [{"source": "/srv/data", "target": "/data"}],
    "devices": ["/dev/fuse"],
    "cap_add": ["NET_ADMIN"],
}
BODY = {"image": "busybox:test", "host": HOST}
PLACEMENT = Placement(network="dockyard-test", user="1000:1000", stop_timeout=5)


async def _switch(client: httpx.AsyncClient, on: bool) -> None:
    resp = await client.patch("/engines/local", json={"host_access": on})
    assert resp.status_code == 200, resp.text
    assert resp.json()["host_access"] is on


async def test_host_access_needs_the_engine_switch_and_an_admin(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    resp = await fake_client.post("/containers", json=BODY)
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "NO_CAPACITY"
    assert resp.json()["details"]["engines"] == [
        {
            "engine": "local",
            "reason": "host_access",
            "message": "host access is off (an admin turns it on: PATCH /engines/local)",
        }
    ]
    await _switch(fake_client, True)
    resp = await fake_client.post("/accounts", json={"username": "uma", "password": "uma-pass-123"})
    assert resp.status_code == 201, resp.text
    as_user = {"headers": basic("uma", "uma-pass-123")}
    resp = await fake_client.post("/containers", json=BODY, **as_user)  # type: ignore[arg-type]
    assert resp.status_code == 403 and resp.json()["code"] == "HOST_ACCESS_DENIED"
    resp = await fake_client.patch("/engines/local", json={"host_access": False}, **as_user)  # type: ignore[arg-type]
    assert resp.status_code == 403
    events = await fake_client.get("/events", params={"type": "engine.host_access_on"})
    assert [e["actor"] for e in events.json()["events"]] == ["admin"]


async def test_an_admin_gets_exactly_what_was_asked_while_the_switch_is_on(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    await _switch(fake_client, True)
    resp = await fake_client.post("/containers", json=BODY)
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    service = fake_world.compose.documents[cuid]["services"]["app"]
    assert service["privileged"] is True
    assert service["devices"] == ["/dev/fuse:/dev/fuse"]
    assert service["cap_add"] == ["NET_ADMIN"]
    assert {"type": "bind", "source": "/srv/data", "target": "/data", "read_only": True} in (
        service["volumes"]
    )
    assert service["security_opt"] == ["no-new-privileges:true"]

    # Turned off: the next document written for it (a recreate) is refused, nothing changes.
    await _switch(fake_client, False)
    resp = await fake_client.patch(f"/containers/{cuid}", json={"env": {"A": "1"}})
    assert resp.status_code == 400 and resp.json()["code"] == "HOST_ACCESS_DENIED"
    assert "A" not in fake_world.compose.documents[cuid]["services"]["app"]["environment"]

    # An empty `host` asks for nothing: anyone's create, any engine.
    resp = await fake_client.post("/containers", json={"image": "busybox:test", "host": {}})
    assert resp.status_code == 201, resp.text
    assert "privileged" not in fake_world.compose.documents[resp.json()["cuid"]]["services"]["app"]


@pytest.mark.parametrize(
    ("host", "field"),
    [
        ({"binds": [{"source": "/srv", "target": "/app"}]}, "host"),
        ({"binds": [{"source": "/srv", "target": "/app/x"}]}, "host"),
        ({"binds": [{"source": "srv", "target": "/data"}]}, "host"),
        ({"binds": [{"source": "/srv/../etc", "target": "/data"}]}, "host"),
        ({"devices": ["/etc/shadow"]}, "host"),
        ({"cap_add": ["all; rm"]}, "host"),
        ({"pid": "host"}, "pid"),
    ],
)
async def test_bad_host_requests_are_refused(
    fake_client: httpx.AsyncClient, host: dict[str, Any], field: str
) -> None:
    await _switch(fake_client, True)
    resp = await fake_client.post("/containers", json={"image": "busybox:test", "host": host})
    assert resp.status_code == 400, resp.text
    assert resp.json()["details"]["field"].startswith(field)


def _document(tmp_path: Path, host: HostAccess | None) -> dict[str, Any]:
    spec = ContainerSpec(image="busybox:test")
    return compose_document(
        "c1", "ann", spec, tmp_path / "app", PLACEMENT, boot_py=False, host=host
    )


def test_the_policy_allows_only_the_grant(tmp_path: Path) -> None:
    asked = HostAccess.model_validate(HOST)
    doc = _document(tmp_path, asked)
    check_document(doc, tmp_path / "app", PLACEMENT.network, host=asked)
    with pytest.raises(ValidationError) as refused:
        check_document(doc, tmp_path / "app", PLACEMENT.network)  # no grant: all refused
    assert refused.value.code == "HOST_ACCESS_DENIED"
    smaller = HostAccess(binds=asked.binds)  # a grant of less than the document holds
    with pytest.raises(ValidationError):
        check_document(doc, tmp_path / "app", PLACEMENT.network, host=smaller)
    writable = _document(tmp_path, asked)
    writable["services"]["app"]["volumes"][1]["read_only"] = False  # not as granted
    with pytest.raises(ValidationError):
        check_document(writable, tmp_path / "app", PLACEMENT.network, host=asked)
    other = _document(tmp_path, asked)
    other["services"]["app"]["cap_add"] = ["SYS_ADMIN"]
    with pytest.raises(ValidationError):
        check_document(other, tmp_path / "app", PLACEMENT.network, host=asked)

"""``/images`` over a fake engine: container use, filters, pages, delete rules."""

from __future__ import annotations

import httpx

from dockyard.domain.images.images import Usage
from dockyard.domain.images.ports import ImageInfo
from dockyard.domain.models import ContainerRecord, ContainerSpec, new_cuid
from tests.conftest import FakeWorld, basic


def record(image: str) -> ContainerRecord:
    return ContainerRecord(cuid=new_cuid(), owner="amy", spec=ContainerSpec(image=image))


def test_usage_counts_references_ids_and_the_tag_a_delete_breaks() -> None:
    info = ImageInfo(
        id="sha256:" + "c" * 64,
        tags=("busybox:latest", "team/tool:1"),
        digests=(),
        size=1,
        created=None,
        exposed_ports=(),
        architecture="amd64",
    )
    usage = Usage(
        [
            record("busybox"),
            record("docker.io/library/busybox:latest"),
            record("team/tool:1"),
            record("cccccccccccc"),
            record("other:1"),
        ]
    )
    assert usage.count(info) == 4
    assert usage.affected(info, "team/tool:1") == 1  # the image keeps its other tag
    assert usage.affected(info, info.id) == 4


async def user(fake_client: httpx.AsyncClient, name: str, role: str = "user") -> dict[str, str]:
    resp = await fake_client.post(
        "/accounts", json={"username": name, "password": f"{name}-pass", "role": role}
    )
    assert resp.status_code == 201, resp.text
    return basic(name, f"{name}-pass")


async def test_images_list_pages_and_use(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    fake_world.engine.images |= {f"team/app:{i}" for i in range(5)}
    made = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert made.status_code == 201, made.text
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await fake_client.get("/images", params=params)).json()
        seen += page["images"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len({i["id"] for i in seen}) == 6
    used = {i["tags"][0]: i["containers"] for i in seen}
    assert used["busybox:test"] == 1 and used["team/app:0"] == 0
    only = (await fake_client.get("/images", params={"tag": "app:3"})).json()["images"]
    assert [i["tags"] for i in only] == [["team/app:3"]]
    one = await fake_client.get("/images/team/app:3")
    assert one.status_code == 200 and one.json()["tags"] == ["team/app:3"]
    missing = await fake_client.get("/images/nope/nothing:1")
    assert missing.status_code == 404 and missing.json()["code"] == "IMAGE_NOT_FOUND"
    bad = await fake_client.get("/images", params={"cursor": "zzz"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CURSOR"


async def test_delete_is_refused_while_used_and_forced_by_admins_only(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    amy = await user(fake_client, "amy")
    vic = await user(fake_client, "vic", "viewer")
    made = await fake_client.post("/containers", json={"image": "busybox:test"}, headers=amy)
    assert made.status_code == 201
    used = await fake_client.delete("/images/busybox:test", headers=amy)
    assert used.status_code == 409 and used.json()["code"] == "IMAGE_IN_USE"
    assert used.json()["details"]["containers"] == 1
    forced = await fake_client.delete("/images/busybox:test?force=true", headers=amy)
    assert forced.status_code == 403 and forced.json()["code"] == "FORCE_ADMIN_ONLY"
    viewer = await fake_client.delete("/images/busybox:test", headers=vic)
    assert viewer.status_code == 403 and viewer.json()["code"] == "PERMISSION_DENIED"
    assert (await fake_client.get("/images", headers=vic)).status_code == 200
    assert (await fake_client.delete("/images/busybox:test?force=true")).status_code == 204
    assert "busybox:test" not in fake_world.engine.images
    events = (await fake_client.get("/events", params={"type": "image.deleted"})).json()
    assert events["events"][0]["details"]["image"] == "busybox:test"


async def test_a_ref_that_is_a_path_elsewhere_never_reaches_the_engine(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    from dockyard.domain.access.permissions import Principal
    from dockyard.errors import ValidationError

    images = fake_world.app.state.services.images
    root = Principal("admin", "admin")
    for ref in ("../containers/x", "a/../../containers/x", "x/json?all=1", "%2e%2e/x"):
        for call in (images.get(root, ref), images.delete(root, ref, force=True)):
            try:
                await call
            except ValidationError as exc:
                assert exc.code == "INVALID_IMAGE_REF"
            else:
                raise AssertionError(ref)
    resp = await fake_client.delete("/images/%2E%2E/containers/x")
    assert resp.status_code in (400, 404), resp.text

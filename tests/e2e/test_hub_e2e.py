"""Webhook keys and the hub webhook redeploy against the real server, engine and the
local registry (issue 11, seed 004): v1 pushed and run by two containers of one
account, v2 pushed, a Docker Hub delivery pulls it and recreates those two (env, host
ports and /app kept) and nothing else; a replay redeploys nothing again; an unknown
key is any unknown path; a key bound to a Dockerfile build redeploys without a
registry."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, inspect, project_containers, wait_for
from tests.registry import REGISTRY, REGISTRY_PASS, REGISTRY_USER, require_registry
from tests.server import Server, free_port

USER = ("hubber", "hubber-password-1")
AUTH = {"server": REGISTRY, "username": REGISTRY_USER, "password": REGISTRY_PASS}


@pytest.fixture
def refs() -> Iterator[list[str]]:
    """Image references a test tags locally; removed afterwards."""
    made: list[str] = []
    yield made
    for ref in made:
        docker("rmi", "-f", ref, check=False)


def _client(server: Server, who: tuple[str, str] = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=basic(*who), timeout=120)


def _finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/builds/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(probe, 180, f"job {job_id} to end")


def _build(http: httpx.Client, ref: str, version: str, *, push: bool) -> str:
    """Build (and push) ``ref`` holding ``version``; its image id."""
    dockerfile = f"FROM {BUSYBOX}\nRUN echo {version} > /version\n"
    body: dict[str, Any] = {"dockerfile": dockerfile, "tags": [ref]}
    if push:
        body.update(push=True, auth=AUTH)
    resp = http.post("/builds", json=body)
    assert resp.status_code == 202, resp.text
    job = _finished(http, resp.json()["job_id"])
    assert job["status"] == "succeeded", job
    return str(job["image_id"])


def _create(http: httpx.Client, image: str, **body: Any) -> str:
    payload = {"image": image, "command": "sleep 3600", "start": True, **body}
    resp = http.post("/containers", json=payload)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


def _container(cuid: str) -> dict[str, Any]:
    (cid,) = project_containers(cuid)
    return inspect(cid)


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _key(http: httpx.Client, image: str, **body: Any) -> dict[str, Any]:
    resp = http.post("/webhookkeys", json={"image": image, **body})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    assert created["url"].endswith(f"/hub/webhook/{created['key']}")
    return created


def _without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("request_id", "timestamp")}


def test_a_push_redeploys_the_accounts_containers_once(server: Server, refs: list[str]) -> None:
    require_registry()
    repo = f"{REGISTRY}/dockyard-e2e/hub-{uuid.uuid4().hex[:8]}"
    ref, other_tag = f"{repo}:live", f"{repo}:other"
    refs.extend([ref, other_tag])
    admin = _client(server)
    resp = admin.post("/accounts", json={"username": USER[0], "password": USER[1], "role": "user"})
    assert resp.status_code == 201, resp.text
    user = _client(server, USER)
    assert user.post("/registries", json=AUTH).status_code == 201
    v1 = _build(admin, ref, "v1", push=True)
    docker("tag", v1, other_tag)
    port = free_port()
    mine = [
        _create(user, ref, env={"GREETING": "hello"}, ports=[{"container": 80, "host": port}]),
        _create(user, ref, env={"GREETING": "hi"}),
    ]
    for cuid in mine:
        upload = user.post(
            f"/containers/{cuid}/upload-zip",
            content=_zip({"keep.txt": f"kept by {cuid}"}),
            headers={"Content-Type": "application/zip"},
        )
        assert upload.status_code == 200, upload.text
    untouched = [_create(admin, ref), _create(user, other_tag)]
    ids_before = {cuid: project_containers(cuid) for cuid in mine + untouched}
    # v2 reaches the registry; the engine's tag goes back to v1, so only a pull brings v2.
    v2 = _build(admin, ref, "v2", push=True)
    assert v2 != v1
    docker("tag", v1, ref)

    key = _key(user, repo + ":live")
    listed = user.get("/webhookkeys").json()["webhookkeys"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    payload = {
        "push_data": {"pushed_at": 1385141110, "tag": "live", "pusher": "someone"},
        "repository": {"repo_name": repo, "name": repo.rsplit("/", 1)[1]},
        "callback_url": f"http://127.0.0.1:{free_port()}/never-called",
    }
    anonymous = httpx.Client(base_url=server.url, timeout=60)
    resp = anonymous.post(f"/hub/webhook/{key['key']}", json=payload)
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["replay"] is False and accepted["image"] == ref
    job = _finished(user, accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["kind"] == "redeploy" and job["image_id"] == v2
    result = {c["cuid"]: c for c in job["result"]["containers"]}
    assert set(result) == set(mine)
    for cuid in mine:
        assert result[cuid]["outcome"] == "recreated"
        assert (result[cuid]["old_image_id"], result[cuid]["new_image_id"]) == (v1, v2)
        state = _container(cuid)
        assert state["Image"] == v2 and state["State"]["Running"]
        assert project_containers(cuid) != ids_before[cuid]
        kept = docker("exec", state["Id"], "cat", "/app/keep.txt")
        assert kept == f"kept by {cuid}"
    assert "GREETING=hello" in _container(mine[0])["Config"]["Env"]
    bound = _container(mine[0])["HostConfig"]["PortBindings"]["80/tcp"]
    assert bound[0]["HostPort"] == str(port)
    for cuid in untouched:
        assert project_containers(cuid) == ids_before[cuid]
        assert _container(cuid)["Image"] == v1

    # The same delivery again (Docker Hub retries): the same job, nothing recreated.
    ids_after = {cuid: project_containers(cuid) for cuid in mine}
    again = anonymous.post(f"/hub/webhook/{key['key']}", json={**payload, "extra": 1})
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] == accepted["job_id"] and again.json()["replay"] is True
    assert {cuid: project_containers(cuid) for cuid in mine} == ids_after

    events = user.get("/events", params={"type": "container.redeployed"}).json()["events"]
    assert sorted(e["cuid"] for e in events) == sorted(mine)
    assert {e["actor"] for e in events} == {"system"}
    deliveries = user.get("/events", params={"type": "hub.delivery"}).json()["events"]
    assert [e["cuid"] for e in deliveries] == [accepted["job_id"]]
    audit = admin.get("/audit", params={"resource": mine[0]}).json()["entries"]
    assert any(e["action"] == "container.redeployed" and e["user"] == "system" for e in audit)

    # Another repository, an unknown key, a deleted key.
    wrong = anonymous.post(f"/hub/webhook/{key['key']}", json={"image": "someone/else:1"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "REPOSITORY_MISMATCH"
    nowhere = anonymous.post("/hub/nowhere", json=payload)
    unknown = anonymous.post(f"/hub/webhook/dyh_{'x' * 43}", json=payload)
    assert (unknown.status_code, nowhere.status_code) == (404, 404)
    assert _without_ids(unknown.json()) == _without_ids(nowhere.json())
    assert user.delete(f"/webhookkeys/{key['id']}").status_code == 204
    gone = anonymous.post(f"/hub/webhook/{key['key']}", json=payload)
    assert gone.status_code == 404 and _without_ids(gone.json()) == _without_ids(nowhere.json())
    for client in (admin, user, anonymous):
        client.close()


def test_a_key_bound_to_a_dockerfile_build_redeploys_without_a_registry(
    server: Server, refs: list[str]
) -> None:
    ref = f"dockyard-e2e/hubbuild-{uuid.uuid4().hex[:8]}:1"
    refs.append(ref)
    admin = _client(server)
    dockerfile = f"FROM {BUSYBOX}\nRUN date +%s%N > /built\n"
    resp = admin.post("/builds", json={"dockerfile": dockerfile, "tags": [ref]})
    assert resp.status_code == 202, resp.text
    first = _finished(admin, resp.json()["job_id"])["image_id"]
    cuid = _create(admin, ref)
    stopped = _create(admin, ref, start=False)
    build = {"dockerfile": dockerfile, "no_cache": True}
    key = _key(admin, ref, build=build)
    assert key["build"] == build
    secret = admin.post("/webhookkeys", json={"image": ref, "build": {**build, "build_args": {}}})
    assert secret.status_code == 400  # build-arg values are never stored with a key

    resp = httpx.post(f"{server.url}/hub/webhook/{key['key']}", json={"image": ref}, timeout=60)
    assert resp.status_code == 202, resp.text
    job = _finished(admin, resp.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["image_id"] != first
    result = {c["cuid"]: c for c in job["result"]["containers"]}
    assert result[cuid]["outcome"] == "recreated"
    assert result[stopped]["outcome"] == "recreated_stopped"
    assert _container(cuid)["Image"] == job["image_id"]
    assert _container(stopped)["Image"] == job["image_id"]
    assert not _container(stopped)["State"]["Running"]
    assert admin.get(f"/containers/{stopped}").json()["status"] != "running"
    admin.close()

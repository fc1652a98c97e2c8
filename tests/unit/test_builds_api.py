"""/builds and POST /images/pull through the application (fake image engine, the real
build contexts, queue and store): bodies, sources, limits, permissions, secrets."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import create_app
from dockyard.domain.images.ports import Progress, ProgressKind
from tests.conftest import ADMIN, basic, make_settings
from tests.fakes import FakeCompose, FakeEngine, FastHasher
from tests.images_fakes import ScriptedImages, ok_build

DOCKERFILE = "FROM dockyard-test/busybox:latest\nCOPY hello.txt /hello.txt\n"


class World:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        self.images = ScriptedImages()
        self.settings = make_settings(tmp_path, **settings)
        engine = FakeEngine()
        self.app = create_app(
            self.settings,
            engine=engine,
            compose=FakeCompose(engine),
            compose_version="2.99.0",
            hasher=FastHasher(),
            images=self.images,
        )
        self.services = self.app.state.services

    def client(self, auth: tuple[str, str] = ADMIN) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://t", headers=basic(*auth))

    async def ended(self, job_id: str) -> dict[str, Any]:
        await self.services.jobs.wait(job_id)
        async with self.client() as client:
            return (await client.get(f"/builds/{job_id}")).json()  # type: ignore[no-any-return]


async def _world(tmp_path: Path, **settings: object) -> AsyncIterator[World]:
    world = World(tmp_path, **settings)
    async with world.app.router.lifespan_context(world.app):
        yield world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for w in _world(tmp_path):
        yield w


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[World]:
    async for w in _world(tmp_path, build_context_max_bytes=4096, builds_per_account=1):
        yield w


def context_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def add_user(client: httpx.AsyncClient, name: str, role: str = "user") -> tuple[str, str]:
    password = f"{name}-password-123"
    resp = await client.post(
        "/accounts", json={"username": name, "password": password, "role": role}
    )
    assert resp.status_code == 201, resp.text
    return name, password


async def test_a_dockerfile_build_is_queued_then_watched_to_its_end(world: World) -> None:
    async with world.client() as client:
        resp = await client.post(
            "/builds", json={"dockerfile": "FROM x\nRUN echo hi\n", "tags": ["me/app:1"]}
        )
        assert resp.status_code == 202, resp.text
        job = resp.json()
        assert job["status"] == "queued" and job["kind"] == "build" and job["owner"] == "admin"
        assert job["spec"]["source"] == {"type": "dockerfile", "extra_files": False}
        done = await world.ended(job["job_id"])
        assert done["status"] == "succeeded" and done["step"] == done["total_steps"] == 2
        assert done["image_id"] and done["duration"] is not None
        log = await client.get(f"/builds/{job['job_id']}/logs")
        assert log.headers["content-type"].startswith("text/plain")
        assert "Step 2/2 : RUN echo hi" in log.text
        page = (await client.get("/builds", params={"status": "succeeded"})).json()
        assert [b["job_id"] for b in page["builds"]] == [job["job_id"]]
        events = (await client.get("/events", params={"type": "build.succeeded"})).json()
        assert [e["cuid"] for e in events["events"]] == [job["job_id"]]
    spec = world.images.builds[0]
    assert spec.network_mode == world.settings.build_network


async def test_exactly_one_source(world: World) -> None:
    async with world.client() as client:
        for body in (
            {"tags": ["me/app:1"]},
            {"tags": ["me/app:1"], "dockerfile": "FROM x", "tar_url": "https://x/y.tar"},
            {"tags": ["me/app:1"], "git": {"url": "https://x/y.git"}, "github_username": "a"},
        ):
            resp = await client.post("/builds", json=body)
            assert resp.status_code == 400, resp.text
            assert resp.json()["code"] == "ONE_SOURCE_REQUIRED"
        resp = await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["Bad Tag"]})
        assert resp.status_code == 400 and resp.json()["error"] == "validation_error"
        resp = await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["a"], "x": 1})
        assert resp.status_code == 400 and resp.json()["code"] == "UNKNOWN_FIELD"
        resp = await client.post(
            "/builds", content=b"FROM x", headers={"Content-Type": "text/plain"}
        )
        assert resp.status_code == 415


async def test_a_multipart_upload_with_a_manifest_builds_the_archive(world: World) -> None:
    archive = context_tar({"Dockerfile": DOCKERFILE.encode(), "hello.txt": b"hello\n"})
    async with world.client() as client:
        resp = await client.post(
            "/builds",
            files={
                "TarFile": ("ctx.tar", archive, "application/x-tar"),
                "Json": (
                    "manifest.json",
                    json.dumps({"image_name": "me/up:1"}),
                    "application/json",
                ),
            },
        )
        assert resp.status_code == 202, resp.text
        job = resp.json()
        assert job["tags"] == ["me/up:1"] and job["spec"]["source"] == {"type": "upload"}
        assert (await world.ended(job["job_id"]))["status"] == "succeeded"
        # Dockerfile text in the manifest: the archive holds its extra files.
        resp = await client.post(
            "/builds",
            files={
                "TarFile": ("x.tar", context_tar({"hello.txt": b"hi"}), "application/x-tar"),
                "Json": ("m.json", json.dumps({"dockerfile": DOCKERFILE, "tags": ["me/x:1"]})),
            },
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["spec"]["source"] == {"type": "dockerfile", "extra_files": True}
        await world.ended(resp.json()["job_id"])
    assert len(world.images.builds) == 2
    assert not list((world.settings.data_dir / "tmp").glob("upload-*"))  # spools removed


async def test_a_raw_archive_with_options_in_the_query(world: World) -> None:
    archive = context_tar({"docker/Build.file": DOCKERFILE.encode(), "hello.txt": b"hi"})
    async with world.client() as client:
        resp = await client.post(
            "/builds",
            params={
                "tags": "me/raw:1,me/raw:latest",
                "dockerfile_path": "docker/Build.file",
                "no_cache": "true",
                "build_args": json.dumps({"V": "2"}),
            },
            content=archive,
            headers={"Content-Type": "application/x-tar"},
        )
        assert resp.status_code == 202, resp.text
        assert (await world.ended(resp.json()["job_id"]))["status"] == "succeeded"
    spec = world.images.builds[0]
    assert spec.tags == ("me/raw:1", "me/raw:latest") and spec.no_cache
    assert spec.dockerfile == "docker/Build.file" and spec.build_args == {"V": "2"}


async def test_a_hostile_upload_is_refused_before_any_job(world: World) -> None:
    archive = context_tar({"Dockerfile": DOCKERFILE.encode(), "../escape": b"x"})
    async with world.client() as client:
        resp = await client.post(
            "/builds",
            params={"tags": "me/bad:1"},
            content=archive,
            headers={"Content-Type": "application/x-tar"},
        )
        assert resp.status_code == 400, resp.text
        assert (await client.get("/builds")).json()["builds"] == []
    assert world.images.builds == []


async def test_an_upload_past_the_context_limit_is_413_and_the_queue_429(small: World) -> None:
    gate = asyncio.Event()
    small.images.build_script = [gate, *ok_build()]
    async with small.client() as client:
        big = context_tar({"Dockerfile": DOCKERFILE.encode(), "big": b"x" * 8192})
        resp = await client.post(
            "/builds",
            params={"tags": "me/big:1"},
            content=big,
            headers={"Content-Type": "application/x-tar"},
        )
        assert resp.status_code == 413, resp.text
        first = await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["me/a:1"]})
        assert first.status_code == 202
        resp = await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["me/a:2"]})
        assert resp.status_code == 429 and resp.json()["code"] == "TOO_MANY_JOBS"
        assert int(resp.headers["Retry-After"]) > 0
        gate.set()
        await small.ended(first.json()["job_id"])
    assert not list((small.settings.data_dir / "tmp").glob("upload-*"))


async def test_permissions_and_ownership(world: World) -> None:
    async with world.client() as admin:
        viewer = await add_user(admin, "vera", "viewer")
        user = await add_user(admin, "ulla")
        resp = await admin.post("/builds", json={"dockerfile": "FROM x", "tags": ["me/a:1"]})
        job_id = resp.json()["job_id"]
        await world.ended(job_id)
    async with world.client(viewer) as client:
        resp = await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["me/a:1"]})
        assert resp.status_code == 403
        assert (await client.post("/images/pull", json={"image": "x:1"})).status_code == 403
        assert (await client.get("/builds")).json()["builds"] == []
    async with world.client(user) as client:
        for path in (f"/builds/{job_id}", f"/builds/{job_id}/logs"):
            assert (await client.get(path)).status_code == 404
        assert (await client.post(f"/builds/{job_id}/cancel")).status_code == 404


async def test_cancel_through_the_api(world: World) -> None:
    world.images.build_script = [Progress(ProgressKind.STEP, "RUN sleep 60", 1, 1), asyncio.Event()]
    async with world.client() as client:
        job = (await client.post("/builds", json={"dockerfile": "FROM x", "tags": ["a"]})).json()
        await world.images.started.wait()
        follow = asyncio.create_task(client.get(f"/builds/{job['job_id']}/logs?follow=true"))
        resp = await client.post(f"/builds/{job['job_id']}/cancel")
        assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
        log = await asyncio.wait_for(follow, 10)  # the follow ends with the job
        assert "Step 1/1 : RUN sleep 60" in log.text and "Cancelled." in log.text
    assert world.images.closed == 1


async def test_a_pull_is_a_job(world: World) -> None:
    async with world.client() as client:
        resp = await client.post(
            "/images/pull",
            json={
                "image": "127.0.0.1:5000/me/base",
                "auth": {"server": "127.0.0.1:5000", "username": "u", "password": "pull-secret-1"},
            },
            headers={"Idempotency-Key": "pull-1"},
        )
        assert resp.status_code == 202, resp.text
        job = resp.json()
        assert job["kind"] == "pull" and job["tags"] == ["127.0.0.1:5000/me/base:latest"]
        again = await client.post(
            "/images/pull",
            json={
                "image": "127.0.0.1:5000/me/base",
                "auth": {"server": "127.0.0.1:5000", "username": "u", "password": "pull-secret-1"},
            },
            headers={"Idempotency-Key": "pull-1"},
        )
        assert again.json()["job_id"] == job["job_id"]
        done = await world.ended(job["job_id"])
        assert done["status"] == "succeeded"
        assert done["progress"]["l1"] == {"status": "Pull complete", "current": 10, "total": 10}
        assert "pull-secret-1" not in json.dumps(done)
        events = (await client.get("/events", params={"type": "image.pulled"})).json()
        assert events["events"][0]["details"]["image"] == "127.0.0.1:5000/me/base:latest"


async def test_secrets_stay_out_of_the_job_its_log_and_the_actions_log(world: World) -> None:
    secret, password = "build-arg-secret-42", "push-password-77"
    world.images.build_script = [Progress(ProgressKind.LOG, f"token is {secret}"), *ok_build()]
    async with world.client() as client:
        resp = await client.post(
            "/builds",
            json={
                "dockerfile": "FROM x",
                "tags": ["127.0.0.1:5000/me/s:1"],
                "build_args": {"TOKEN": secret},
                "push": True,
                "auth": {"server": "127.0.0.1:5000", "username": "u", "password": password},
            },
        )
        assert resp.status_code == 202, resp.text
        done = await world.ended(resp.json()["job_id"])
        assert done["status"] == "succeeded" and done["digest"]
        log = (await client.get(f"/builds/{done['job_id']}/logs")).text
        everything = json.dumps(done) + resp.text + log
    assert world.images.pushes[0][1] is not None
    everything += (world.settings.log_dir / "actions.jsonl").read_text()
    assert secret not in everything and password not in everything
    assert "token is ***" in log


async def test_an_upload_with_an_idempotency_key_is_one_job(world: World) -> None:
    archive = context_tar({"Dockerfile": DOCKERFILE.encode(), "hello.txt": b"hi"})

    async def send(data: bytes) -> httpx.Response:
        async with world.client() as client:
            return await client.post(
                "/builds",
                params={"tags": "me/idem:1"},
                content=data,
                headers={"Content-Type": "application/x-tar", "Idempotency-Key": "up-1"},
            )

    first, again = await send(archive), await send(archive)
    assert first.status_code == again.status_code == 202, first.text
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await send(context_tar({"Dockerfile": DOCKERFILE.encode(), "hello.txt": b"x"}))
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    await world.ended(first.json()["job_id"])
    async with world.client() as client:
        resp = await client.get("/builds", params={"status": "sleeping"})
        assert resp.status_code == 400 and resp.json()["details"]["field"] == "status"
        pulls = await client.get("/builds", params={"kind": "pull"})
        assert pulls.json()["builds"] == []


async def test_a_seed_002_client_reads_its_job_identifier(world: World) -> None:
    """docker-builder's clients send image_name (+ push credentials) and read
    ``JobIdentifier`` from the answer, then the job's status and log by that id."""
    archive = context_tar({"Dockerfile": DOCKERFILE.encode(), "hello.txt": b"hello\n"})
    manifest = {"image_name": "user/image"}
    async with world.client() as client:
        resp = await client.post(
            "/builds",
            files={
                "TarFile": ("dockertarexample.tar", archive, "application/x-gzip"),
                "Json": ("manifest.json", json.dumps(manifest), "application/json"),
            },
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["JobIdentifier"]
        assert job_id == resp.json()["job_id"]
        assert (await world.ended(job_id))["status"] == "succeeded"
        assert "Step 1/2" in (await client.get(f"/builds/{job_id}/logs")).text
        pull = await client.post("/images/pull", json={"image": "busybox"})
        assert pull.json()["JobIdentifier"] == pull.json()["job_id"]
        await world.ended(pull.json()["job_id"])
        listed = (await client.get("/builds")).json()["builds"]
        assert all("JobIdentifier" not in job for job in listed)  # the 202 only


# Found by schemathesis (scripts/schemathesis.sh) and fixed.


async def test_the_build_body_is_in_the_contract(world: World) -> None:
    async with world.client() as client:
        doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    body = doc["paths"]["/builds"]["post"]["requestBody"]["content"]
    # Referenced through openapi_extra only: it was a dangling $ref.
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/BuildIn"}
    assert {"BuildIn", "GitIn", "AuthIn"} <= set(schemas)
    assert "dockerfile_path" in schemas["BuildIn"]["properties"]
    assert body["multipart/form-data"]["encoding"]["Json"]["contentType"] == "application/json"
    accepted = doc["paths"]["/builds"]["post"]["responses"]["202"]
    assert "JobIdentifier" in json.dumps(doc["components"]["schemas"]["JobAccepted"])
    assert accepted["links"]  # the queued job links to /builds/{job_id}
    logs = doc["paths"]["/builds/{job_id}/logs"]["get"]["responses"]["200"]["content"]
    assert list(logs) == ["text/plain"]

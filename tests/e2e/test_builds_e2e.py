"""Builds and pulls through the real server and engine (issue 10): a Dockerfile with an
extra file, then a container from it; build args, target, no_cache; a failing RUN;
cancel and deadline mid ``RUN sleep 60`` with nothing left running; the queue's 429;
a restart mid-build; a push to the local registry, with wrong credentials too."""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.registry import REGISTRY, REGISTRY_PASS, REGISTRY_USER, require_registry
from tests.server import ServeFactory, Server

SLEEPY = f"FROM {BUSYBOX}\nLABEL run={{run}}\nRUN sleep 60\n"


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One server for the module: each test makes its own builds and tags (the deadline
    and queue tests have their own servers, with settings)."""
    return module_server


@pytest.fixture
def tags() -> Iterator[list[str]]:
    """Tags a test builds; removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        docker("rmi", "-f", tag, check=False)


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)


def tag(tags: list[str], name: str) -> str:
    made = f"dockyard-e2e/{name}-{uuid.uuid4().hex[:8]}:1"
    tags.append(made)
    return made


def tar_of(files: dict[str, bytes], mode: str = "w") -> bytes:
    """``files`` as a tar (``mode="w:gz"``: gzipped)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def finished(http: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/builds/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(probe, timeout, f"job {job_id} to end")


def followed_log(http: httpx.Client, job_id: str) -> str:
    """The whole log through follow=true: it ends when the job ends."""
    with http.stream("GET", f"/builds/{job_id}/logs", params={"follow": "true"}) as resp:
        assert resp.status_code == 200
        return "".join(resp.iter_text())


def build_containers(log: str) -> list[str]:
    """The containers the engine runs from the layer before the last step (none left
    once a build has ended)."""
    layers = re.findall(r" ---> ([0-9a-f]{12})\b", log)
    assert layers, log
    return docker("ps", "-aq", "--filter", f"ancestor={layers[-1]}").split()


def test_a_dockerfile_build_with_an_extra_file_runs_as_a_container(
    server: Server, tags: list[str]
) -> None:
    image = tag(tags, "hello")
    dockerfile = f"FROM {BUSYBOX}\nCOPY hello.txt /hello.txt\nRUN echo built\n"
    manifest = {"dockerfile": dockerfile, "tags": [image]}
    with client(server) as http:
        resp = http.post(
            "/builds",
            files={
                "TarFile": ("extra.tar", tar_of({"hello.txt": b"hello from a build\n"})),
                "Json": ("manifest.json", json.dumps(manifest), "application/json"),
            },
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        log = followed_log(http, job_id)
        assert "Step 3/3 : RUN echo built" in log and "built\n" in log
        job = http.get(f"/builds/{job_id}").json()
        assert job["status"] == "succeeded" and job["image_id"].startswith("sha256:")
        assert (job["step"], job["total_steps"]) == (3, 3)
        # A container from the new image, at once.
        resp = http.post(
            "/containers", json={"image": image, "command": ["cat", "/hello.txt"], "start": True}
        )
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        try:
            wait_for(
                lambda: http.get(f"/containers/{cuid}/status").json()["status"] == "exited",
                60,
                "the container to exit",
            )
            assert "hello from a build" in http.get(f"/containers/{cuid}/logs").text
        finally:
            http.delete(f"/containers/{cuid}")
        kinds = [e["type"] for e in http.get("/events", params={"cuid": job_id}).json()["events"]]
        assert kinds == ["build.succeeded", "build.started", "build.queued"]


def test_build_args_target_and_no_cache(server: Server, tags: list[str]) -> None:
    image = tag(tags, "args")
    dockerfile = (  # unique: the first build of this run finds nothing in the cache
        f"FROM {BUSYBOX} AS base\nLABEL run={uuid.uuid4().hex}\nARG FLAVOUR\n"
        "RUN echo flavour=$FLAVOUR\nFROM base AS broken\nRUN false\n"
    )
    body = {
        "dockerfile": dockerfile,
        "tags": [image],
        "build_args": {"FLAVOUR": "v1"},
        "target": "base",
    }
    with client(server) as http:
        first = http.post("/builds", json=body).json()["job_id"]
        log = followed_log(http, first)
        assert finished(http, first)["status"] == "succeeded", log
        assert "flavour=v1" in log and "RUN false" not in log  # the target's stages only
        again = http.post("/builds", json=body).json()["job_id"]
        assert "Using cache" in followed_log(http, again)
        fresh = http.post("/builds", json={**body, "no_cache": True}).json()["job_id"]
        log = followed_log(http, fresh)
        assert "Using cache" not in log and "flavour=v1" in log
        assert finished(http, fresh)["spec"]["build_args"] == ["FLAVOUR"]


def test_a_failing_run_fails_the_job_with_its_step(server: Server, tags: list[str]) -> None:
    image = tag(tags, "fails")
    with client(server) as http:
        resp = http.post(
            "/builds", json={"dockerfile": f"FROM {BUSYBOX}\nRUN false\n", "tags": [image]}
        )
        job = finished(http, resp.json()["job_id"])
        assert job["status"] == "failed", job
        assert job["error"]["kind"] == "engine_error" and job["error"]["code"] == "BUILD_FAILED"
        assert job["error"]["step"] == "Step 2/2 : RUN false"
        log = http.get(f"/builds/{job['job_id']}/logs").text
        assert "Step 2/2 : RUN false" in log and "non-zero code" in log


def test_cancel_mid_run_leaves_nothing_running(server: Server, tags: list[str]) -> None:
    image = tag(tags, "cancel")
    body = {"dockerfile": SLEEPY.format(run=uuid.uuid4().hex), "tags": [image]}
    with client(server) as http:
        job_id = http.post("/builds", json=body).json()["job_id"]
        wait_for(lambda: "RUN sleep 60" in http.get(f"/builds/{job_id}/logs").text, 60, "the RUN")
        log = http.get(f"/builds/{job_id}/logs").text
        wait_for(lambda: build_containers(log), 30, "the RUN container")
        resp = http.post(f"/builds/{job_id}/cancel")
        assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
        wait_for(lambda: not build_containers(log), 20, "the RUN container to go")


def test_the_deadline_fails_the_build_and_stops_it(serve: ServeFactory, tags: list[str]) -> None:
    server = serve(build_timeout=4)
    image = tag(tags, "deadline")
    body = {"dockerfile": SLEEPY.format(run=uuid.uuid4().hex), "tags": [image]}
    with client(server) as http:
        job_id = http.post("/builds", json=body).json()["job_id"]
        job = finished(http, job_id, 60)
        assert job["status"] == "failed" and job["error"]["code"] == "BUILD_TIMEOUT", job
        assert job["error"]["step"] == "Step 3/3 : RUN sleep 60"
        log = http.get(f"/builds/{job_id}/logs").text
        wait_for(lambda: not build_containers(log), 20, "the RUN container to go")


def test_a_full_queue_is_429_and_a_restart_interrupts(serve: ServeFactory, tags: list[str]) -> None:
    server = serve(builds_max_running=1, builds_max_queued=0)
    body = {"dockerfile": SLEEPY.format(run=uuid.uuid4().hex), "tags": [tag(tags, "queue")]}
    with client(server) as http:
        job_id = http.post("/builds", json=body).json()["job_id"]
        wait_for(lambda: http.get(f"/builds/{job_id}").json()["status"] == "building", 30)
        resp = http.post("/builds", json={**body, "tags": [tag(tags, "queue")]})
        assert resp.status_code == 429 and resp.json()["code"] == "QUEUE_FULL", resp.text
        assert int(resp.headers["Retry-After"]) > 0
        wait_for(lambda: "RUN sleep 60" in http.get(f"/builds/{job_id}/logs").text, 60)
    server.kill()  # mid-build, no clean stop
    server.start()
    with client(server) as http:
        job = http.get(f"/builds/{job_id}").json()
        assert job["status"] == "failed" and job["error"]["code"] == "interrupted", job
        assert "Interrupted" in http.get(f"/builds/{job_id}/logs").text
        build_log = http.get(f"/builds/{job_id}/logs").text
    wait_for(lambda: not build_containers(build_log), 30, "the RUN container to go")
    # A clean stop (SIGTERM) mid-build ends the job interrupted too, before it exits.
    with client(server) as http:
        body = {"dockerfile": SLEEPY.format(run=uuid.uuid4().hex), "tags": [tag(tags, "stop")]}
        job_id = http.post("/builds", json=body).json()["job_id"]
        wait_for(lambda: "RUN sleep 60" in http.get(f"/builds/{job_id}/logs").text, 60)
    server.stop()
    server.start()
    with client(server) as http:
        job = http.get(f"/builds/{job_id}").json()
        assert job["status"] == "failed" and job["error"]["code"] == "interrupted", job
        assert "the service stopped" in job["error"]["message"]


def test_push_to_the_local_registry_and_wrong_credentials(
    server: Server, tags: list[str], tmp_path: Path
) -> None:
    require_registry()
    image = f"{REGISTRY}/dockyard-e2e/push-{uuid.uuid4().hex[:8]}:1"
    tags.append(image)
    wrong = "wrong-registry-password-5a7e"
    dockerfile = f"FROM {BUSYBOX}\nRUN echo pushed > /pushed.txt\n"
    auth = {"server": REGISTRY, "username": REGISTRY_USER, "password": REGISTRY_PASS}
    with client(server) as http:
        body = {"dockerfile": dockerfile, "tags": [image], "push": True, "auth": auth}
        job = finished(http, http.post("/builds", json=body).json()["job_id"])
        assert job["status"] == "succeeded", job
        assert job["digest"].startswith("sha256:") and job["progress"]
        # Pulled back: progress per layer, readable in the job.
        docker("rmi", image)
        resp = http.post("/images/pull", json={"image": image, "auth": auth})
        assert resp.status_code == 202, resp.text
        pulled = finished(http, resp.json()["job_id"])
        assert pulled["status"] == "succeeded" and pulled["kind"] == "pull", pulled
        assert pulled["image_id"] == job["image_id"] and pulled["progress"]
        assert docker("image", "inspect", "--format", "{{.Id}}", image).strip() == job["image_id"]
        bad = {**body, "auth": {**auth, "password": wrong}}
        failed = finished(http, http.post("/builds", json=bad).json()["job_id"])
        assert failed["status"] == "failed" and failed["error"]["kind"] == "auth_error", failed
        assert failed["error"]["step"] == f"push {image}"
        logs = http.get(f"/builds/{failed['job_id']}/logs").text
        events = http.get("/events").text
        everything = json.dumps(failed) + json.dumps(job) + logs + events
    everything += server.output.read_text()
    everything += "".join(p.read_text() for p in (tmp_path / "logs").rglob("*") if p.is_file())
    assert wrong not in everything and REGISTRY_PASS not in everything

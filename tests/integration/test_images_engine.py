"""``DockerImages`` against the real engine and a local registry (scripts/test-registry.sh).

The test images are never removed: the tests tag copies of them and remove the copies.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.images import DockerImages
from dockyard.domain.images.ports import BuildSpec, Progress, ProgressKind, RegistryAuth
from dockyard.errors import AuthError, ConflictError, EngineError, NotFoundError
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.registry import REGISTRY, REGISTRY_PASS, REGISTRY_USER, require_registry

pytestmark = pytest.mark.docker


@pytest.fixture
async def images() -> AsyncIterator[DockerImages]:
    engine = DockerEngine(None, 30.0)
    try:
        yield DockerImages(engine, idle=5.0)
    finally:
        await engine.close()


@pytest.fixture
def repo() -> Iterator[str]:
    """A unique repository name; every image tagged into it is removed afterwards."""
    name = f"dockyard-itest/img-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).split()
        mine = [t for t in tags if name in t]
        if mine:
            docker("rmi", "-f", *mine, check=False)


def context_tar(path: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


async def collect(stream: AsyncIterator[Progress]) -> list[Progress]:
    return [p async for p in stream]


async def test_list_inspect_tag_and_remove_a_copy(images: DockerImages, repo: str) -> None:
    listed = await images.list_images()
    busybox = next(i for i in listed if BUSYBOX in i.tags)
    assert busybox.id.startswith("sha256:") and busybox.size > 0 and busybox.architecture
    assert busybox.labels.get("dockyard.test") == "true"

    await images.tag_image(BUSYBOX, repo, "copy")
    copy = await images.inspect_image(f"{repo}:copy")
    assert copy is not None and copy.id == busybox.id and f"{repo}:copy" in copy.tags

    await images.remove_image(f"{repo}:copy", force=False)
    assert await images.inspect_image(f"{repo}:copy") is None
    assert await images.inspect_image(BUSYBOX) is not None  # the original stays
    with pytest.raises(NotFoundError):
        await images.remove_image(f"{repo}:copy", force=False)


async def test_an_image_a_container_uses_is_a_conflict(images: DockerImages, repo: str) -> None:
    await images.tag_image(BUSYBOX, repo, "used")
    name = f"dockyard-itest-{uuid.uuid4().hex[:8]}"
    docker("create", "--name", name, f"{repo}:used", "true")
    try:
        # The tag alone can go (the image stays under its other names): force the id.
        info = await images.inspect_image(f"{repo}:used")
        assert info is not None
        built = await collect(
            images.build(
                BuildSpec(
                    context_tar(Path(f"/tmp/{name}.tar"), f"FROM {repo}:used\nLABEL x=y\n"),
                    "Dockerfile",
                    (f"{repo}:child",),
                )
            )
        )
        child = next(p.image_id for p in built if p.kind == ProgressKind.RESULT)
        assert child is not None
        docker("create", "--name", f"{name}-c", f"{repo}:child", "true")
        with pytest.raises(ConflictError) as refused:
            await images.remove_image(child, force=False)
        assert refused.value.code == "IMAGE_IN_USE"
    finally:
        docker("rm", "-f", name, f"{name}-c", check=False)
        Path(f"/tmp/{name}.tar").unlink(missing_ok=True)


async def test_build_streams_steps_logs_and_the_image(
    images: DockerImages, repo: str, tmp_path: Path
) -> None:
    dockerfile = (
        "FROM dockyard-test/busybox:latest\n"
        "ARG GREETING=hello\n"
        "COPY data.txt /data.txt\n"
        "RUN echo $GREETING-$(cat /data.txt)\n"
        "EXPOSE 8080\n"
    )
    spec = BuildSpec(
        context_tar(tmp_path / "ctx.tar", dockerfile, {"data.txt": b"payload"}),
        "Dockerfile",
        (f"{repo}:a", f"{repo}:b"),
        build_args={"GREETING": "hi"},
        labels={"dockyard.itest": "1"},
        no_cache=True,
        memory=256 * 1024**2,
        cpus=0.5,
    )
    progress = await collect(images.build(spec))
    steps = [p for p in progress if p.kind == ProgressKind.STEP]
    # The labels come as one more step (LABEL) at the end.
    assert [(p.step, p.total) for p in steps] == [(i, 6) for i in range(1, 7)]
    assert steps[3].text.startswith("RUN echo")
    assert any("hi-payload" in p.text for p in progress if p.kind == ProgressKind.LOG)
    result = [p for p in progress if p.kind == ProgressKind.RESULT]
    assert result and result[0].image_id and result[0].image_id.startswith("sha256:")
    info = await images.inspect_image(f"{repo}:b")
    assert info is not None and info.id == result[0].image_id
    assert info.exposed_ports == ("8080/tcp",) and info.labels["dockyard.itest"] == "1"


async def test_a_failing_run_is_an_error_after_its_step(
    images: DockerImages, repo: str, tmp_path: Path
) -> None:
    spec = BuildSpec(
        context_tar(tmp_path / "ctx.tar", "FROM dockyard-test/busybox:latest\nRUN exit 3\n"),
        "Dockerfile",
        (f"{repo}:x",),
    )
    progress = await collect(images.build(spec))
    assert progress[-1].kind == ProgressKind.ERROR and "returned a non-zero code: 3" in (
        progress[-1].text
    )
    assert [p.step for p in progress if p.kind == ProgressKind.STEP] == [1, 2]


async def test_closing_a_build_stops_it_on_the_engine(
    images: DockerImages, repo: str, tmp_path: Path
) -> None:
    """Measured: the RUN container is gone ~0.2-1 s after aclose (engine 20.10)."""
    marker = uuid.uuid4().hex
    spec = BuildSpec(
        context_tar(
            tmp_path / "ctx.tar",
            f"FROM dockyard-test/busybox:latest\nRUN echo {marker} && sleep 60\n",
        ),
        "Dockerfile",
        (f"{repo}:slow",),
        no_cache=True,
    )
    stream = images.build(spec)
    async for progress in stream:
        if marker in progress.text and progress.kind == ProgressKind.LOG:
            break

    def running() -> list[str]:
        rows = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}").splitlines()
        return [r for r in rows if marker in r]

    assert running(), "the RUN step's container runs"
    closed = time.monotonic()
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.to_thread(wait_for, lambda: not running() or None, 10, "the RUN container gone")
    assert time.monotonic() - closed < 10


async def test_push_and_pull_with_the_right_password(
    images: DockerImages, repo: str, tmp_path: Path
) -> None:
    require_registry()
    target = f"{REGISTRY}/{repo}"
    await images.tag_image(BUSYBOX, target, "v1")
    auth = RegistryAuth(REGISTRY, REGISTRY_USER, REGISTRY_PASS)
    pushed = await collect(images.push(f"{target}:v1", auth))
    digest = next(p.digest for p in pushed if p.kind == ProgressKind.RESULT)
    assert digest and digest.startswith("sha256:")
    assert any(p.kind == ProgressKind.LAYER and p.layer for p in pushed)

    await images.remove_image(f"{target}:v1", force=False)
    pulled = await collect(images.pull(f"{target}:v1", auth))
    assert any(p.kind == ProgressKind.STATUS and digest in p.text for p in pulled)
    info = await images.inspect_image(f"{target}:v1")
    assert info is not None and any(digest in d for d in info.digests)


async def test_a_wrong_password_is_an_auth_error_without_it(
    images: DockerImages, repo: str
) -> None:
    require_registry()
    target = f"{REGISTRY}/{repo}"
    await images.tag_image(BUSYBOX, target, "v1")
    secret = f"wrong-{uuid.uuid4().hex}"
    auth = RegistryAuth(REGISTRY, REGISTRY_USER, secret)
    for stream in (images.push(f"{target}:v1", auth), images.pull(f"{target}:v1", auth)):
        with pytest.raises(AuthError) as refused:
            await collect(stream)
        assert refused.value.code == "REGISTRY_AUTH_FAILED"
        assert secret not in str(refused.value) and secret not in repr(refused.value.details)


async def test_a_registry_that_does_not_answer_ends_at_the_idle_deadline(
    images: DockerImages,
) -> None:
    # A listener that accepts and never answers: the engine waits on it.
    silent = subprocess.Popen(
        [
            "python3",
            "-c",
            "import socket,time;s=socket.socket();s.bind(('127.0.0.1',5999));"
            "s.listen(8);print('ok',flush=True);time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert silent.stdout is not None and silent.stdout.readline().strip() == b"ok"
        started = time.monotonic()
        with pytest.raises(EngineError) as failed:
            await collect(images.pull("127.0.0.1:5999/nothing/here:1", None))
        assert failed.value.code == "REGISTRY_UNREACHABLE"
        assert time.monotonic() - started < 15
    finally:
        silent.kill()
        silent.wait()
        if silent.stdout is not None:
            silent.stdout.close()


async def test_ensure_build_network(images: DockerImages) -> None:
    name = f"dockyard-itest-build-{uuid.uuid4().hex[:8]}"
    try:
        await images.ensure_build_network(name)
        await images.ensure_build_network(name)  # idempotent
        assert "dockyard.managed" in docker("network", "inspect", name)
        await images.ensure_build_network("none")
    finally:
        docker("network", "rm", name, check=False)

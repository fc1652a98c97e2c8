"""Helpers for tests that use the real Docker engine (through the docker CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

BUSYBOX = "dockyard-test/busybox:latest"
PYTHON = "dockyard-test/python:latest"
TEST_NETWORK = "dockyard-test"

T = TypeVar("T")


def docker(*args: str, check: bool = True, timeout: float = 60) -> str:
    out = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def image_present(ref: str) -> bool:
    out = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, timeout=30, check=False
    )
    return out.returncode == 0


def inspect(name: str) -> dict[str, Any]:
    return json.loads(docker("inspect", name))[0]  # type: ignore[no-any-return]


def engine_ready() -> str | None:
    """None when the engine and test images are there, else why not."""
    try:
        docker("info", timeout=15)
    except (AssertionError, OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine: {exc}"
    for image in (BUSYBOX, PYTHON):
        if not image_present(image):
            return f"test image {image} missing (run scripts/test-images.sh)"
    return None


def require_engine() -> None:
    reason = engine_ready()
    if reason is None:
        return
    if os.environ.get("DOCKYARD_REQUIRE_DOCKER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def project_containers(cuid: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={cuid}").split()


def remove_project(cuid: str) -> None:
    ids = project_containers(cuid)
    if ids:
        docker("rm", "-f", *ids, check=False)


def remove_projects(containers_dir: Path) -> None:
    """Remove the containers of every project a test's DATA_DIR still holds."""
    if containers_dir.exists():
        for cuid in os.listdir(containers_dir):
            remove_project(cuid)


def wait_for(probe: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    """Poll a condition until it holds (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# busybox's httpd serving the container's whole tree on 8000 (EXPOSEd): /etc/hostname tells
# containers apart, /app/<file> shows what was uploaded. dockyard-test/python has no http.
HTTP_DOCKERFILE = b"""FROM dockyard-test/busybox:latest
EXPOSE 8000
CMD ["httpd", "-f", "-p", "8000", "-h", "/"]
"""


@contextmanager
def local_image(name: str, dockerfile: bytes = HTTP_DOCKERFILE) -> Iterator[str]:
    """An image built here from ``dockerfile`` (the classic builder: local FROM only, never
    pulled) under a unique tag of ``name``; removed afterwards."""
    import uuid

    ref = f"{name}:{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["docker", "build", "-q", "--label", "dockyard.test=true", "-t", ref, "-"],
        input=dockerfile,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield ref
    finally:
        docker("rmi", "-f", ref, check=False)

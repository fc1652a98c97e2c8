"""Every build source through the real server and engine, each ending in a container that
runs the image (issue 10, "done means"): an uploaded tar and ZIP context (raw bodies),
a ``tar_url`` on a local HTTP server and a ``git`` repository served by ``git
http-backend`` (both allowed for the test through ``FETCH_ALLOW_NETS`` and
``GIT_ALLOW_HTTP_HOSTS``). The Dockerfile-text source is in test_builds_e2e.py."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.e2e.test_builds_e2e import client, finished, followed_log, tag, tar_of
from tests.git_helpers import commit, git_http_server, make_repo, publish
from tests.server import ServeFactory, Server

pytestmark = pytest.mark.docker


DOCKERFILE = f"FROM {BUSYBOX}\nCOPY word.txt /word.txt\nRUN test -s /word.txt\n"


@pytest.fixture
def tags() -> Iterator[list[str]]:
    """Tags a test builds; removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        docker("rmi", "-f", name, check=False)


@pytest.fixture
def sources_server(serve: ServeFactory) -> Server:
    return serve(fetch_allow_nets="127.0.0.1/32", git_allow_http_hosts="127.0.0.1")


def built_and_run(http: httpx.Client, resp: httpx.Response, image: str, word: str) -> None:
    """The build answered 202, succeeds, and a container from its image prints ``word``."""
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    log = followed_log(http, job_id)
    job: dict[str, Any] = finished(http, job_id)
    assert job["status"] == "succeeded", (job, log)
    made = http.post(
        "/containers", json={"image": image, "command": ["cat", "/word.txt"], "start": True}
    )
    assert made.status_code == 201, made.text
    cuid = made.json()["cuid"]
    try:
        wait_for(
            lambda: http.get(f"/containers/{cuid}/status").json()["status"] == "exited",
            60,
            "the container to exit",
        )
        assert word in http.get(f"/containers/{cuid}/logs").text
    finally:
        http.delete(f"/containers/{cuid}")


def test_an_uploaded_tar_context_builds_an_image_that_runs(
    sources_server: Server, tags: list[str]
) -> None:
    image = tag(tags, "tar")
    body = tar_of({"Dockerfile": DOCKERFILE.encode(), "word.txt": b"from-a-tar\n"})
    with client(sources_server) as http:
        resp = http.post(
            "/builds",
            content=body,
            params={"tags": image},
            headers={"Content-Type": "application/x-tar"},
        )
        built_and_run(http, resp, image, "from-a-tar")


def test_an_uploaded_zip_context_builds_an_image_that_runs(
    sources_server: Server, tags: list[str]
) -> None:
    image = tag(tags, "zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Dockerfile", DOCKERFILE)
        archive.writestr("word.txt", "from-a-zip\n")
    with client(sources_server) as http:
        resp = http.post(
            "/builds",
            content=buf.getvalue(),
            params={"tags": image},
            headers={"Content-Type": "application/zip"},
        )
        built_and_run(http, resp, image, "from-a-zip")


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1; yields it and its base URL."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_tar_url_context_builds_an_image_that_runs(
    sources_server: Server,
    tags: list[str],
    http_folder: tuple[Path, str],
) -> None:
    folder, base = http_folder
    files = {"Dockerfile": DOCKERFILE.encode(), "word.txt": b"from-a-url\n"}
    (folder / "context.tar.gz").write_bytes(tar_of(files, mode="w:gz"))
    image = tag(tags, "url")
    with client(sources_server) as http:
        resp = http.post("/builds", json={"tar_url": f"{base}/context.tar.gz", "tags": [image]})
        built_and_run(http, resp, image, "from-a-url")


def test_a_git_repository_builds_an_image_that_runs(
    sources_server: Server,
    tags: list[str],
    tmp_path: Path,
) -> None:
    work = make_repo(tmp_path / "repo", {"app/Dockerfile": DOCKERFILE, "README": "x"})
    commit(work, {"app/word.txt": "from-git-v2\n"}, "second")
    served = tmp_path / "served"
    served.mkdir()
    publish(work, served)
    image = tag(tags, "git")
    with git_http_server(served) as base, client(sources_server) as http:
        resp = http.post(
            "/builds",
            json={
                "git": {"url": f"{base}/repo.git", "ref": "main", "subdir": "app"},
                "tags": [image],
            },
        )
        built_and_run(http, resp, image, "from-git-v2")

"""Git and tar_url sources for real: git over smart HTTP (``git http-backend``) and
Python's http.server on 127.0.0.1, allowed for these tests as an admin would allow
them (``git_allow_http_hosts``, ``FETCH_ALLOW_NETS``). No Docker, no internet."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.git import CliGitFetcher
from dockyard.domain.images.contexts import (
    ContextBuilder,
    ContextLimits,
    GitSource,
    TarUrlSource,
)
from dockyard.errors import DeadlineError, ValidationError
from tests.context_helpers import M, assert_only_safe_members, tar_members, tar_text, write_tar
from tests.git_helpers import commit, git, git_http_server, make_repo, publish, silent_server

LOCAL = parse_networks("127.0.0.1/32")
JOB = "job-1"


@dataclass
class Repo:
    base: str  # http://127.0.0.1:<port>
    url: str  # the repository's URL
    first: str  # the first commit (tag v1)
    work: Path
    served: Path


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    work = make_repo(
        tmp_path,
        {"Dockerfile": "FROM one\n", "app/Dockerfile": "FROM app\n", "app/main.py": "print(1)\n"},
    )
    first = git(work, "rev-parse", "HEAD")
    git(work, "tag", "-a", "v1", "-m", "release 1")
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, {"Dockerfile": "FROM feature\n"}, "feature")
    git(work, "checkout", "-q", "main")
    commit(work, {"Dockerfile": "FROM two\n"}, "second")
    served = tmp_path / "served"
    served.mkdir()
    publish(work, served)
    with git_http_server(served) as base:
        yield Repo(base, f"{base}/repo.git", first, work, served)


def git_fetcher(timeout: float = 30.0, hosts: tuple[str, ...] = ("127.0.0.1",)) -> CliGitFetcher:
    return CliGitFetcher(timeout=timeout, allow_http_hosts=hosts, allow_nets=LOCAL)


def context_builder(tmp_path: Path, git: CliGitFetcher | None = None) -> ContextBuilder:
    fetcher = HttpUrlFetcher(max_bytes=10 * 1024 * 1024, timeout=10.0, allow_nets=LOCAL)
    return ContextBuilder(
        tmp_path / "jobs", ContextLimits(max_bytes=1024 * 1024), fetcher, git or git_fetcher()
    )


@pytest.mark.parametrize(
    ("ref", "dockerfile"),
    [
        (None, "FROM two\n"),
        ("main", "FROM two\n"),
        ("feature", "FROM feature\n"),
        ("v1", "FROM one\n"),
    ],
)
async def test_a_branch_a_tag_or_the_default_branch(
    tmp_path: Path, repo: Repo, ref: str | None, dockerfile: str
) -> None:
    ctx = await context_builder(tmp_path).prepare(GitSource(repo.url, ref), job_id=JOB)
    assert tar_text(ctx.tar, "Dockerfile") == dockerfile
    assert not any(name.startswith(".git") for name in tar_members(ctx.tar))
    assert_only_safe_members(ctx.tar)
    assert os.listdir(tmp_path / "jobs" / JOB) == ["context.tar"]


async def test_a_commit_id_and_a_subdir(tmp_path: Path, repo: Repo) -> None:
    ctx = await context_builder(tmp_path).prepare(
        GitSource(repo.url, repo.first, subdir="app"), job_id=JOB
    )
    assert set(tar_members(ctx.tar)) == {"Dockerfile", "main.py"}
    assert tar_text(ctx.tar, "Dockerfile") == "FROM app\n"


async def test_the_checkout_is_the_commit_asked_for(tmp_path: Path, repo: Repo) -> None:
    checkout = await git_fetcher().fetch(repo.url, "v1", tmp_path / "dest", max_bytes=10**6)
    assert checkout.commit == repo.first
    assert not (checkout.tree / ".git").exists()


async def test_a_ref_the_repository_does_not_have(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(ValidationError) as caught:
        await context_builder(tmp_path).prepare(GitSource(repo.url, "nope"), job_id=JOB)
    assert (caught.value.code, caught.value.details["field"]) == ("GIT_REF_NOT_FOUND", "git.ref")
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_a_repository_that_does_not_exist(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(ValidationError) as caught:
        await context_builder(tmp_path).prepare(GitSource(f"{repo.base}/nope.git"), job_id=JOB)
    assert caught.value.code == "GIT_FETCH_FAILED"
    assert not (tmp_path / "jobs" / JOB).exists()


@pytest.mark.parametrize(
    ("url_of", "ref", "code"),
    [
        (lambda r: r.url, "--upload-pack=touch /tmp/dockyard-pwned", "GIT_REF_INVALID"),
        (lambda r: r.url, "-q", "GIT_REF_INVALID"),
        (lambda r: f"file://{r.served}/repo.git", None, "GIT_URL_NOT_ALLOWED"),
        (lambda r: f"ext::git http-backend {r.served}", None, "GIT_URL_NOT_ALLOWED"),
        (lambda r: f"{r.served}/repo.git", None, "GIT_URL_NOT_ALLOWED"),
        (lambda r: r.url.replace("127.0.0.1", "localhost"), None, "GIT_URL_NOT_ALLOWED"),
    ],
)
async def test_refused_before_git_runs(
    tmp_path: Path, repo: Repo, url_of: object, ref: str | None, code: str
) -> None:
    url = url_of(repo)  # type: ignore[operator]
    with pytest.raises(ValidationError) as caught:
        await context_builder(tmp_path).prepare(GitSource(url, ref), job_id=JOB)
    assert caught.value.code == code
    assert not (tmp_path / "jobs" / JOB).exists()
    assert not Path("/tmp/dockyard-pwned").exists()


async def test_loopback_is_refused_unless_an_admin_allows_it(tmp_path: Path, repo: Repo) -> None:
    strict = CliGitFetcher(timeout=10, allow_http_hosts=("127.0.0.1",))
    with pytest.raises(ValidationError) as caught:
        await context_builder(tmp_path, strict).prepare(GitSource(repo.url), job_id=JOB)
    assert caught.value.code == "GIT_URL_NOT_ALLOWED"
    assert "loopback" in caught.value.message


async def test_a_repository_with_a_link_out_of_the_tree(tmp_path: Path, repo: Repo) -> None:
    os.symlink("/etc/passwd", repo.work / "passwd")
    commit(repo.work, {}, "a link out")
    publish(repo.work, repo.served)
    with pytest.raises(ValidationError) as caught:
        await context_builder(tmp_path).prepare(GitSource(repo.url), job_id=JOB)
    assert (caught.value.code, caught.value.details["entry"]) == ("CONTEXT_LINK_OUTSIDE", "passwd")
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_a_checkout_past_the_size_limit_is_413(tmp_path: Path, repo: Repo) -> None:
    commit(repo.work, {"big.bin": os.urandom(3 * 1024 * 1024)}, "big")
    publish(repo.work, repo.served)
    with pytest.raises(Exception) as caught:
        await context_builder(tmp_path).prepare(GitSource(repo.url), job_id=JOB)
    assert getattr(caught.value, "code", None) == "CONTEXT_TOO_LARGE"
    assert not (tmp_path / "jobs" / JOB).exists()


def _processes_using(folder: Path) -> list[int]:
    """Processes whose environment names ``folder`` (git's GIT_DIR lies inside it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in environ:
            found.append(int(pid))
    return found


async def test_a_server_that_never_answers_hits_the_deadline(tmp_path: Path) -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DeadlineError) as caught:
            await context_builder(tmp_path, git_fetcher(timeout=2.0)).prepare(
                GitSource(f"http://127.0.0.1:{port}/repo.git"), job_id=JOB
            )
        took = time.monotonic() - started
    assert caught.value.code == "GIT_TIMEOUT"
    assert took < 5.0
    assert _processes_using(tmp_path / "jobs") == []
    assert not (tmp_path / "jobs" / JOB).exists()


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


async def test_tar_url_through_the_real_fetcher(
    tmp_path: Path, http_folder: tuple[str, Path]
) -> None:
    base, root = http_folder
    write_tar(root / "good.tgz", [M("Dockerfile", b"FROM x\n"), M("a.txt", b"a")], mode="w:gz")
    write_tar(root / "bad.tgz", [M("Dockerfile", b"FROM x\n"), M("../x", b"a")], mode="w:gz")
    builder = context_builder(tmp_path)
    ctx = await builder.prepare(TarUrlSource(f"{base}/good.tgz"), job_id=JOB)
    assert set(tar_members(ctx.tar)) == {"Dockerfile", "a.txt"}
    with pytest.raises(ValidationError) as caught:
        await builder.prepare(TarUrlSource(f"{base}/bad.tgz"), job_id="job-2")
    assert (caught.value.code, caught.value.details["field"]) == ("CONTEXT_PATH_OUTSIDE", "tar_url")
    strict = ContextBuilder(
        tmp_path / "jobs",
        ContextLimits(max_bytes=1024 * 1024),
        HttpUrlFetcher(max_bytes=1024 * 1024, timeout=10.0),
        git_fetcher(),
    )
    with pytest.raises(ValidationError) as caught:
        await strict.prepare(TarUrlSource(f"{base}/good.tgz"), job_id="job-3")
    assert caught.value.details["field"] == "tar_url"
    assert sorted(os.listdir(tmp_path / "jobs")) == [JOB]

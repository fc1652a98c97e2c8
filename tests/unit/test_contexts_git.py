"""Git sources without a network: which URLs and refs are refused before git runs, seed
002's GitHub triple, and how a checkout (a folder on disk) becomes the context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.adapters.git import CliGitFetcher
from dockyard.domain.images import gitrules
from dockyard.domain.images.contexts import (
    ContextBuilder,
    ContextLimits,
    GitSource,
    github_source,
)
from dockyard.errors import ValidationError
from tests.context_helpers import assert_only_safe_members, tar_members
from tests.unit.test_contexts import FakeFetcher, FakeGit

JOB = "job-git"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "ext::sh -c touch% /tmp/pwned",
        "ext::sh",
        "ssh://git@github.com/a/b.git",
        "git@github.com:a/b.git",
        "git://github.com/a/b.git",
        "http://github.com/a/b.git",  # http only to hosts an admin allows
        "fd::17",
        "-uhttps://github.com/a/b.git",
        "--upload-pack=touch /tmp/x",
        "https://github.com/a/b.git --upload-pack=x",
        "https://github.com/a/b\n.git",
        "https://user:token@github.com/a/b.git",
        "https://github.com/a/b.git?x=1",
        "https://github.com/",
        "https:///a/b.git",
        "",
    ],
)
def test_urls_that_are_refused_before_git_runs(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        gitrules.check_url(url, allow_http_hosts=())
    assert (caught.value.code, caught.value.details["field"]) == ("GIT_URL_NOT_ALLOWED", "git.url")


def test_http_only_to_hosts_an_admin_allows() -> None:
    assert (
        gitrules.check_url("http://git.lan:8080/r.git", allow_http_hosts={"git.lan"}).port == 8080
    )
    assert (
        gitrules.check_url("https://github.com/a/b.git", allow_http_hosts=()).hostname
        == "github.com"
    )
    with pytest.raises(ValidationError):
        gitrules.check_url("http://other.lan/r.git", allow_http_hosts={"git.lan"})


@pytest.mark.parametrize(
    "ref",
    [
        "-v",
        "--upload-pack=touch /tmp/x",
        "main branch",
        "main\n",
        "a..b",
        "a@{1}",
        "@",
        "refs/heads/x.lock",
        "x/",
        ".hidden",
        "a/.b",
        "a:b",
        "a~1",
        "a^",
        "*",
        "a\\b",
        "",
        "x" * 300,
    ],
)
def test_refs_that_are_refused(ref: str) -> None:
    with pytest.raises(ValidationError) as caught:
        gitrules.check_ref(ref)
    assert (caught.value.code, caught.value.details["field"]) == ("GIT_REF_INVALID", "git.ref")


@pytest.mark.parametrize(
    "ref", ["main", "v1.0", "release/2024-01", "refs/tags/v1", "refs/pull/12/head", "a" * 40]
)
def test_refs_that_are_fetched(ref: str) -> None:
    assert gitrules.check_ref(ref) == ref


def test_github_source_maps_seed_002_fields() -> None:
    source = github_source("tutumcloud", "docker-hello-world", "v1.0")
    assert source == GitSource("https://github.com/tutumcloud/docker-hello-world.git", "v1.0")
    assert github_source("a-b", "c.d_e", None).ref is None
    assert github_source("a", "b.git", "").url == "https://github.com/a/b.git"


@pytest.mark.parametrize(
    ("username", "reponame", "tag", "field"),
    [
        ("-a", "b", None, "github_username"),
        ("a--b", "b", None, "github_username"),
        ("a/b", "b", None, "github_username"),
        ("a" * 40, "b", None, "github_username"),
        ("a", "..", None, "github_reponame"),
        ("a", "b/c", None, "github_reponame"),
        ("a", "b c", None, "github_reponame"),
        ("a", "b", "--upload-pack=x", "github_tag"),
    ],
)
def test_github_source_refusals(username: str, reponame: str, tag: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        github_source(username, reponame, tag)
    assert caught.value.details["field"] == field


async def test_the_fetcher_refuses_before_running_anything(tmp_path: Path) -> None:
    fetcher = CliGitFetcher(timeout=5, binary="/nonexistent/git")
    for url, ref in [("https://github.com/a/b.git", "--upload-pack=x"), ("file:///etc", None)]:
        with pytest.raises(ValidationError):
            await fetcher.fetch(url, ref, tmp_path / "dest", max_bytes=1000)
    assert not (tmp_path / "dest").exists()


async def test_the_fetcher_refuses_hosts_that_resolve_inside(tmp_path: Path) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"metadata.lan": ["169.254.169.254"], "mixed.lan": ["8.8.8.8", "10.0.0.1"]}[host]

    fetcher = CliGitFetcher(timeout=5, resolver=resolver, binary="/nonexistent/git")
    for host in ("metadata.lan", "mixed.lan"):
        with pytest.raises(ValidationError) as caught:
            await fetcher.fetch(f"https://{host}/r.git", None, tmp_path / "dest", max_bytes=1000)
        assert caught.value.code == "GIT_URL_NOT_ALLOWED"
    assert not (tmp_path / "dest").exists()


def checkout_builder(tmp_path: Path, folder: Path) -> ContextBuilder:
    return ContextBuilder(
        tmp_path / "jobs", ContextLimits(max_bytes=1024 * 1024), FakeFetcher({}), FakeGit(folder)
    )


def a_checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "services" / "api").mkdir(parents=True)
    (repo / "Dockerfile").write_text("FROM root\n")
    (repo / "services" / "api" / "Dockerfile").write_text("FROM api\n")
    (repo / "services" / "api" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(repo / "services" / "api" / "run.sh", 0o755)
    os.symlink("Dockerfile", repo / "services" / "api" / "Containerfile")
    return repo


async def test_a_subdir_of_the_checkout_is_the_context(tmp_path: Path) -> None:
    repo = a_checkout(tmp_path)
    ctx = await checkout_builder(tmp_path, repo).prepare(
        GitSource("https://h/r.git", subdir="./services//api/"), job_id=JOB
    )
    members = tar_members(ctx.tar)
    assert set(members) == {"Dockerfile", "run.sh", "Containerfile"}
    assert members["run.sh"].mode == 0o755
    assert_only_safe_members(ctx.tar)
    assert os.listdir(tmp_path / "jobs" / JOB) == ["context.tar"]  # the checkout is gone


@pytest.mark.parametrize(
    ("subdir", "code"),
    [
        ("../x", "CONTEXT_PATH_OUTSIDE"),
        ("/services", "CONTEXT_PATH_OUTSIDE"),
        ("services/../..", "CONTEXT_PATH_OUTSIDE"),
        ("nothing", "SUBDIR_NOT_FOUND"),
        ("Dockerfile", "SUBDIR_NOT_FOUND"),
        ("link", "SUBDIR_NOT_FOUND"),
    ],
)
async def test_subdir_refusals(tmp_path: Path, subdir: str, code: str) -> None:
    repo = a_checkout(tmp_path)
    os.symlink("services", repo / "link")
    with pytest.raises(ValidationError) as caught:
        await checkout_builder(tmp_path, repo).prepare(
            GitSource("https://h/r.git", subdir=subdir), job_id=JOB
        )
    assert (caught.value.code, caught.value.details["field"]) == (code, "git.subdir")
    assert not (tmp_path / "jobs" / JOB).exists()


@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/passwd", "../Dockerfile"])
async def test_a_checkout_with_a_link_out_of_the_context_is_refused(
    tmp_path: Path, target: str
) -> None:
    repo = a_checkout(tmp_path)
    os.symlink(target, repo / "services" / "api" / "secret")
    with pytest.raises(ValidationError) as caught:
        await checkout_builder(tmp_path, repo).prepare(
            GitSource("https://h/r.git", subdir="services/api"), job_id=JOB
        )
    assert (caught.value.code, caught.value.details["field"]) == ("CONTEXT_LINK_OUTSIDE", "git")
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_a_checkout_with_a_fifo_is_refused(tmp_path: Path) -> None:
    repo = a_checkout(tmp_path)
    os.mkfifo(repo / "pipe")
    with pytest.raises(ValidationError) as caught:
        await checkout_builder(tmp_path, repo).prepare(GitSource("https://h/r.git"), job_id=JOB)
    assert caught.value.code == "UNSAFE_ARCHIVE_ENTRY"

"""Build contexts from uploaded archives and Dockerfile text: what is refused, what the
engine receives (a tar Dockyard wrote), and that nothing is left behind."""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from dockyard.domain.images.contexts import (
    ArchiveSource,
    ContextBuilder,
    ContextLimits,
    DockerfileSource,
    GitCheckout,
    PreparedContext,
    TarUrlSource,
)
from dockyard.domain.ports import Fetched
from dockyard.errors import DockyardError, PayloadTooLargeError, ValidationError
from tests.context_helpers import (
    M,
    assert_only_safe_members,
    tar_members,
    tar_text,
    write_tar,
    write_zip,
)

DOCKERFILE = M("Dockerfile", b"FROM dockyard-test/busybox:latest\n")
JOB = "job-1"


class FakeFetcher:
    """A UrlFetcher that 'downloads' a local file (the real one is tested elsewhere)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    async def fetch(self, url: str, dest: Path, *, field: str) -> Fetched:
        shutil.copyfile(self.files[url], dest)
        return Fetched(url, dest.stat().st_size)


class FakeGit:
    """A GitFetcher whose 'checkout' is a local folder (the real one: test_git_fetch.py)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder

    async def fetch(self, url: str, ref: str | None, dest: Path, *, max_bytes: int) -> GitCheckout:
        assert self.folder is not None
        return GitCheckout(tree=self.folder, commit="0" * 40)


def builder(tmp_path: Path, max_bytes: int = 1024 * 1024, max_entries: int = 50) -> ContextBuilder:
    return ContextBuilder(
        tmp_path / "jobs",
        ContextLimits(max_bytes=max_bytes, max_entries=max_entries),
        FakeFetcher({}),
        FakeGit(),
    )


async def prepare_archive(
    tmp_path: Path, archive: Path, dockerfile: str = "Dockerfile", **limits: int
) -> PreparedContext:
    return await builder(tmp_path, **limits).prepare(
        ArchiveSource(archive), dockerfile=dockerfile, job_id=JOB
    )


async def refused(tmp_path: Path, archive: Path, dockerfile: str = "Dockerfile") -> DockyardError:
    with pytest.raises(DockyardError) as caught:
        await prepare_archive(tmp_path, archive, dockerfile)
    assert not (tmp_path / "jobs" / JOB).exists(), "a refusal leaves nothing behind"
    return caught.value


HOSTILE_TARS = [
    ([M("../x", b"x")], "CONTEXT_PATH_OUTSIDE"),
    ([M("./../x", b"x")], "CONTEXT_PATH_OUTSIDE"),
    ([M("a/../../x", b"x")], "CONTEXT_PATH_OUTSIDE"),
    ([M("/etc/x", b"x")], "CONTEXT_PATH_OUTSIDE"),
    ([M("passwd", kind="sym", target="/etc/passwd")], "CONTEXT_LINK_OUTSIDE"),
    ([M("a", kind="sym", target="../../x")], "CONTEXT_LINK_OUTSIDE"),
    ([M("d/b", kind="sym", target="../../x")], "CONTEXT_LINK_OUTSIDE"),
    # Each link alone stays inside; followed as the engine follows them, it leaves.
    (
        [
            M("d", kind="dir"),
            M("d/up", kind="sym", target=".."),
            M("d/x", kind="sym", target="up/.."),
        ],
        "CONTEXT_LINK_OUTSIDE",
    ),
    (
        [M("loop", kind="sym", target="loop2"), M("loop2", kind="sym", target="loop")],
        "CONTEXT_LINK_OUTSIDE",
    ),
    ([M("etc", kind="sym", target="/etc"), M("etc/cron.d/x", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    ([M("a", kind="sym", target="sub"), M("a/x", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    ([M("shadow", kind="hard", target="/etc/shadow")], "CONTEXT_LINK_OUTSIDE"),
    ([M("x", kind="hard", target="../x")], "CONTEXT_LINK_OUTSIDE"),
    ([M("b", b"b"), M("x", kind="hard", target="b")], "UNSAFE_ARCHIVE_ENTRY"),
    ([M("fifo", kind="fifo")], "UNSAFE_ARCHIVE_ENTRY"),
    ([M("null", kind="chr")], "UNSAFE_ARCHIVE_ENTRY"),
    ([M("a", b"1"), M("a", b"2")], "UNSAFE_ARCHIVE_ENTRY"),
]


@pytest.mark.parametrize(("members", "code"), HOSTILE_TARS)
async def test_hostile_tar_members_are_refused(tmp_path: Path, members: list[M], code: str) -> None:
    archive = write_tar(tmp_path / "c.tar", [DOCKERFILE, *members])
    error = await refused(tmp_path, archive)
    assert isinstance(error, ValidationError)
    assert (error.code, error.details["field"]) == (code, "context")


@pytest.mark.parametrize(
    ("members", "code"),
    [
        ([M("../x", b"x")], "CONTEXT_PATH_OUTSIDE"),
        ([M("/x", b"x")], "CONTEXT_PATH_OUTSIDE"),
        ([M("a", kind="sym", target="/etc/passwd")], "CONTEXT_LINK_OUTSIDE"),
        ([M("a", kind="sym", target="../x")], "CONTEXT_LINK_OUTSIDE"),
        ([M("a\\..\\..\\x", b"x")], "CONTEXT_PATH_OUTSIDE"),
    ],
)
async def test_hostile_zip_members_are_refused(tmp_path: Path, members: list[M], code: str) -> None:
    archive = write_zip(tmp_path / "c.zip", [DOCKERFILE, *members])
    error = await refused(tmp_path, archive)
    assert (error.code, error.details["field"]) == (code, "context")


@pytest.mark.parametrize(
    "path",
    [
        "../Dockerfile",
        "/Dockerfile",
        "a/../../Dockerfile",
        "a/../Dockerfile",
        "",
        ".",
        "a\\b",
        "Docker\nfile",
    ],
)
async def test_dockerfile_paths_outside_the_context_are_refused(tmp_path: Path, path: str) -> None:
    archive = write_tar(tmp_path / "c.tar", [DOCKERFILE, M("a/b", b"")])
    error = await refused(tmp_path, archive, dockerfile=path)
    assert (error.code, error.details["field"]) == ("DOCKERFILE_OUTSIDE", "dockerfile_path")


@pytest.mark.parametrize("path", ["missing", "dir", "dangling", "Dockerfile/x"])
async def test_a_dockerfile_that_is_not_a_file_of_the_context(tmp_path: Path, path: str) -> None:
    archive = write_tar(
        tmp_path / "c.tar",
        [DOCKERFILE, M("dir", kind="dir"), M("dangling", kind="sym", target="nothing")],
    )
    error = await refused(tmp_path, archive, dockerfile=path)
    assert (error.code, error.details["field"]) == ("DOCKERFILE_NOT_FOUND", "dockerfile_path")


async def test_a_dockerfile_path_is_normalised_and_may_be_a_link_inside(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "c.tar",
        [
            M("build/Dockerfile.dev", b"FROM x\n"),
            M("Dockerfile", kind="sym", target="build/Dockerfile.dev"),
        ],
    )
    ctx = await prepare_archive(tmp_path, archive, dockerfile="./build//Dockerfile.dev")
    assert ctx.dockerfile == "build/Dockerfile.dev"
    ctx2 = await builder(tmp_path).prepare(ArchiveSource(archive), job_id="job-2")
    assert ctx2.dockerfile == "Dockerfile"
    assert tar_members(ctx2.tar)["Dockerfile"].linkname == "build/Dockerfile.dev"


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.bz2", "zip"])
async def test_archives_are_told_apart_by_content(tmp_path: Path, kind: str) -> None:
    members = [DOCKERFILE, M("src/app.py", b"print(1)\n"), M("run.sh", b"#!/bin/sh\n", mode=0o755)]
    plain = write_tar(tmp_path / "plain", members)
    archive = tmp_path / "upload.bin"  # no telling name
    if kind == "tar":
        shutil.copyfile(plain, archive)
    elif kind == "tar.gz":
        archive.write_bytes(gzip.compress(plain.read_bytes()))
    elif kind == "tar.bz2":
        archive.write_bytes(bz2.compress(plain.read_bytes()))
    else:
        write_zip(archive, members)
    ctx = await prepare_archive(tmp_path, archive)
    members_out = tar_members(ctx.tar)
    assert set(members_out) == {"Dockerfile", "src", "src/app.py", "run.sh"}
    assert members_out["run.sh"].mode == 0o755 and members_out["src/app.py"].mode == 0o644
    assert tar_text(ctx.tar, "src/app.py") == "print(1)\n"
    assert (ctx.entries, ctx.size) == (4, len(DOCKERFILE.data) + 9 + 10)
    assert_only_safe_members(ctx.tar)


async def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not an archive" * 100)
    error = await refused(tmp_path, junk)
    assert (error.code, error.details["field"]) == ("INVALID_ARCHIVE", "context")


async def test_links_inside_the_context_are_kept(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "c.tar",
        [
            DOCKERFILE,
            M("conf/app.ini", b"x"),
            M("app.ini", kind="sym", target="conf/app.ini"),
            M("conf/up", kind="sym", target=".."),
            M("conf/self", kind="sym", target="./up/conf"),
        ],
    )
    ctx = await prepare_archive(tmp_path, archive)
    members = tar_members(ctx.tar)
    assert members["app.ini"].issym() and members["app.ini"].linkname == "conf/app.ini"
    assert_only_safe_members(ctx.tar)


async def test_the_size_limit_is_413(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "c.tar", [DOCKERFILE, M("big", b"x" * 2000)])
    with pytest.raises(PayloadTooLargeError) as caught:
        await prepare_archive(tmp_path, archive, max_bytes=1000)
    assert (caught.value.code, caught.value.details["field"]) == ("CONTEXT_TOO_LARGE", "context")
    zipped = write_zip(tmp_path / "c.zip", [DOCKERFILE, M("big", b"x" * 2000)])
    with pytest.raises(PayloadTooLargeError) as caught:
        await prepare_archive(tmp_path, zipped, max_bytes=1000)
    assert caught.value.code == "CONTEXT_TOO_LARGE"
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_a_gzip_bomb_stops_at_the_limit_while_reading(tmp_path: Path) -> None:
    """200 MB of zeros in a tar.gz of ~200 KB: refused by the header walk, long before
    the zeros would be written anywhere."""
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        info = tarfile.TarInfo("zeros")
        info.size = 200 * 1024 * 1024
        out.write(info.tobuf(tarfile.PAX_FORMAT))
        block = bytes(1024 * 1024)
        for _ in range(200):
            out.write(block)
        out.write(bytes(1024))
    with pytest.raises(PayloadTooLargeError) as caught:
        await prepare_archive(tmp_path, bomb, max_bytes=10 * 1024 * 1024)
    assert caught.value.code in ("CONTEXT_TOO_LARGE", "COMPRESSION_RATIO")
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_the_entry_limit_is_413(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "c.tar", [DOCKERFILE, *(M(f"f{i}", b"") for i in range(20))])
    with pytest.raises(PayloadTooLargeError) as caught:
        await prepare_archive(tmp_path, archive, max_entries=10)
    assert caught.value.code == "TOO_MANY_ENTRIES"
    # Folders implied by names count too.
    nested = write_tar(tmp_path / "n.tar", [DOCKERFILE, M("a/b/c/d/e/f/g/h/i/j/k", b"")])
    with pytest.raises(PayloadTooLargeError):
        await prepare_archive(tmp_path, nested, max_entries=10)


async def test_dockerfile_text_alone(tmp_path: Path) -> None:
    ctx = await builder(tmp_path).prepare(DockerfileSource("FROM x\nRUN true\n"), job_id=JOB)
    assert (ctx.dockerfile, ctx.entries, ctx.size) == ("Dockerfile", 1, 16)
    assert tar_text(ctx.tar, "Dockerfile") == "FROM x\nRUN true\n"
    assert ctx.tar == tmp_path / "jobs" / JOB / "context.tar"
    assert_only_safe_members(ctx.tar)


async def test_dockerfile_text_with_extra_files_wins_over_their_dockerfile(tmp_path: Path) -> None:
    extra = write_zip(
        tmp_path / "extra.zip", [M("Dockerfile", b"FROM theirs\n"), M("app/main.py", b"1")]
    )
    ctx = await builder(tmp_path).prepare(DockerfileSource("FROM ours\n", extra), job_id=JOB)
    assert tar_text(ctx.tar, "Dockerfile") == "FROM ours\n"
    assert set(tar_members(ctx.tar)) == {"Dockerfile", "app", "app/main.py"}
    assert ctx.size == len("FROM ours\n") + 1


async def test_dockerfile_text_refusals(tmp_path: Path) -> None:
    folder = write_tar(tmp_path / "e.tar", [M("Dockerfile/x", b"")])
    with pytest.raises(ValidationError) as caught:
        await builder(tmp_path).prepare(DockerfileSource("FROM x\n", folder), job_id=JOB)
    assert caught.value.code == "DOCKERFILE_CONFLICT"
    hostile = write_tar(tmp_path / "h.tar", [M("../x", b"")])
    with pytest.raises(ValidationError) as caught:
        await builder(tmp_path).prepare(DockerfileSource("FROM x\n", hostile), job_id=JOB)
    assert caught.value.code == "CONTEXT_PATH_OUTSIDE"
    with pytest.raises(ValidationError) as caught:
        await builder(tmp_path).prepare(
            DockerfileSource("FROM x\n"), dockerfile="other", job_id=JOB
        )
    assert caught.value.details["field"] == "dockerfile_path"
    with pytest.raises(PayloadTooLargeError):
        await builder(tmp_path, max_bytes=10).prepare(DockerfileSource("FROM x\n" * 5), job_id=JOB)
    assert not (tmp_path / "jobs" / JOB).exists()


async def test_tar_url_is_read_like_an_upload(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "c.tar", [DOCKERFILE, M("../x", b"")], mode="w:gz")
    good = write_tar(tmp_path / "g.tar", [DOCKERFILE], mode="w:gz")
    ctx_builder = ContextBuilder(
        tmp_path / "jobs",
        ContextLimits(max_bytes=1024 * 1024),
        FakeFetcher({"https://e.example/bad.tgz": archive, "https://e.example/good.tgz": good}),
        FakeGit(),
    )
    with pytest.raises(ValidationError) as caught:
        await ctx_builder.prepare(TarUrlSource("https://e.example/bad.tgz"), job_id=JOB)
    assert (caught.value.code, caught.value.details["field"]) == ("CONTEXT_PATH_OUTSIDE", "tar_url")
    ctx = await ctx_builder.prepare(TarUrlSource("https://e.example/good.tgz"), job_id=JOB)
    assert os.listdir(tmp_path / "jobs" / JOB) == ["context.tar"]  # the download is gone
    assert set(tar_members(ctx.tar)) == {"Dockerfile"}


async def test_discard_leaves_nothing_and_is_idempotent(tmp_path: Path) -> None:
    ctx_builder = builder(tmp_path)
    upload = ctx_builder.job_dir(JOB) / "upload"
    write_tar(upload, [DOCKERFILE])
    ctx = await ctx_builder.prepare(ArchiveSource(upload), job_id=JOB)
    assert ctx.tar.exists()
    ctx_builder.discard(JOB)
    ctx_builder.discard(JOB)
    assert os.listdir(tmp_path / "jobs") == []


@pytest.mark.parametrize("job_id", ["../x", "", "a/b", ".hidden"])
async def test_a_job_id_is_one_plain_name(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(ValueError):
        builder(tmp_path).discard(job_id)

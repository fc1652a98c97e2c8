"""download-zip's ZIP writer: what it writes reads back (zipfile, ``unzip -t``), ZIP64 where
needed, memory flat whatever the count, and its spilled central directory never left."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tracemalloc
import zipfile
from collections.abc import Generator
from pathlib import Path

import pytest

from dockyard.domain.files import zipwriter
from dockyard.domain.files.downloads import Downloads
from dockyard.domain.files.hostfs import HostTree
from dockyard.domain.files.paths import parse
from dockyard.errors import PayloadTooLargeError

BIG = os.urandom(1024 * 1024 + 4096)  # past one read and one output piece, incompressible
MANY = 20_000
# stream-zip kept ~200 bytes a file of central directory in memory (4 MiB here); what is
# left is one output piece, its copy and one deflate state (about 0.8 MiB).
FLAT_BYTES = 1536 * 1024


def downloads(tmp: Path, limit: int = 1 << 40) -> Downloads:
    return Downloads(None, tmp, lambda: limit)  # type: ignore[arg-type]  # host paths only


async def zipped(app: Path, tmp: Path, path: str = "/app") -> bytes:
    tree = HostTree(str(app), os.getuid(), os.getgid())
    body = await downloads(tmp).zip("c1", tree, parse(path))
    return b"".join(body.chunks)


def unzip_tested(data: bytes, where: Path) -> None:
    """``unzip -t`` agrees, when it is installed (skipped with the reason otherwise)."""
    if shutil.which("unzip") is None:
        pytest.skip("unzip is not installed (apt-get install -y unzip)")
    archive = where / "out.zip"
    archive.write_bytes(data)
    run = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No errors detected" in run.stdout


def spilled_fds(tmp: Path) -> list[str]:
    """Open descriptors onto files in ``tmp`` (the central directory while it is spilled)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(tmp) + "/"):
            found.append(target)
    return found


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "sub" / "deeper").mkdir(parents=True)
    (app / "hollow" / "inside").mkdir(parents=True)  # empty folders: no entries, as before
    (app / "a.txt").write_bytes(b"alpha\n" * 100)
    (app / "empty").write_bytes(b"")
    (app / "sub" / "big.bin").write_bytes(BIG)
    (app / "sub" / "deeper" / "héllo 日本.txt").write_bytes("grüße\n".encode())
    (app / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (app / "run.sh").chmod(0o750)
    (app / "link").symlink_to("a.txt")  # links are skipped, never followed
    (app / "out").symlink_to("/etc")
    os.utime(app / "a.txt", (0, 0))  # 1970: before what a ZIP can say, clamped to 1980
    return app


async def test_the_zip_reads_back_with_names_modes_and_bytes(app: Path, tmp_path: Path) -> None:
    data = await zipped(app, tmp_path / "tmp")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == [
            "a.txt",
            "empty",
            "run.sh",
            "sub/big.bin",
            "sub/deeper/héllo 日本.txt",
        ]
        assert zf.read("a.txt") == b"alpha\n" * 100
        assert zf.read("empty") == b""
        assert zf.read("sub/big.bin") == BIG
        assert zf.read("sub/deeper/héllo 日本.txt") == "grüße\n".encode()
        info = {i.filename: i for i in zf.infolist()}
    assert info["run.sh"].external_attr >> 16 == 0o100750
    assert info["a.txt"].external_attr >> 16 == 0o100644
    assert info["a.txt"].date_time == (1980, 1, 1, 0, 0, 0)
    assert all(i.flag_bits & 0x800 for i in info.values())  # UTF-8 names
    assert {i.compress_type for i in info.values()} == {zipfile.ZIP_DEFLATED}
    assert b"PK\x06\x06" not in data  # small: no ZIP64 end records
    unzip_tested(data, tmp_path)


async def test_an_empty_folder_is_an_empty_zip(tmp_path: Path) -> None:
    (tmp_path / "app" / "nothing" / "here").mkdir(parents=True)
    data = await zipped(tmp_path / "app", tmp_path / "tmp")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == []
    assert data[:4] == b"PK\x05\x06" and len(data) == 22


async def test_a_name_that_is_not_utf8_keeps_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    Path(os.fsdecode(bytes(tmp_path / "app") + b"/caf\xe9")).write_bytes(b"x")
    data = await zipped(tmp_path / "app", tmp_path / "tmp")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (only,) = zf.infolist()
        assert not only.flag_bits & 0x800
        assert only.filename.encode("cp437") == b"caf\xe9"
        assert zf.read(only) == b"x"


async def test_zip64_when_the_count_sizes_and_offsets_pass_the_limits(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file past 4 GiB is too slow for a unit test: the same logic with limits lowered.
    monkeypatch.setattr(zipwriter, "ZIP32_COUNT", 3)
    monkeypatch.setattr(zipwriter, "ZIP32_LIMIT", 1000)
    data = await zipped(app, tmp_path / "tmp")
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # ZIP64 end record and locator
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert len(zf.namelist()) == 5
        assert zf.read("sub/big.bin") == BIG
        assert zf.read("a.txt") == b"alpha\n" * 100
        info = {i.filename: i for i in zf.infolist()}
    # big.bin has a ZIP64 local header; whatever lies past byte 1000 has a ZIP64 offset.
    assert info["sub/big.bin"].file_size == len(BIG)
    assert info["sub/big.bin"].extra[:2] == b"\x01\x00"  # the ZIP64 extra
    assert any(i.header_offset >= 1000 for i in info.values())
    unzip_tested(data, tmp_path)


async def test_memory_stays_flat_whatever_the_file_count(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for n in range(MANY):
        os.close(os.open(app / f"file-{n:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    tree = HostTree(str(app), os.getuid(), os.getgid())
    body = await downloads(tmp_path / "tmp").zip("c1", tree, parse("/app"))
    tracemalloc.start()
    try:
        size = sum(len(piece) for piece in body.chunks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size > MANY * 100  # every member went out (headers, descriptor, record)
    assert peak < FLAT_BYTES, peak


async def test_the_spilled_directory_is_gone_when_the_body_ends(app: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tree = HostTree(str(app), os.getuid(), os.getgid())
    before = len(os.listdir("/proc/self/fd"))
    body = await downloads(tmp).zip("c1", tree, parse("/app"))
    chunks = iter(body.chunks)
    next(chunks)
    assert len(spilled_fds(tmp)) == 1  # spilled while the body runs...
    assert os.listdir(tmp) == []  # ...to a file without a name
    for _ in chunks:
        pass
    assert spilled_fds(tmp) == [] and os.listdir(tmp) == []
    assert len(os.listdir("/proc/self/fd")) == before


async def test_the_spilled_directory_is_gone_when_the_body_is_closed_early(
    app: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tree = HostTree(str(app), os.getuid(), os.getgid())
    before = len(os.listdir("/proc/self/fd"))
    body = await downloads(tmp).zip("c1", tree, parse("/app"))
    assert isinstance(body.chunks, Generator)  # what the server closes on a disconnect
    next(body.chunks)  # mid big.bin: the file, its folders and the spill are open
    body.chunks.close()
    assert spilled_fds(tmp) == [] and os.listdir(tmp) == []
    assert len(os.listdir("/proc/self/fd")) == before


async def test_too_large_is_refused_before_anything_is_written(app: Path, tmp_path: Path) -> None:
    tree = HostTree(str(app), os.getuid(), os.getgid())
    with pytest.raises(PayloadTooLargeError) as caught:
        await downloads(tmp_path / "tmp", limit=1000).zip("c1", tree, parse("/app"))
    assert caught.value.code == "DOWNLOAD_TOO_LARGE"
    assert not (tmp_path / "tmp").exists() or os.listdir(tmp_path / "tmp") == []


class FakeArchiveEngine:
    """The one engine call a zip outside /app makes: the folder's tar, as the engine
    sends it (entries under the folder's own name)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        with tarfile.open(dest, mode="w") as tar:
            folder = tarfile.TarInfo("data")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
            for name, content in self.files.items():
                info = tarfile.TarInfo(f"data/{name}")
                info.size, info.mode, info.mtime = len(content), 0o640, 1_700_000_000
                tar.addfile(info, io.BytesIO(content))
            link = tarfile.TarInfo("data/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)


async def test_a_folder_outside_app_is_zipped_from_the_engines_tar(tmp_path: Path) -> None:
    files = {"x.txt": b"x" * 10, "d/ü.bin": BIG, "zero": b""}
    tmp = tmp_path / "tmp"
    loader = Downloads(FakeArchiveEngine(files), tmp, lambda: 1 << 40)  # type: ignore[arg-type]
    tree = HostTree(str(tmp_path / "unused"), os.getuid(), os.getgid())
    body = await loader.zip("c1", tree, parse("/data"))
    data = b"".join(body.chunks)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {i.filename: zf.read(i) for i in zf.infolist()} == files
        assert {i.external_attr >> 16 for i in zf.infolist()} == {0o100640}
    assert os.listdir(tmp) == []  # the spool and the spilled directory are gone
    unzip_tested(data, tmp_path)

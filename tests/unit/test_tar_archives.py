"""Every tar safety rule, each with an archive that breaks it (no Docker needed)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.domain.files.archives import ArchiveLimits, Plan
from dockyard.domain.files.tars import archive_kind, inspect_tar, open_tar, unpack_tar
from dockyard.errors import PayloadTooLargeError, ValidationError
from tests.unit.conftest import dir_fd

Member = tuple[tarfile.TarInfo, bytes]

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "": lambda data: data,
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def entry(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, **attrs: object) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar(
    members: list[Member],
    compression: str = "",
    fmt: int = tarfile.PAX_FORMAT,
    pax: dict[str, str] | None = None,
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return COMPRESSORS[compression](buf.getvalue())


def write(tmp_path: Path, data: bytes, name: str = "archive") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def plan_of(path: Path, limits: ArchiveLimits | None = None) -> Plan[tarfile.TarInfo]:
    limits = limits or ArchiveLimits()
    with open_tar(path, limits) as tar:
        return inspect_tar(tar, limits)


def header(name: str, kind: bytes, size: int) -> bytes:
    """One raw ustar header block with a valid checksum, whatever the type."""
    info = tarfile.TarInfo(name)
    info.size = size
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    block[156:157] = kind
    block[148:156] = b" " * 8
    chksum = sum(block[:512])
    block[148:156] = b"%06o\x00 " % chksum
    return bytes(block[:512])


def raw_tar(*blocks: bytes) -> bytes:
    return b"".join(blocks) + b"\0" * 1024


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax_then_file(records: bytes, name: str = "f") -> bytes:
    padded = records + b"\0" * (-len(records) % 512)
    return raw_tar(
        header("PaxHeaders/f", tarfile.XHDTYPE, len(records)),
        padded,
        header(name, tarfile.REGTYPE, 1),
        b"x" + b"\0" * 511,
    )


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([entry("../evil.txt")], "'..'"),
        ([entry("a/../../evil.txt")], "'..'"),
        ([entry("./../evil.txt")], "'..'"),
        ([entry("/etc/evil")], "absolute"),
        ([entry("C:/evil")], "drive letter"),
        ([entry("a\\..\\evil")], "backslash"),
        ([entry("evil\x00name" + "n" * 120)], "NUL"),
        ([entry("ctl\x01name")], "control"),
        ([entry("a" * 300)], "255 bytes"),
        ([entry(("d/" * 2100) + "f")], "too long"),
        ([entry("same.txt", b"1"), entry("same.txt", b"2")], "duplicate"),
        ([entry("x", b"1"), entry("x/y", b"2")], "parent folder"),
        ([entry("x/y", b"2"), entry("x", b"1")], "parent folder"),
        ([entry("regular/", b"x", tarfile.REGTYPE)], "ending in '/'"),
        ([entry("link", kind=tarfile.SYMTYPE, linkname="/etc/shadow")], "symbolic link"),
        ([entry("up", kind=tarfile.SYMTYPE, linkname="../../..")], "symbolic link"),
        ([entry("a", b"1"), entry("hard", kind=tarfile.LNKTYPE, linkname="a")], "hard link"),
        ([entry("shadow", kind=tarfile.LNKTYPE, linkname="/etc/shadow")], "hard link"),
        ([entry("dev", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)], "device"),
        ([entry("blk", kind=tarfile.BLKTYPE, devmajor=8, devminor=0)], "device"),
        ([entry("fifo", kind=tarfile.FIFOTYPE)], "FIFO"),
    ],
)
@pytest.mark.parametrize("compression", ["", "gz"])
def test_unsafe_entries_are_refused(
    tmp_path: Path, members: list[Member], reason: str, compression: str
) -> None:
    path = write(tmp_path, make_tar(members, compression))
    assert archive_kind(path) == "tar"
    with pytest.raises(ValidationError) as err:
        plan_of(path)
    assert err.value.code == "UNSAFE_ARCHIVE_ENTRY"
    assert reason in err.value.details["reason"]
    assert err.value.details["entry"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw_tar(header("sparse", tarfile.GNUTYPE_SPARSE, 0)), "sparse"),
        (raw_tar(header("volume", b"V", 0)), "unsupported entry type"),
        (raw_tar(header("odd", b"Z", 0)), "unsupported entry type"),
        (pax_then_file(pax_record("GNU.sparse.major", "1")), "sparse"),
        (pax_then_file(pax_record("GNU.sparse.map", "0,1")), "sparse"),
        (pax_then_file(pax_record("size", "99999999999")), "size in an extended header"),
        (raw_tar(header("PaxHeaders/f", tarfile.XHDTYPE, 2 * 1024 * 1024)), "larger than 1 MiB"),
        (
            raw_tar(header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 2 * 1024 * 1024)),
            "larger than 1 MiB",
        ),
        (pax_then_file(b"3 a=\n"), "malformed extended header"),
        (make_tar([entry("f", b"x" * 2000)])[:1500], "data ends"),
    ],
)
def test_headers_tarfile_must_not_see_are_refused_first(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ValidationError) as err:
        plan_of(path)
    assert err.value.code == "UNSAFE_ARCHIVE_ENTRY"
    assert reason in err.value.details["reason"]


def test_ordinary_pax_records_pass(tmp_path: Path) -> None:
    long_name = "dir/" + "n" * 150
    data = make_tar([entry(long_name, b"long")], pax={"comment": "made by a test"})
    plan = plan_of(write(tmp_path, data))
    assert [parts for parts, _ in plan.files] == [("dir", "n" * 150)]


@pytest.mark.parametrize("payload", [os.urandom(200_000), os.urandom(64).hex().encode() * 2000])
def test_corrupt_compressed_data_is_refused(tmp_path: Path, payload: bytes) -> None:
    data = bytearray(make_tar([entry("f", payload)], "gz"))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    path = write(tmp_path, bytes(data))
    with pytest.raises(ValidationError) as err:
        plan_of(path)
    assert "corrupt" in err.value.details["reason"]


def test_entry_count_limit(tmp_path: Path) -> None:
    path = write(tmp_path, make_tar([entry(f"f{i}") for i in range(20)]))
    with pytest.raises(PayloadTooLargeError) as err:
        plan_of(path, ArchiveLimits(max_entries=10))
    assert err.value.code == "TOO_MANY_ENTRIES"
    assert len(plan_of(path, ArchiveLimits(max_entries=20)).files) == 20


def test_total_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, make_tar([entry("a", os.urandom(4096)), entry("b", os.urandom(4096))]))
    with pytest.raises(PayloadTooLargeError) as err:
        plan_of(path, ArchiveLimits(max_unpacked_bytes=6000))
    assert err.value.code == "UNPACKED_TOO_LARGE"


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_ratio_compares_unpacked_total_with_compressed_size(
    tmp_path: Path, compression: str
) -> None:
    zeros = [entry(f"z{i}", b"\0" * (4 * 1024 * 1024)) for i in range(5)]
    path = write(tmp_path, make_tar(zeros, compression))
    assert archive_kind(path) == "tar"
    with pytest.raises(PayloadTooLargeError) as err:
        plan_of(path)
    assert err.value.code == "COMPRESSION_RATIO"
    # The same entries uncompressed take their own size on disk: no ratio to refuse.
    plain = write(tmp_path, make_tar(zeros), "plain.tar")
    assert plan_of(plain).total_bytes == 5 * 4 * 1024 * 1024


def test_unpack_counts_the_bytes_it_writes(tmp_path: Path) -> None:
    path = write(tmp_path, make_tar([entry("a", b"1" * 3000), entry("b", b"2" * 3000)], "gz"))
    with dir_fd(tmp_path / "staging") as fd, open_tar(path, ArchiveLimits()) as tar:
        plan = inspect_tar(tar, ArchiveLimits())
        tight = ArchiveLimits(max_unpacked_bytes=5000)
        with pytest.raises(PayloadTooLargeError) as err:
            unpack_tar(tar, plan, fd, os.getuid(), os.getgid(), tight)
    assert err.value.code == "UNPACKED_TOO_LARGE"


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_good_archive_unpacks_with_owner_and_modes(tmp_path: Path, compression: str) -> None:
    members = [
        entry("./", kind=tarfile.DIRTYPE, mode=0o755),
        entry("./boot.py", b"print(1)"),
        entry("./data/", kind=tarfile.DIRTYPE, mode=0o700),
        entry("./data/config.json", b"{}", mode=0o4777),
        entry("./empty/", kind=tarfile.DIRTYPE),
        entry("./bin/run.sh", b"#!/bin/sh", mode=0o755),
    ]
    path = write(tmp_path, make_tar(members, compression))
    staging = tmp_path / "staging"
    with dir_fd(staging) as fd, open_tar(path, ArchiveLimits()) as tar:
        plan = inspect_tar(tar, ArchiveLimits())
        written = unpack_tar(tar, plan, fd, 1000, 1000, ArchiveLimits())
    assert written == plan.total_bytes == len(b"print(1)") + 2 + len(b"#!/bin/sh")
    assert sorted(plan.dirs) == [("bin",), ("data",), ("empty",)]
    assert (staging / "data/config.json").read_bytes() == b"{}"
    assert (staging / "empty").is_dir()
    assert (staging / "boot.py").stat().st_uid == 1000
    assert (staging / "data").stat().st_gid == 1000
    assert stat.S_IMODE((staging / "bin/run.sh").stat().st_mode) == 0o755
    # No setuid bit, no mode from the archive beyond "executable or not".
    assert stat.S_IMODE((staging / "data/config.json").stat().st_mode) == 0o755
    assert stat.S_IMODE((staging / "boot.py").stat().st_mode) == 0o644


def test_archive_kind_is_judged_by_content(tmp_path: Path) -> None:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("a", b"1")
    tar = make_tar([entry("a", b"1")])
    assert archive_kind(write(tmp_path, zbuf.getvalue(), "x.tar")) == "zip"
    for compression in ("", "gz", "bz2", "xz"):
        path = write(tmp_path, COMPRESSORS[compression](tar), f"t{compression}.bin")
        assert archive_kind(path) == "tar"
    assert archive_kind(write(tmp_path, gzip.compress(b"a,b\n1,2\n"), "data.csv.gz")) is None
    assert archive_kind(write(tmp_path, b"just text\n" * 100, "notes.txt")) is None
    assert archive_kind(write(tmp_path, b"", "empty")) is None

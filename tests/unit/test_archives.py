"""Every ZIP safety rule, each with an archive that breaks it (no Docker needed)."""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from dockyard.domain.files.archives import ArchiveLimits, inspect, unpack
from dockyard.domain.files.paths import parse, parse_under_app
from dockyard.errors import PayloadTooLargeError, ValidationError
from tests.unit.conftest import dir_fd


def make_zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def check(data: bytes, limits: ArchiveLimits | None = None) -> None:
    with open_zip(data) as zf:
        inspect(zf, limits or ArchiveLimits())


def special(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def patched_name(good: str, bad: bytes) -> bytes:
    """A zip whose stored name (local and central) is ``bad``; zipfile cannot write it."""
    data = make_zip([(good, b"x")])
    assert len(good.encode()) == len(bad)
    return data.replace(good.encode(), bad)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # zipfile warns, then writes the duplicate anyway
    DUPLICATE = make_zip([("same.txt", b"1"), ("same.txt", b"2")])


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make_zip([("../evil.txt", b"x")]), "'..'"),
        (make_zip([("a/../../evil.txt", b"x")]), "'..'"),
        (make_zip([("/etc/evil", b"x")]), "absolute"),
        (make_zip([("C:/evil", b"x")]), "drive letter"),
        (make_zip([("a\\..\\evil", b"x")]), "backslash"),
        (patched_name("evilXname", b"evil\x00name"), "NUL"),
        (make_zip([("a" * 300, b"x")]), "255 bytes"),
        (make_zip([(("d/" * 2100) + "f", b"x")]), "too long"),
        (DUPLICATE, "duplicate"),
        (make_zip([("x", b"1"), ("x/y", b"2")]), "parent folder"),
        (make_zip([(special("link", stat.S_IFLNK | 0o777), b"/etc/shadow")]), "symbolic link"),
        (make_zip([(special("dev", stat.S_IFCHR | 0o600), b"")]), "device"),
        (make_zip([(special("blk", stat.S_IFBLK | 0o600), b"")]), "device"),
        (make_zip([(special("fifo", stat.S_IFIFO | 0o600), b"")]), "FIFO"),
        (make_zip([("ctl\x01name", b"x")]), "control"),
    ],
)
def test_unsafe_entries_are_refused_by_name(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        check(data)
    assert err.value.code == "UNSAFE_ARCHIVE_ENTRY"
    assert reason in err.value.details["reason"]
    assert err.value.details["entry"]


def test_limits() -> None:
    many = make_zip([(f"f{i}", b"") for i in range(20)])
    with pytest.raises(PayloadTooLargeError) as err:
        check(many, ArchiveLimits(max_entries=10))
    assert err.value.code == "TOO_MANY_ENTRIES"

    bomb = make_zip([("zeros", b"\0" * (20 * 1024 * 1024))])
    with pytest.raises(PayloadTooLargeError) as err:
        check(bomb)
    assert err.value.code == "COMPRESSION_RATIO"

    big = make_zip([("a", os.urandom(4096)), ("b", os.urandom(4096))], zipfile.ZIP_STORED)
    with pytest.raises(PayloadTooLargeError) as err:
        check(big, ArchiveLimits(max_unpacked_bytes=6000))
    assert err.value.code == "UNPACKED_TOO_LARGE"


def test_overlapping_entries_are_refused() -> None:
    data = bytearray(make_zip([("a", b"A" * 100), ("b", b"B" * 100)], zipfile.ZIP_STORED))
    # Point b's central directory record at a's local header: two names, one body.
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    struct.pack_into("<L", data, central + 42, 0)
    with pytest.raises(ValidationError) as err:
        check(bytes(data))
    assert "overlaps" in err.value.details["reason"]


def test_lying_sizes_are_caught_while_unpacking(tmp_path: Path) -> None:
    data = bytearray(make_zip([("f", b"x" * 1000)], zipfile.ZIP_STORED))
    # Claim 10 bytes in the central directory; the data holds 1000.
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<L", data, central + 24, 10)
    with dir_fd(tmp_path) as fd, open_zip(bytes(data)) as zf:
        plan = inspect(zf, ArchiveLimits())
        with pytest.raises((PayloadTooLargeError, ValidationError, zipfile.BadZipFile)):
            unpack(zf, plan, fd, os.getuid(), os.getgid(), ArchiveLimits())


def test_good_archive_unpacks_with_owner_and_modes(tmp_path: Path) -> None:
    exe = zipfile.ZipInfo("bin/run.sh")
    exe.create_system = 3
    exe.external_attr = (stat.S_IFREG | 0o755) << 16
    data = make_zip(
        [
            ("boot.py", b"print(1)"),
            ("data/config.json", b"{}"),
            ("empty/", b""),
            (exe, b"#!/bin/sh"),
        ]
    )
    with dir_fd(tmp_path) as fd, open_zip(data) as zf:
        plan = inspect(zf, ArchiveLimits())
        written = unpack(zf, plan, fd, 1000, 1000, ArchiveLimits())
    assert written == len(b"print(1)") + 2 + len(b"#!/bin/sh")
    assert (tmp_path / "data/config.json").read_bytes() == b"{}"
    assert (tmp_path / "empty").is_dir()
    assert (tmp_path / "boot.py").stat().st_uid == 1000
    assert (tmp_path / "data").stat().st_gid == 1000
    assert stat.S_IMODE((tmp_path / "bin/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "boot.py").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "raw",
    [
        "../etc/passwd",
        "/app/../etc/passwd",
        "/app/x/../../etc",
        "a\x00b",
        "a\\b",
        "/app/./x/..",
        "x" * 5000,
        "/app/" + "y" * 300,
    ],
)
def test_client_paths_with_traversal_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(raw)
    assert err.value.code == "INVALID_PATH"


def test_client_paths() -> None:
    assert parse(None).text == "/app" and parse(None).in_app
    assert parse("data/x.json").app_parts == ("data", "x.json")
    assert parse("/etc/hostname").in_app is False
    assert parse("/app//a/./b").app_parts == ("a", "b")
    assert parse("%2e%2e").app_parts == ("%2e%2e",)  # decoded once by HTTP, never again
    with pytest.raises(ValidationError):
        parse_under_app("/etc")
    with pytest.raises(ValidationError):
        parse_under_app("/application")

"""Uploads for another engine's /app (uploads.py): checked whole, then one tar stream.

What the engine would extract is the tar ``tar_chunks`` makes; every refusal must come
from ``checked()``, before the first chunk exists."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.uploads import FileUpload, TarUpload, ZipUpload, tar_chunks
from dockyard.errors import PayloadTooLargeError, ValidationError

UID, GID = 1234, 2345


def write_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def streamed(upload: ZipUpload | TarUpload | FileUpload, target: tuple[str, ...]) -> bytes:
    with upload.checked() as checked:
        return b"".join(tar_chunks(checked, target, UID, GID))


def members(data: bytes) -> dict[str, tuple[str, int, bytes | None]]:
    out: dict[str, tuple[str, int, bytes | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            assert (m.uid, m.gid) == (UID, GID)
            src = tar.extractfile(m) if m.isfile() else None
            out[m.name] = ("dir" if m.isdir() else "file", m.mode, src.read() if src else None)
    return out


def test_a_zip_becomes_one_tar_below_the_target(tmp_path: Path) -> None:
    exe = zipfile.ZipInfo("bin/run.sh")
    exe.create_system = 3
    exe.external_attr = (stat.S_IFREG | 0o755) << 16
    big = os.urandom(3 * 1024 * 1024 + 7)  # several chunks, not a multiple of 512
    path = write_zip(tmp_path / "a.zip", [("a.txt", b"hello"), (exe, b"#!/bin/sh\n"),
                                          ("deep/er/big.bin", big), ("empty/", b"")])  # fmt: skip
    got = members(streamed(ZipUpload(path, ArchiveLimits(), UID, GID), ("site", "x")))
    assert got == {
        "site": ("dir", 0o755, None),
        "site/x": ("dir", 0o755, None),
        "site/x/bin": ("dir", 0o755, None),
        "site/x/deep": ("dir", 0o755, None),
        "site/x/deep/er": ("dir", 0o755, None),
        "site/x/empty": ("dir", 0o755, None),
        "site/x/a.txt": ("file", 0o644, b"hello"),
        "site/x/bin/run.sh": ("file", 0o755, b"#!/bin/sh\n"),
        "site/x/deep/er/big.bin": ("file", 0o644, big),
    }
    with ZipUpload(path, ArchiveLimits(), UID, GID).checked() as checked:
        assert (checked.staged.files, checked.staged.bytes) == (3, 5 + 10 + len(big))


def corrupt_second_entry(path: Path) -> None:
    """Flip a byte of the second entry's data: its central directory still reads well."""
    data = bytearray(path.read_bytes())
    second = data.index(b"PK\x03\x04", 4)
    name_len, extra_len = struct.unpack_from("<HH", data, second + 26)
    data[second + 30 + name_len + extra_len + 10] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_zip_whose_data_is_corrupt_is_refused_before_the_first_chunk(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("first.txt", b"fine " * 100)
        archive.writestr("second.bin", os.urandom(4096))
    corrupt_second_entry(path)
    with pytest.raises(ValidationError) as err:
        streamed(ZipUpload(path, ArchiveLimits(), UID, GID), ())
    assert err.value.code == "UNSAFE_ARCHIVE_ENTRY"
    assert err.value.details["entry"] == "second.bin"


@pytest.mark.parametrize(
    ("name", "reason"),
    [("../evil", "'..'"), ("/abs", "absolute"), ("a\\b", "backslash")],
)
def test_hostile_names_are_refused_before_the_first_chunk(
    tmp_path: Path, name: str, reason: str
) -> None:
    path = write_zip(tmp_path / "h.zip", [("ok.txt", b"ok"), (name, b"x")])
    with pytest.raises(ValidationError) as err:
        streamed(ZipUpload(path, ArchiveLimits(), UID, GID), ())
    assert reason in err.value.details["reason"]


def test_links_and_limits_are_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = write_zip(tmp_path / "l.zip", [(link, b"/etc/passwd")])
    with pytest.raises(ValidationError):
        streamed(ZipUpload(path, ArchiveLimits(), UID, GID), ())
    many = write_zip(tmp_path / "m.zip", [(f"f{i}", b"x") for i in range(5)])
    with pytest.raises(PayloadTooLargeError):
        streamed(ZipUpload(many, ArchiveLimits(max_entries=4), UID, GID), ())
    not_zip = tmp_path / "n.zip"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ValidationError) as err:
        streamed(ZipUpload(not_zip, ArchiveLimits(), UID, GID), ())
    assert err.value.code == "INVALID_ZIP"


def test_a_tar_and_a_single_file_stream_too(tmp_path: Path) -> None:
    path = tmp_path / "d.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("data/x.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"xyz"))
    got = members(streamed(TarUpload(path, ArchiveLimits(), UID, GID), ("in",)))
    assert got["in/data/x.txt"] == ("file", 0o644, b"xyz")
    script = tmp_path / "script"
    script.write_bytes(b"print(1)\n")
    got = members(streamed(FileUpload(script, "boot.py", UID, GID), ()))
    assert got == {"boot.py": ("file", 0o644, b"print(1)\n")}


def test_a_tar_with_a_link_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("escape")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc"
        tar.addfile(info)
    with pytest.raises(ValidationError):
        streamed(TarUpload(path, ArchiveLimits(), UID, GID), ())

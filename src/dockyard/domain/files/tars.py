"""Tar archives from clients (plain, gzip, bzip2, xz), judged by the rules ZIPs get in
``archives.py``, hard links refused too.

Their headers are first walked by ``_check_tar_headers`` — bounded reads, sizes and
counts checked as they stream by — because ``tarfile`` itself reads extended headers
whole into memory and follows GNU sparse maps of any length; only then does ``tarfile``
parse names. Blocking: run in a thread.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from dockyard.domain.files.archives import (
    ArchiveLimits,
    EntryWrite,
    Plan,
    claim,
    mkdirs,
    name_parts,
    refused,
    settle,
    too_big,
    too_many,
    write_file,
)
from dockyard.errors import PayloadTooLargeError

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TAR_BLOCK = tarfile.BLOCKSIZE
_TAR_META_MAX = 1024 * 1024  # an extended header (pax, GNU long name) is never larger
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_GNU_LONG_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
# Types whose size field tarfile ignores (no data follows the header).
_HEADER_ONLY_TYPES = (
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
)
# What a damaged archive or compressed stream raises while it is read.
_TAR_CORRUPT: tuple[type[Exception], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
)

ArchiveKind = Literal["zip", "tar"]
_CHUNK = 1024 * 1024


def archive_kind(path: Path) -> ArchiveKind | None:
    """``zip`` or ``tar`` (plain, gz, bz2, xz) judged by content, else None."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    try:
        with _tar_stream(path) as stream:
            block = _read_exactly(stream, _TAR_BLOCK)
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except _TAR_CORRUPT:
        return None  # a valid header checksum is what makes a tar
    return "tar"


def _tar_stream(path: Path) -> io.BufferedIOBase:
    """The tar bytes of ``path``, decompressed if it is gzip, bzip2 or xz."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(path, "rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(path, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(path, "rb")
    return open(path, "rb")


@contextmanager
def open_tar(path: Path, limits: ArchiveLimits) -> Iterator[tarfile.TarFile]:
    """A tar archive, opened by ``tarfile`` only after its headers passed the checks.

    Entry count, declared total size and the ratio of that total to the file's size on
    disk (for compressed tars) are refused here, before any name is parsed."""
    on_disk = path.stat().st_size
    try:
        with _tar_stream(path) as stream:
            _check_tar_headers(stream, limits, on_disk)
    except _TAR_CORRUPT as exc:
        raise refused("archive", f"corrupt data ({exc})") from exc
    with _tar_stream(path) as stream:
        try:
            tar = tarfile.open(fileobj=stream, mode="r:")
        except _TAR_CORRUPT as exc:
            raise refused("archive", f"corrupt data ({exc})") from exc
        with tar:
            yield tar


def _read_exactly(stream: io.BufferedIOBase, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _skip(stream: io.BufferedIOBase, size: int) -> None:
    while size > 0:
        chunk = stream.read(min(size, _CHUNK))
        if not chunk:
            raise refused("archive", "data ends before the size a header declares")
        size -= len(chunk)


def _blocks(size: int) -> int:
    return -(-size // _TAR_BLOCK) * _TAR_BLOCK


def _check_tar_headers(stream: io.BufferedIOBase, limits: ArchiveLimits, on_disk: int) -> None:
    """Walk the headers as ``tarfile`` will, refusing on the way what it must not see."""
    members = extended = total = 0
    while True:
        block = _read_exactly(stream, _TAR_BLOCK)
        if len(block) < _TAR_BLOCK or block.count(0) == _TAR_BLOCK:
            # The end (tarfile stops at the same place). Read on through the padding, a
            # little, so that a compressed stream reaches its end and checks its CRC.
            stream.read(_TAR_META_MAX)
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            if members or extended:
                return  # tarfile ends the archive at a damaged header, so do we
            raise refused("archive", "not a tar archive") from None
        raw = info.name
        if info.size < 0:
            raise refused(raw, "negative size")
        if info.type in _PAX_TYPES or info.type in _GNU_LONG_TYPES:
            extended += 1
            if extended > 2 * limits.max_entries + 2:
                raise too_many(members + extended, limits)
            if info.size > _TAR_META_MAX:
                raise refused(raw, "extended header larger than 1 MiB")
            body = _read_exactly(stream, _blocks(info.size))
            if info.type in _PAX_TYPES:
                _check_pax(body, raw)
            continue
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise refused(raw, "sparse file")
        members += 1
        if members > limits.max_entries:
            raise too_many(members, limits)
        if info.type in _HEADER_ONLY_TYPES:
            continue  # refused or accepted by name later, with the name tarfile sees
        if not info.isreg():
            raise refused(raw, "unsupported entry type")
        total += info.size
        if total > limits.max_unpacked_bytes:
            raise too_big(limits)
        if total > limits.ratio_floor and total > limits.max_ratio * max(on_disk, 1):
            raise PayloadTooLargeError(
                f"archive expands more than {limits.max_ratio}x",
                code="COMPRESSION_RATIO",
                details={"limit": limits.max_ratio},
            )
        _skip(stream, _blocks(info.size))


def _check_pax(body: bytes, raw: str) -> None:
    """Records are parsed from the same positions as tarfile parses them; a size that
    would override the header's, or any GNU sparse map, is refused."""
    pos = 0
    while pos < len(body) and body[pos] != 0:
        match = _PAX_RECORD.match(body, pos)
        if match is None:
            return  # tarfile stops reading records here too
        length = int(match.group(1))
        if length < 5 or pos + length > len(body):
            raise refused(raw, "malformed extended header")
        keyword = match.group(2)
        if keyword == b"size":
            raise refused(raw, "size in an extended header")
        if keyword.startswith(b"GNU.sparse"):
            raise refused(raw, "sparse file")
        pos += length


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    if member.sparse is not None:
        return "sparse file"
    if member.isdir() or member.isreg():
        return "ok"
    return "unsupported entry type"


def inspect_tar(
    tar: tarfile.TarFile, limits: ArchiveLimits, *, symlinks: bool = False
) -> Plan[tarfile.TarInfo]:
    """Names and types of every member, judged like a ZIP's (open it with ``open_tar``);
    ``symlinks`` accepts links into ``plan.links`` (their targets unjudged)."""
    try:
        members = tar.getmembers()
    except _TAR_CORRUPT as exc:
        raise refused("archive", f"corrupt data ({exc})") from exc
    plan = Plan[tarfile.TarInfo]()
    seen: dict[tuple[str, ...], bool] = {}
    for member in members:
        raw = member.name
        name = raw
        while name.startswith("./"):  # `tar -C dir .` writes every name so
            name = name[2:]
        if name in ("", ".") and member.isdir():
            continue  # the archive's own top folder: that is the target
        parts, slash = name_parts(name, limits)
        kind = _tar_kind(member)
        if kind == "symbolic link" and symlinks:
            if not member.linkname or "\x00" in member.linkname:
                raise refused(raw, "empty link target")
            claim(seen, raw, parts, False)
            plan.links.append((parts, member.linkname))
            continue
        if kind != "ok":
            raise refused(raw, kind)
        if slash and not member.isdir():
            raise refused(raw, "a file name ending in '/'")
        claim(seen, raw, parts, member.isdir())
        if member.isdir():
            plan.dirs.append(parts)
            continue
        plan.total_bytes += member.size
        plan.files.append((parts, member))
    settle(plan, seen)
    return plan


def unpack_tar(
    tar: tarfile.TarFile,
    plan: Plan[tarfile.TarInfo],
    staging_fd: int,
    uid: int,
    gid: int,
    limits: ArchiveLimits,
) -> int:
    """Write the plan below ``staging_fd`` (a fresh, private folder); returns bytes written."""
    for parts in plan.dirs:
        mkdirs(staging_fd, parts, uid, gid)
    written = 0
    for parts, member in plan.files:
        mode = 0o755 if member.mode & 0o111 else 0o644
        try:
            src = tar.extractfile(member)
        except _TAR_CORRUPT as exc:
            raise refused(member.name, f"corrupt data ({exc})") from exc
        if src is None:
            raise refused(member.name, "not a regular file")
        with src:
            written = write_file(
                staging_fd,
                parts,
                mode,
                src,
                EntryWrite(member.name, member.size, written, uid, gid),
                limits,
                _TAR_CORRUPT,
            )
    return written

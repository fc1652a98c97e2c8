"""ZIP and tar archives from clients, checked whole before a single byte is unpacked.

Every entry is judged from the central directory and its local header: names (no
``..``, absolute paths, drive letters, backslashes, NUL, over-long or duplicate names),
types (no links, devices, FIFOs), counts, sizes and compression ratios, and entries
whose data overlap (the overlapping-entry zip bomb). Unpacking then writes only into a
fresh staging folder, counting the bytes it really writes. Blocking: run in a thread.

Tar archives (plain, gzip, bzip2, xz) get the same rules, hard links refused too. Their
headers are first walked by ``_check_tar_headers`` — bounded reads, sizes and counts
checked as they stream by — because ``tarfile`` itself reads extended headers whole
into memory and follows GNU sparse maps of any length; only then does ``tarfile``
parse names.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generic, Literal, TypeVar

from dockyard.errors import PayloadTooLargeError, ValidationError

_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_CHUNK = 1024 * 1024
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

M = TypeVar("M")
ArchiveKind = Literal["zip", "tar"]


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 100_000
    max_unpacked_bytes: int = 4 * 1024**3
    max_ratio: int = 200  # per entry, for entries above ratio_floor bytes
    ratio_floor: int = 1024 * 1024
    max_name_bytes: int = 4096


@dataclass
class Plan(Generic[M]):
    """What an archive will create, relative to the target folder."""

    dirs: list[tuple[str, ...]] = field(default_factory=list)
    files: list[tuple[tuple[str, ...], M]] = field(default_factory=list)
    total_bytes: int = 0


def refused(entry: str, reason: str) -> ValidationError:
    return ValidationError(
        f"archive entry {entry!r} refused: {reason}",
        code="UNSAFE_ARCHIVE_ENTRY",
        details={"entry": entry[:300], "reason": reason},
    )


def _name_parts(raw: str, limits: ArchiveLimits) -> tuple[tuple[str, ...], bool]:
    if "\x00" in raw:
        raise refused(raw, "NUL in name")
    if "\\" in raw:
        raise refused(raw, "backslash in name")
    if raw.startswith("/"):
        raise refused(raw, "absolute path")
    if _DRIVE.match(raw):
        raise refused(raw, "drive letter")
    if len(raw.encode()) > limits.max_name_bytes:
        raise refused(raw, "name too long")
    is_dir = raw.endswith("/")
    parts = raw.rstrip("/").split("/") if raw.rstrip("/") else []
    if not parts:
        raise refused(raw, "empty name")
    for part in parts:
        if part in ("", ".", ".."):
            raise refused(raw, "'..', '.' or empty component")
        if len(part.encode()) > 255:
            raise refused(raw, "component longer than 255 bytes")
        if any(ord(ch) < 32 for ch in part):
            raise refused(raw, "control character in name")
    return tuple(parts), is_dir


def _kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix attributes present
        fmt = stat.S_IFMT(mode)
        if fmt == stat.S_IFLNK:
            return "symbolic link"
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            return "device"
        if fmt == stat.S_IFIFO:
            return "FIFO"
        if fmt == stat.S_IFSOCK:
            return "socket"
    return "ok"


def _too_many(entries: int, limits: ArchiveLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"archive has {entries} entries; the limit is {limits.max_entries}",
        code="TOO_MANY_ENTRIES",
        details={"entries": entries, "limit": limits.max_entries},
    )


def _too_big(limits: ArchiveLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"archive unpacks to more than {limits.max_unpacked_bytes} bytes",
        code="UNPACKED_TOO_LARGE",
        details={"limit": limits.max_unpacked_bytes},
    )


def _claim(
    seen: dict[tuple[str, ...], bool], raw: str, parts: tuple[str, ...], is_dir: bool
) -> None:
    """Record one name; duplicates and files that are also parent folders are refused."""
    if parts in seen:
        raise refused(raw, "duplicate name")
    for depth in range(1, len(parts)):
        if seen.get(parts[:depth]) is False:
            raise refused(raw, "a file of the same name is a parent folder")
    seen[parts] = is_dir


def _settle(plan: Plan[M], seen: dict[tuple[str, ...], bool]) -> None:
    """After the last entry: parents named later as files, and folders implied by names."""
    for parts, _info in plan.files:
        if any(seen.get(parts[:d]) is False for d in range(1, len(parts))):
            raise refused("/".join(parts), "a file of the same name is a parent folder")
    implied = {p[:d] for p, _ in plan.files for d in range(1, len(p))}
    plan.dirs = sorted(set(plan.dirs) | implied, key=lambda p: (len(p), p))


def inspect(archive: zipfile.ZipFile, limits: ArchiveLimits) -> Plan[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise _too_many(len(infos), limits)
    plan = Plan[zipfile.ZipInfo]()
    seen: dict[tuple[str, ...], bool] = {}
    for info in infos:
        raw = info.orig_filename  # before zipfile cuts the name at a NUL
        parts, is_dir = _name_parts(raw, limits)
        kind = _kind(info)
        if kind != "ok":
            raise refused(raw, kind)
        if info.flag_bits & 0x1:
            raise refused(raw, "encrypted")
        _claim(seen, raw, parts, is_dir)
        if is_dir:
            plan.dirs.append(parts)
            continue
        if info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ):
            raise refused(raw, "unsupported compression")
        if info.file_size > limits.ratio_floor and (
            info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            raise PayloadTooLargeError(
                f"archive entry {raw!r} expands more than {limits.max_ratio}x",
                code="COMPRESSION_RATIO",
                details={"entry": raw[:300], "limit": limits.max_ratio},
            )
        plan.total_bytes += info.file_size
        if plan.total_bytes > limits.max_unpacked_bytes:
            raise _too_big(limits)
        plan.files.append((parts, info))
    _settle(plan, seen)
    _check_overlaps(archive, infos)
    return plan


def _check_overlaps(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Each entry's local header and data must end before the next entry begins."""
    fp = archive.fp
    assert fp is not None
    ordered = sorted(infos, key=lambda i: i.header_offset)
    end_of_previous = 0
    for info in ordered:
        if info.header_offset < end_of_previous:
            raise refused(info.orig_filename, "overlaps another entry")
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
            raise refused(info.orig_filename, "bad local header")
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = fields[-2], fields[-1]
        end_of_previous = (
            info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        )
        if info.flag_bits & 0x8:  # a data descriptor follows the data
            end_of_previous += 12
    start_dir = getattr(archive, "start_dir", None)
    if isinstance(start_dir, int) and start_dir < end_of_previous:
        raise refused(ordered[-1].orig_filename, "overlaps the central directory")


def unpack(
    archive: zipfile.ZipFile,
    plan: Plan[zipfile.ZipInfo],
    staging_fd: int,
    uid: int,
    gid: int,
    limits: ArchiveLimits,
) -> int:
    """Write the plan below ``staging_fd`` (a fresh, private folder); returns bytes written."""
    for parts in plan.dirs:
        _mkdirs(staging_fd, parts, uid, gid)
    written = 0
    for parts, info in plan.files:
        mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
        try:
            with archive.open(info) as src:
                written = _write_file(
                    staging_fd,
                    parts,
                    mode,
                    src,
                    _Entry(info.orig_filename, info.file_size, written, uid, gid),
                    limits,
                    (zipfile.BadZipFile, zlib.error, EOFError),
                )
        except zipfile.BadZipFile as exc:
            raise refused(info.orig_filename, f"corrupt data ({exc})") from exc
    return written


@dataclass(frozen=True)
class _Entry:
    name: str
    declared: int
    written_before: int
    uid: int
    gid: int


def _write_file(
    staging_fd: int,
    parts: tuple[str, ...],
    mode: int,
    src: IO[bytes],
    entry: _Entry,
    limits: ArchiveLimits,
    corrupt: tuple[type[Exception], ...],
) -> int:
    """Copy one entry into a new file below ``staging_fd``; returns the bytes written so
    far in the whole archive. Sizes are what is really read, never what headers say."""
    # The staging folder is private to this upload (no link can be in it: we made every
    # entry, from checked names), so one relative open is enough — no walk per file.
    fd = os.open(
        "/".join(parts),
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        mode,
        dir_fd=staging_fd,
    )
    written = entry.written_before
    left = entry.declared
    try:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except corrupt as exc:
                raise refused(entry.name, f"corrupt data ({exc})") from exc
            if not chunk:
                break
            left -= len(chunk)
            written += len(chunk)
            if left < 0 or written > limits.max_unpacked_bytes:
                raise PayloadTooLargeError(
                    f"archive entry {entry.name!r} is larger than it says",
                    code="UNPACKED_TOO_LARGE",
                    details={"entry": entry.name[:300]},
                )
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if left > 0:
            raise refused(entry.name, "data ends before the size it declares")
        os.fchown(fd, entry.uid, entry.gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return written


# -- tar -------------------------------------------------------------------------


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
                raise _too_many(members + extended, limits)
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
            raise _too_many(members, limits)
        if info.type in _HEADER_ONLY_TYPES:
            continue  # refused or accepted by name later, with the name tarfile sees
        if not info.isreg():
            raise refused(raw, "unsupported entry type")
        total += info.size
        if total > limits.max_unpacked_bytes:
            raise _too_big(limits)
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


def inspect_tar(tar: tarfile.TarFile, limits: ArchiveLimits) -> Plan[tarfile.TarInfo]:
    """Names and types of every member, judged like a ZIP's (open it with ``open_tar``)."""
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
        parts, slash = _name_parts(name, limits)
        kind = _tar_kind(member)
        if kind != "ok":
            raise refused(raw, kind)
        if slash and not member.isdir():
            raise refused(raw, "a file name ending in '/'")
        _claim(seen, raw, parts, member.isdir())
        if member.isdir():
            plan.dirs.append(parts)
            continue
        plan.total_bytes += member.size
        plan.files.append((parts, member))
    _settle(plan, seen)
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
        _mkdirs(staging_fd, parts, uid, gid)
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
            written = _write_file(
                staging_fd,
                parts,
                mode,
                src,
                _Entry(member.name, member.size, written, uid, gid),
                limits,
                _TAR_CORRUPT,
            )
    return written


def _mkdirs(base_fd: int, parts: tuple[str, ...], uid: int, gid: int) -> None:
    """Make a folder (and its parents) in the private staging folder, owned by uid:gid."""
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        try:
            os.mkdir(rel, 0o755, dir_fd=base_fd)
        except FileExistsError:
            continue
        os.chown(rel, uid, gid, dir_fd=base_fd, follow_symlinks=False)

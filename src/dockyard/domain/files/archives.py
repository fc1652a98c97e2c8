"""ZIP archives from clients, checked whole before a single byte is unpacked; and the
rules every archive shares (names, claims, limits, the one writer into staging).

Every entry is judged from the central directory and its local header: names (no
``..``, absolute paths, drive letters, backslashes, NUL, over-long or duplicate names),
types (no links, devices, FIFOs), counts, sizes and compression ratios, and entries
whose data overlap (the overlapping-entry zip bomb). Unpacking then writes only into a
fresh staging folder, counting the bytes it really writes. Blocking: run in a thread.
Tar archives get the same rules in ``tars.py``.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Generic, TypeVar

from dockyard.errors import PayloadTooLargeError, ValidationError

_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_CHUNK = 1024 * 1024
_LINK_MAX = 4096

M = TypeVar("M")


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
    # Symbolic links (name, target), only when the caller accepts them (build contexts
    # judge their targets themselves); uploads into /app refuse every link.
    links: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def refused(entry: str, reason: str) -> ValidationError:
    return ValidationError(
        f"archive entry {entry!r} refused: {reason}",
        code="UNSAFE_ARCHIVE_ENTRY",
        details={"entry": entry[:300], "reason": reason},
    )


def name_parts(raw: str, limits: ArchiveLimits) -> tuple[tuple[str, ...], bool]:
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


def too_many(entries: int, limits: ArchiveLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"archive has {entries} entries; the limit is {limits.max_entries}",
        code="TOO_MANY_ENTRIES",
        details={"entries": entries, "limit": limits.max_entries},
    )


def too_big(limits: ArchiveLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"archive unpacks to more than {limits.max_unpacked_bytes} bytes",
        code="UNPACKED_TOO_LARGE",
        details={"limit": limits.max_unpacked_bytes},
    )


def claim(
    seen: dict[tuple[str, ...], bool], raw: str, parts: tuple[str, ...], is_dir: bool
) -> None:
    """Record one name; duplicates and files that are also parent folders are refused."""
    if parts in seen:
        raise refused(raw, "duplicate name")
    for depth in range(1, len(parts)):
        if seen.get(parts[:depth]) is False:
            raise refused(raw, "a file of the same name is a parent folder")
    seen[parts] = is_dir


def settle(plan: Plan[M], seen: dict[tuple[str, ...], bool]) -> None:
    """After the last entry: parents named later as files, and folders implied by names."""
    named = [p for p, _ in plan.files] + [p for p, _ in plan.links]
    for parts in named:
        if any(seen.get(parts[:d]) is False for d in range(1, len(parts))):
            raise refused("/".join(parts), "a file of the same name is a parent folder")
    implied = {p[:d] for p in named for d in range(1, len(p))}
    plan.dirs = sorted(set(plan.dirs) | implied, key=lambda p: (len(p), p))


def inspect(
    archive: zipfile.ZipFile, limits: ArchiveLimits, *, symlinks: bool = False
) -> Plan[zipfile.ZipInfo]:
    """What the ZIP holds, judged; ``symlinks`` accepts links into ``plan.links`` (their
    targets unjudged) instead of refusing them."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise too_many(len(infos), limits)
    plan = Plan[zipfile.ZipInfo]()
    seen: dict[tuple[str, ...], bool] = {}
    for info in infos:
        raw = info.orig_filename  # before zipfile cuts the name at a NUL
        parts, is_dir = name_parts(raw, limits)
        kind = _kind(info)
        if kind == "symbolic link" and symlinks and not info.flag_bits & 0x1:
            claim(seen, raw, parts, False)
            plan.links.append((parts, _link_target(archive, info)))
            continue
        if kind != "ok":
            raise refused(raw, kind)
        if info.flag_bits & 0x1:
            raise refused(raw, "encrypted")
        claim(seen, raw, parts, is_dir)
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
            raise too_big(limits)
        plan.files.append((parts, info))
    settle(plan, seen)
    _check_overlaps(archive, infos)
    return plan


def _link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A ZIP link's target is its data (at most PATH_MAX bytes)."""
    if info.file_size > _LINK_MAX:
        raise refused(info.orig_filename, "link target too long")
    try:
        with archive.open(info) as src:
            data = src.read(_LINK_MAX + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise refused(info.orig_filename, f"corrupt data ({exc})") from exc
    if len(data) > _LINK_MAX or not data:
        raise refused(info.orig_filename, "link target empty or too long")
    return data.decode("utf-8", "surrogateescape")


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
        mkdirs(staging_fd, parts, uid, gid)
    written = 0
    for parts, info in plan.files:
        mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
        try:
            with archive.open(info) as src:
                written = write_file(
                    staging_fd,
                    parts,
                    mode,
                    src,
                    EntryWrite(info.orig_filename, info.file_size, written, uid, gid),
                    limits,
                    (zipfile.BadZipFile, zlib.error, EOFError),
                )
        except zipfile.BadZipFile as exc:
            raise refused(info.orig_filename, f"corrupt data ({exc})") from exc
    return written


@dataclass(frozen=True)
class EntryWrite:
    name: str
    declared: int
    written_before: int
    uid: int
    gid: int


def write_file(
    staging_fd: int,
    parts: tuple[str, ...],
    mode: int,
    src: IO[bytes],
    entry: EntryWrite,
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


def mkdirs(base_fd: int, parts: tuple[str, ...], uid: int, gid: int) -> None:
    """Make a folder (and its parents) in the private staging folder, owned by uid:gid."""
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        try:
            os.mkdir(rel, 0o755, dir_fd=base_fd)
        except FileExistsError:
            continue
        os.chown(rel, uid, gid, dir_fd=base_fd, follow_symlinks=False)

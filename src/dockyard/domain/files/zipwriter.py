"""A streaming ZIP writer whose memory does not grow with the member count (issue 9).

Each member goes out as a local header, its deflated data and a data descriptor, so
nothing is buffered beyond one output piece. Its central directory record is appended
to a private temporary file (unlinked as it is made, closed when the body ends or is
closed early) and copied out at the end: the one part of a ZIP that grows with the count
never lives in memory.

ZIP64 is used only where it is needed: a member whose size may not fit 32 bits gets a
ZIP64 local header and descriptor; a size or offset past ``ZIP32_LIMIT`` moves into the
central record's ZIP64 extra; more than ``ZIP32_COUNT`` members (or a directory past 4
GiB) adds the ZIP64 end records. Names are UTF-8 (flag 11); the mode goes in the high
half of the external attributes, as ``zip`` and ``unzip`` on UNIX expect.
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Pieces of about this size go out: each costs the server a hop to a thread, so not many
# tiny ones; and not so big that copying them into one ``bytes`` shows in the peak RSS.
PIECE = 256 * 1024
LEVEL = 6

# Sizes and offsets at or past this go in ZIP64 extras; more members than ZIP32_COUNT
# need the ZIP64 end records. Module constants so that a test can lower them.
ZIP32_LIMIT = 0xFFFFFFFF
ZIP32_COUNT = 0xFFFF

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_DESCRIPTOR32 = struct.Struct("<4sIII")
_DESCRIPTOR64 = struct.Struct("<4sIQQ")
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_END = struct.Struct("<4sHHHHIIH")
_LOCAL_ZIP64_EXTRA = struct.Struct("<HHQQ").pack(0x0001, 16, 0, 0)

_DESCRIPTOR_FLAG = 0x0008
_UTF8_FLAG = 0x0800
_DEFLATED = 8
_UNIX = 3
_V20, _V45 = 20, 45
_NO_DATE = (0, (1 << 5) | 1)  # 1980-01-01 00:00, the earliest a ZIP can say


@dataclass(slots=True)
class ZipMember:
    """One file to zip: its name (``/``-separated), mtime (seconds since the epoch), full
    mode (``S_IFREG | 0o644``), expected size, and its bytes."""

    name: str
    mtime: float
    mode: int
    size: int
    chunks: Iterable[bytes]


class ZipSizeError(ValueError):
    """A member planned as 32-bit grew past 4 GiB while it was read."""


def zip_chunks(members: Iterable[ZipMember], tmp_dir: Path) -> Iterator[bytes]:
    """The ZIP of ``members`` in pieces of about ``PIECE`` bytes; the central directory
    is spilled to a temporary file in ``tmp_dir`` until the end."""
    member: ZipMember | None = None
    try:
        with tempfile.TemporaryFile(dir=tmp_dir, prefix="zip-directory-") as directory:
            writer = _Writer(directory)
            for member in members:
                entry = writer.begin(member)
                for chunk in member.chunks:
                    deflated = writer.deflate(entry, chunk)
                    if len(deflated) < PIECE:
                        writer.out += deflated
                        if len(writer.out) >= PIECE:
                            yield writer.take()
                    else:  # a big file's data goes out as it is, never copied
                        if writer.out:
                            yield writer.take()
                        yield writer.sent(deflated)
                writer.finish(entry, member)
                _close(member.chunks)
                member = None
                if len(writer.out) >= PIECE:
                    yield writer.take()
            yield from writer.directory_and_end()
    finally:
        if member is not None:
            _close(member.chunks)
        _close(members)


def _close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if close is not None:
        close()


@dataclass(slots=True)
class _Entry:
    name: bytes
    flags: int
    dos_time: int
    dos_date: int
    offset: int
    zip64: bool
    compressor: zlib._Compress
    crc: int = 0
    size: int = 0
    compressed: int = 0


class _Writer:
    def __init__(self, directory: IO[bytes]) -> None:
        self.out = bytearray()
        self._sent = 0  # bytes already taken out of ``out``
        self._directory = directory
        self._directory_size = 0
        self._count = 0

    def take(self) -> bytes:
        piece = bytes(self.out)
        self.out.clear()
        return self.sent(piece)

    def sent(self, piece: bytes) -> bytes:
        self._sent += len(piece)
        return piece

    def begin(self, member: ZipMember) -> _Entry:
        name, flags = _encoded(member.name)
        dos_time, dos_date = _dos_stamp(member.mtime)
        # Deflate may add a little to incompressible data: leave room for it.
        zip64 = member.size + (member.size >> 10) + 64 >= ZIP32_LIMIT
        extra = _LOCAL_ZIP64_EXTRA if zip64 else b""
        entry = _Entry(
            name,
            flags,
            dos_time,
            dos_date,
            self._sent + len(self.out),
            zip64,
            zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS),
        )
        unknown = 0xFFFFFFFF if zip64 else 0
        self.out += _LOCAL.pack(
            b"PK\x03\x04",
            _V45 if zip64 else _V20,
            flags,
            _DEFLATED,
            dos_time,
            dos_date,
            0,
            unknown,
            unknown,
            len(name),
            len(extra),
        )
        self.out += name
        self.out += extra
        return entry

    @staticmethod
    def deflate(entry: _Entry, chunk: bytes) -> bytes:
        entry.crc = zlib.crc32(chunk, entry.crc)
        entry.size += len(chunk)
        deflated = entry.compressor.compress(chunk)
        entry.compressed += len(deflated)
        return deflated

    def finish(self, entry: _Entry, member: ZipMember) -> None:
        tail = entry.compressor.flush()
        entry.compressed += len(tail)
        self.out += tail
        if entry.zip64:
            self.out += _DESCRIPTOR64.pack(b"PK\x07\x08", entry.crc, entry.compressed, entry.size)
        elif entry.compressed >= ZIP32_LIMIT or entry.size >= ZIP32_LIMIT:
            raise ZipSizeError(f"{member.name} grew past 4 GiB while it was zipped")
        else:
            self.out += _DESCRIPTOR32.pack(b"PK\x07\x08", entry.crc, entry.compressed, entry.size)
        self._record(entry, member.mode)

    def _record(self, entry: _Entry, mode: int) -> None:
        wide = entry.zip64 or entry.size >= ZIP32_LIMIT or entry.compressed >= ZIP32_LIMIT
        fields = [entry.size, entry.compressed] if wide else []
        far = entry.offset >= ZIP32_LIMIT
        if far:
            fields.append(entry.offset)
        extra = b""
        if fields:
            extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields)
        version = _V45 if extra else _V20
        record = _CENTRAL.pack(
            b"PK\x01\x02",
            version,
            _UNIX,
            version,
            entry.flags,
            _DEFLATED,
            entry.dos_time,
            entry.dos_date,
            entry.crc,
            0xFFFFFFFF if wide else entry.compressed,
            0xFFFFFFFF if wide else entry.size,
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            (mode & 0xFFFF) << 16,
            0xFFFFFFFF if far else entry.offset,
        )
        self._directory.write(record)
        self._directory.write(entry.name)
        self._directory.write(extra)
        self._directory_size += len(record) + len(entry.name) + len(extra)
        self._count += 1

    def directory_and_end(self) -> Iterator[bytes]:
        start = self._sent + len(self.out)
        if self.out:
            yield self.take()
        self._directory.flush()
        self._directory.seek(0)
        while piece := self._directory.read(PIECE):
            yield piece
        self._end(start)
        yield self.take()

    def _end(self, start: int) -> None:
        count, size = self._count, self._directory_size
        if count <= ZIP32_COUNT and start < ZIP32_LIMIT and size < ZIP32_LIMIT:
            self.out += _END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0)
            return
        end64 = start + size
        self.out += _END64.pack(b"PK\x06\x06", 44, _V45, _V45, 0, 0, count, count, size, start)
        self.out += _LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1)
        self.out += _END.pack(
            b"PK\x05\x06",
            0,
            0,
            min(count, 0xFFFF),
            min(count, 0xFFFF),
            min(size, 0xFFFFFFFF),
            min(start, 0xFFFFFFFF),
            0,
        )


def _encoded(name: str) -> tuple[bytes, int]:
    """The name's bytes and flags: UTF-8 (flag 11), or a host name's own bytes when it is
    not valid UTF-8 (``os.scandir`` hands those over as surrogate escapes)."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raw, flags = name.encode("utf-8", "surrogateescape"), _DESCRIPTOR_FLAG
    else:
        flags = _DESCRIPTOR_FLAG | _UTF8_FLAG
    if len(raw) > 0xFFFF:
        raise ValueError(f"a name of {len(raw)} bytes does not fit a ZIP")
    return raw, flags


def _dos_stamp(mtime: float) -> tuple[int, int]:
    """MS-DOS time and date (UTC, 2-second steps), clamped to the 1980 - 2107 a ZIP holds."""
    try:
        t = time.gmtime(mtime)
    except (OverflowError, OSError, ValueError):
        return _NO_DATE if mtime < 0 else (0xBF7D, 0xFF9F)
    if t.tm_year < 1980:
        return _NO_DATE
    if t.tm_year > 2107:
        return 0xBF7D, 0xFF9F  # 2107-12-31 23:59:58
    return (
        (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
        ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday,
    )

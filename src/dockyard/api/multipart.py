"""Multipart bodies read as they arrive: one field's bytes streamed (an upload, never all
in memory), the other fields kept when small (a JSON manifest), anything else dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from dockyard.errors import PayloadTooLargeError, ValidationError

MAX_BOUNDARY = 70  # RFC 2046; a longer one is refused before parsing


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` type (400 if it has none or a bad one);
    None for any other type."""
    mime, options = parse_options_header(content_type)
    if mime != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > MAX_BOUNDARY:
        raise ValidationError(
            f"a multipart boundary has 1 to {MAX_BOUNDARY} characters (RFC 2046)",
            code="INVALID_MULTIPART",
        )
    return bytes(boundary)


class MultipartFields:
    """``stream()`` yields the bytes of the field ``file_field`` as they arrive; once it
    has ended, ``small`` holds the fields named in ``keep`` (each at most ``keep_max``
    bytes, 413 past it), ``seen`` the names of every field that came and ``file_bytes``
    the size of the file field."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        boundary: bytes,
        *,
        file_field: bytes,
        keep: frozenset[bytes] = frozenset(),
        keep_max: int = 1024 * 1024,
    ) -> None:
        self._chunks = chunks
        self._file = file_field
        self._keep = keep
        self._keep_max = keep_max
        self.small: dict[bytes, bytearray] = {}
        self.seen: set[bytes] = set()
        self.file_bytes = 0
        self._state: dict[str, Any] = {"field": b"", "value": b"", "name": None}
        self._out: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_part_data": self._part_data,
            },
        )

    def _part_begin(self) -> None:
        self._state["name"] = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._state["field"] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._state["value"] += data[start:end]

    def _header_end(self) -> None:
        state = self._state
        if state["field"].lower() == b"content-disposition":
            _, opts = parse_options_header(state["value"])
            state["name"] = opts.get(b"name")
            if state["name"] is not None:
                self.seen.add(state["name"])
        state["field"], state["value"] = b"", b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        name = self._state["name"]
        if name == self._file:
            self._out.append(data[start:end])
            self.file_bytes += end - start
        elif name in self._keep:
            kept = self.small.setdefault(name, bytearray())
            kept += data[start:end]
            if len(kept) > self._keep_max:
                raise PayloadTooLargeError(
                    f"the multipart field {name.decode('latin-1')!r} is over"
                    f" {self._keep_max} bytes",
                    code="BODY_TOO_LARGE",
                    details={"field": name.decode("latin-1"), "limit": self._keep_max},
                )

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                self._parser.write(chunk)
                if self._out:
                    out, self._out = self._out, []
                    yield b"".join(out)
            self._parser.finalize()
        except MultipartParseError as exc:  # a client's malformed body: 400, not a 500
            raise ValidationError(
                "malformed multipart body", code="INVALID_MULTIPART", details={"reason": str(exc)}
            ) from None
        if self._out:
            out, self._out = self._out, []
            yield b"".join(out)

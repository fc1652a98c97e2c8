"""Client-supplied paths, checked before any file system sees them (SPEC §4, files).

A path is either under ``/app`` (read and written on the host, in the container's own
folder) or anywhere else in the container (read through the Engine API). Either way it
is split into plain components here; ``..``, NUL, backslashes and the like are refused.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from dockyard.errors import ValidationError

APP = "/app"
MAX_PATH = 4096
MAX_COMPONENT = 255


@dataclass(frozen=True)
class ContainerPath:
    """A checked absolute path inside the container."""

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "/" + "/".join(self.parts)

    @property
    def in_app(self) -> bool:
        return self.parts[:1] == ("app",)

    @property
    def app_parts(self) -> tuple[str, ...]:
        """Components below ``/app`` (empty for ``/app`` itself)."""
        return self.parts[1:]

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else "root"


def bad_path(reason: str, provided: str, field: str = "path") -> ValidationError:
    return ValidationError(
        f"{field}: {reason}",
        code="INVALID_PATH",
        details={"field": field, "provided": provided[:300]},
    )


def check_component(part: str, provided: str, field: str = "path") -> str:
    if part in ("", ".", ".."):
        raise bad_path("'..' and empty components are not allowed", provided, field)
    if "\x00" in part or "\\" in part:
        raise bad_path("NUL and backslashes are not allowed", provided, field)
    if len(part.encode()) > MAX_COMPONENT:
        raise bad_path("a name is longer than 255 bytes", provided, field)
    if any(ord(ch) < 32 for ch in part):
        raise bad_path("control characters are not allowed", provided, field)
    return part


def parse(raw: str | None, *, default: str = APP, field: str = "path") -> ContainerPath:
    """An absolute container path, or one relative to ``/app``."""
    text = default if raw is None or raw == "" else raw
    if len(text) > MAX_PATH:
        raise bad_path("too long", text, field)
    if "\x00" in text or "\\" in text:
        raise bad_path("NUL and backslashes are not allowed", text, field)
    if not text.startswith("/"):
        text = APP + "/" + text
    # Refuse rather than normalise: a client that sends '..' is either confused or probing.
    pieces = [p for p in text.split("/") if p not in ("", ".")]
    for piece in pieces:
        check_component(piece, text, field)
    if posixpath.normpath(text) != "/" + "/".join(pieces):
        raise bad_path("not a normal path", text, field)
    return ContainerPath(tuple(pieces))


def parse_under_app(raw: str | None, field: str = "path") -> ContainerPath:
    path = parse(raw, field=field)
    if not path.in_app:
        raise bad_path("must be under /app", raw or "", field)
    return path

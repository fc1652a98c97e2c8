"""File listings, changes and uploads (SPEC §4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dockyard.api.schemas.common import Instant, Out


class FileEntry(Out):
    name: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: str = Field(description='octal, e.g. "0o644"')
    mtime: Instant


class FileListing(Out):
    path: str
    entries: list[FileEntry]


class Change(Out):
    path: str
    kind: Literal["changed", "added", "deleted"]


class ChangeList(Out):
    changes: list[Change]


class UploadOut(Out):
    files: int = Field(description="files written")
    bytes: int = Field(description="bytes written")

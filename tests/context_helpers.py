"""Archives for build-context tests: every member kind a client could send."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class M:
    """One archive member: a file (``data``), ``dir``, ``sym``/``hard`` (``target``),
    ``fifo`` or ``chr``."""

    name: str
    data: bytes = b""
    kind: str = "file"
    target: str = ""
    mode: int = 0o644


def write_tar(path: Path, members: Iterable[M], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[m.kind]
            info.linkname = m.target
            tar.addfile(info)
    return path


def write_zip(path: Path, members: Iterable[M]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for m in members:
            info = zipfile.ZipInfo(m.name + ("/" if m.kind == "dir" else ""))
            info.create_system = 3
            if m.kind == "sym":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, m.target)
            elif m.kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                archive.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | m.mode) << 16
                archive.writestr(info, m.data)
    return path


def tar_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:") as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_text(path: Path, name: str) -> str:
    with tarfile.open(path, "r:") as tar:
        src = tar.extractfile(name)
        assert src is not None
        return src.read().decode()


def assert_only_safe_members(path: Path) -> None:
    """What the engine receives: folders, files and inside links only, owned by 0:0."""
    members = tar_members(path)
    for name, m in members.items():
        parts = PurePosixPath(name).parts
        assert not name.startswith("/") and ".." not in parts, name
        assert m.isdir() or m.isreg() or m.issym(), name
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), name
        if m.issym():
            assert not m.linkname.startswith("/"), name
            depth = len(parts) - 1
            for part in m.linkname.split("/"):
                depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
                assert depth >= 0, name

"""A build context as Dockyard sees it before writing it: a tree of checked entries.

Every source (an uploaded archive, a downloaded one, a git checkout, a Dockerfile text)
is read into a ``Tree`` — names split into components, only folders, regular files and
symbolic links — with the limits counted while reading. ``check_links`` then follows
each link the way the engine would, inside the tree, and refuses any that leaves it;
``resolve_dockerfile`` finds the Dockerfile the same way. ``write_tar`` finally writes a
plain tar, member by member, owned by 0:0: the client's archive never reaches the engine.
Blocking: run in a thread.
"""

from __future__ import annotations

import os
import stat
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from dockyard.errors import PayloadTooLargeError, ValidationError

Parts = tuple[str, ...]
_LINK_HOPS = 40  # the kernel's own limit on links followed in one lookup
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Node:
    kind: Literal["dir", "file", "link"]
    size: int = 0
    executable: bool = False
    mtime: float = 0.0
    target: str = ""  # a link's target, as written
    opener: Callable[[], IO[bytes]] | None = field(default=None, compare=False)


@dataclass
class Tree:
    """Entries by name; folders implied by a name exist too. ``field`` names the request
    field whose content this is, for the errors."""

    origin: str
    max_bytes: int
    max_entries: int
    nodes: dict[Parts, Node] = field(default_factory=dict)
    size: int = 0

    def add(self, parts: Parts, node: Node) -> None:
        """Add one entry (and its parent folders), counting toward the limits."""
        for depth in range(1, len(parts)):
            if parts[:depth] not in self.nodes:
                self._put(parts[:depth], Node("dir", mtime=node.mtime))
        if parts in self.nodes and node.kind == "dir" == self.nodes[parts].kind:
            return
        self._put(parts, node)

    def _put(self, parts: Parts, node: Node) -> None:
        old = self.nodes.get(parts)
        if old is not None:
            self.size -= old.size
        elif len(self.nodes) >= self.max_entries:
            raise PayloadTooLargeError(
                f"{self.origin}: the context has more than {self.max_entries} entries",
                code="TOO_MANY_ENTRIES",
                details={"field": self.origin, "limit": self.max_entries},
            )
        self.nodes[parts] = node
        self.size += node.size
        if self.size > self.max_bytes:
            raise too_large(self.origin, self.max_bytes)


def too_large(field_name: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{field_name}: the build context is larger than {limit} bytes unpacked",
        code="CONTEXT_TOO_LARGE",
        details={"field": field_name, "limit": limit},
    )


def outside(field_name: str, entry: str, reason: str) -> ValidationError:
    return ValidationError(
        f"{field_name}: entry {entry[:300]!r} refused: {reason}",
        code="CONTEXT_PATH_OUTSIDE",
        details={"field": field_name, "entry": entry[:300], "reason": reason},
    )


def resolve(tree: Tree, start: Parts, path: str) -> Parts | None:
    """``path`` (relative to folder ``start``) with every link of the tree followed, as
    the engine follows them inside a context; None if it would leave the tree."""
    if path.startswith("/"):
        return None
    pending = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = list(start)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not done:
                return None
            done.pop()
            continue
        node = tree.nodes.get((*done, part))
        if node is None or node.kind != "link":
            done.append(part)
            continue
        hops += 1
        if hops > _LINK_HOPS or node.target.startswith("/"):
            return None
        pending[:0] = [p for p in node.target.split("/") if p not in ("", ".")]
    return tuple(done)


def check_links(tree: Tree) -> None:
    """Every symbolic link must resolve inside the tree (dangling inside is allowed)."""
    for parts, node in tree.nodes.items():
        if node.kind != "link":
            continue
        if "\x00" in node.target or resolve(tree, parts[:-1], node.target) is None:
            name = "/".join(parts)
            raise ValidationError(
                f"{tree.origin}: link {name[:300]!r} points outside the context",
                code="CONTEXT_LINK_OUTSIDE",
                details={"field": tree.origin, "entry": name[:300], "target": node.target[:300]},
            )


def normal_path(path: str, field_name: str, code: str) -> Parts:
    """A relative path inside the context, normalised (``./a//b`` is ``a/b``); ``..``,
    absolute paths, backslashes and control characters are refused with ``code``."""
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
        or ".." in path.split("/")
    )
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if bad or not parts or len(path) > 4096:
        raise ValidationError(
            f"{field_name}: {path[:200]!r} must be a relative path inside the context",
            code=code,
            details={"field": field_name, "provided": path[:200]},
        )
    return parts


def resolve_dockerfile(tree: Tree, parts: Parts) -> str:
    """The Dockerfile must be a regular file of the tree (through links inside it)."""
    name = "/".join(parts)
    found = resolve(tree, (), name)
    if found is None:
        raise ValidationError(
            f"dockerfile_path: {name!r} leads outside the context",
            code="DOCKERFILE_OUTSIDE",
            details={"field": "dockerfile_path", "provided": name},
        )
    node = tree.nodes.get(found)
    if node is None or node.kind != "file":
        raise ValidationError(
            f"dockerfile_path: the context has no file {name!r}",
            code="DOCKERFILE_NOT_FOUND",
            details={"field": "dockerfile_path", "provided": name},
        )
    return name


def read_folder(tree: Tree, root: Path, stop: threading.Event) -> None:
    """Add what is below ``root`` (a folder Dockyard made, e.g. a git checkout); links
    are read, never followed; anything but folders, files and links is refused."""
    pending: list[tuple[Path, Parts]] = [(root, ())]
    while pending:
        folder, prefix = pending.pop()
        if stop.is_set():
            raise InterruptedError("context preparation cancelled")
        with os.scandir(folder) as listing:
            for item in listing:
                parts = (*prefix, item.name)
                info = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    tree.add(parts, Node("dir", mtime=info.st_mtime))
                    pending.append((Path(item.path), parts))
                elif stat.S_ISREG(info.st_mode):
                    tree.add(parts, _file_node(Path(item.path), info))
                elif stat.S_ISLNK(info.st_mode):
                    target = os.readlink(item.path)
                    tree.add(parts, Node("link", mtime=info.st_mtime, target=target))
                else:
                    name = "/".join(parts)
                    raise ValidationError(
                        f"{tree.origin}: {name[:300]!r} is not a file, folder or link",
                        code="UNSAFE_ARCHIVE_ENTRY",
                        details={"field": tree.origin, "entry": name[:300]},
                    )


def _file_node(path: Path, info: os.stat_result) -> Node:
    def opener() -> IO[bytes]:
        return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")

    return Node(
        "file",
        size=info.st_size,
        executable=bool(info.st_mode & 0o111),
        mtime=info.st_mtime,
        opener=opener,
    )


def write_tar(tree: Tree, dest: Path, stop: threading.Event) -> int:
    """Write the tree as a plain tar (parents first, owner 0:0); returns its entries."""
    now = time.time()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for parts in sorted(tree.nodes):
            if stop.is_set():
                raise InterruptedError("context preparation cancelled")
            node = tree.nodes[parts]
            info = tarfile.TarInfo("/".join(parts))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = int(min(max(node.mtime, 0), now))
            if node.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif node.kind == "link":
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, node.target
                tar.addfile(info)
            else:
                assert node.opener is not None
                info.size, info.mode = node.size, 0o755 if node.executable else 0o644
                with node.opener() as src:
                    tar.addfile(info, _Exact(src, node.size, "/".join(parts), tree.origin))
    return len(tree.nodes)


class _Exact:
    """A reader that gives exactly ``size`` bytes or fails: a source that holds more or
    fewer bytes than it said (a lying archive) never makes a tar that differs from the
    sizes that were checked."""

    def __init__(self, src: IO[bytes], size: int, name: str, field_name: str) -> None:
        self._src, self._left, self._name, self._field = src, size, name, field_name

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        data = self._src.read(want) if want else b""
        self._left -= len(data)
        if len(data) < want or (self._left == 0 and self._src.read(1)):
            raise ValidationError(
                f"{self._field}: entry {self._name[:300]!r} does not hold the size it says",
                code="INVALID_ARCHIVE",
                details={"field": self._field, "entry": self._name[:300]},
            )
        return data

"""Descriptor-relative file access below one folder, never following a symlink.

A container's root user controls what is inside its ``app/`` folder and may plant links
(``ln -s / /app/esc``) or swap them in while we work. Every path is therefore walked one
component at a time with ``O_NOFOLLOW`` relative to the descriptor of its parent — the
equivalent of ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` — so a link is refused,
never followed, whenever it appears. All functions here block: call them in a thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from dockyard.errors import ConflictError, NotFoundError, StorageIOError, ValidationError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True)
class Entry:
    name: str
    type: str  # file | dir | symlink | other
    size: int
    mode: int
    mtime: float


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _shown(parts: Sequence[str]) -> str:
    return "/app/" + "/".join(parts) if parts else "/app"


def _walk_error(exc: OSError, parts: Sequence[str]) -> Exception:
    if exc.errno == errno.ENOENT:
        return NotFoundError(
            f"{_shown(parts)} does not exist",
            code="PATH_NOT_FOUND",
            details={"path": _shown(parts)},
        )
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return ValidationError(
            f"{_shown(parts)} is, or passes through, a symbolic link or a file",
            code="UNSAFE_PATH",
            details={"path": _shown(parts)},
        )
    return StorageIOError(
        f"cannot open {_shown(parts)}: {exc.strerror}", details={"path": _shown(parts)}
    )


class HostTree:
    """One container's ``app/`` folder, reached only through descriptors."""

    def __init__(self, root: str, uid: int, gid: int) -> None:
        self.root = root
        self.uid = uid
        self.gid = gid

    @contextmanager
    def directory(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder at ``parts`` (made, owned by uid:gid, if asked)."""
        fd = self._open_dir(parts, create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_dir(self, parts: Sequence[str], *, create: bool) -> int:
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as exc:
            raise _walk_error(exc, ()) from exc
        for depth, name in enumerate(parts):
            try:
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(name, 0o755, dir_fd=fd)
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    os.fchown(child, self.uid, self.gid)
            except OSError as exc:
                os.close(fd)
                raise _walk_error(exc, parts[: depth + 1]) from exc
            os.close(fd)
            fd = child
        return fd

    def lstat(self, parts: Sequence[str]) -> os.stat_result:
        if not parts:
            with self.directory(()) as fd:
                return os.fstat(fd)
        with self.directory(parts[:-1]) as fd:
            try:
                return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                raise _walk_error(exc, parts) from exc

    def open_regular(self, parts: Sequence[str]) -> int:
        """A read descriptor of a regular file; links, FIFOs and devices are refused."""
        if not parts:
            raise ValidationError("/app is a folder", code="NOT_A_FILE", details={"path": "/app"})
        with self.directory(parts[:-1]) as parent:
            try:
                fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=parent)
            except OSError as exc:
                raise _walk_error(exc, parts) from exc
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise ValidationError(
                f"{_shown(parts)} is a {kind_of(mode)}, not a file",
                code="NOT_A_FILE",
                details={"path": _shown(parts)},
            )
        os.set_blocking(fd, True)
        return fd

    def list(self, parts: Sequence[str]) -> list[Entry]:
        with self.directory(parts) as fd, os.scandir(fd) as it:
            found = []
            for item in it:
                st = item.stat(follow_symlinks=False)
                found.append(
                    Entry(
                        item.name,
                        kind_of(st.st_mode),
                        st.st_size,
                        stat.S_IMODE(st.st_mode),
                        st.st_mtime,
                    )
                )
        return sorted(found, key=lambda e: e.name)

    def walk_files(
        self, parts: Sequence[str]
    ) -> Iterator[tuple[tuple[str, ...], os.stat_result, int]]:
        """Every regular file below ``parts``: (relative parts, stat, open descriptor).

        Links and special files are skipped; the caller closes each descriptor."""
        with self.directory(parts) as top:
            yield from self._walk(top, ())

    def _walk(
        self, dir_fd: int, prefix: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], os.stat_result, int]]:
        with os.scandir(dir_fd) as it:
            names = sorted((e.name, e.stat(follow_symlinks=False).st_mode) for e in it)
        for name, mode in names:
            rel = (*prefix, name)
            if stat.S_ISDIR(mode):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue  # swapped for a link meanwhile: skip, never follow
                try:
                    yield from self._walk(child, rel)
                finally:
                    os.close(child)
            elif stat.S_ISREG(mode):
                try:
                    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    os.close(fd)
                    continue
                os.set_blocking(fd, True)
                yield rel, st, fd


class Transaction:
    """Moves a staged tree into place; on any failure every change is undone.

    Files that are replaced are first moved aside into ``backup`` (same file system, so
    every step is a rename), then the staged ones are renamed in. ``rollback`` reverses
    the journal."""

    def __init__(self, tree: HostTree, staging_fd: int, backup_fd: int) -> None:
        self.tree = tree
        self.staging_fd = staging_fd
        self.backup_fd = backup_fd
        self._journal: list[tuple[str, tuple[str, ...], str]] = []
        self._counter = 0

    def check(
        self,
        target: Sequence[str],
        dirs: Sequence[tuple[str, ...]],
        files: Sequence[tuple[str, ...]],
    ) -> None:
        """Refuse up front what could not be applied, before anything changes."""
        for rel in dirs:
            self._check_dir((*target, *rel))
        for rel in files:
            full = (*target, *rel)
            self._check_dir(full[:-1])
            try:
                mode = self.tree.lstat(full).st_mode
            except NotFoundError:
                continue
            if stat.S_ISDIR(mode):
                raise ConflictError(
                    f"{_shown(full)} is a folder; a file cannot replace it",
                    code="PATH_CONFLICT",
                    details={"path": _shown(full)},
                )

    def _check_dir(self, parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            try:
                mode = self.tree.lstat(parts[:depth]).st_mode
            except NotFoundError:
                return
            if not stat.S_ISDIR(mode):
                raise ConflictError(
                    f"{_shown(parts[:depth])} is a {kind_of(mode)}, not a folder",
                    code="PATH_CONFLICT",
                    details={"path": _shown(parts[:depth])},
                )

    def apply(
        self,
        target: Sequence[str],
        dirs: Sequence[tuple[str, ...]],
        files: Sequence[tuple[str, ...]],
    ) -> None:
        for rel in dirs:
            self._ensure_dir((*target, *rel))
        for rel in files:
            full = (*target, *rel)
            with (
                self.tree.directory(full[:-1]) as dest,
                _opened_dir(self.staging_fd, rel[:-1]) as src,
            ):
                name = full[-1]
                try:
                    os.stat(name, dir_fd=dest, follow_symlinks=False)
                    exists = True
                except FileNotFoundError:
                    exists = False
                if exists:
                    self._counter += 1
                    aside = f"{self._counter}"
                    os.rename(name, aside, src_dir_fd=dest, dst_dir_fd=self.backup_fd)
                    self._journal.append(("aside", full, aside))
                os.rename(rel[-1], name, src_dir_fd=src, dst_dir_fd=dest)
                self._journal.append(("placed", full, "/".join(rel)))

    def _ensure_dir(self, parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            try:
                self.tree.lstat(parts[:depth])
            except NotFoundError:
                with self.tree.directory(parts[:depth], create=True):
                    pass
                self._journal.append(("mkdir", parts[:depth], ""))

    def rollback(self) -> None:
        for action, full, extra in reversed(self._journal):
            with suppress(OSError, NotFoundError, ValidationError):
                if action == "placed":
                    with self.tree.directory(full[:-1]) as dest:
                        os.unlink(full[-1], dir_fd=dest)
                elif action == "aside":
                    with self.tree.directory(full[:-1]) as dest:
                        os.rename(extra, full[-1], src_dir_fd=self.backup_fd, dst_dir_fd=dest)
                elif action == "mkdir":
                    with self.tree.directory(full[:-1]) as dest:
                        os.rmdir(full[-1], dir_fd=dest)
        self._journal.clear()


@contextmanager
def _opened_dir(base_fd: int, parts: Sequence[str]) -> Iterator[int]:
    fd = os.dup(base_fd)
    try:
        for name in parts:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)

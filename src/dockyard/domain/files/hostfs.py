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

from dockyard.domain.files.walk import DIR_FLAGS as _DIR_FLAGS
from dockyard.domain.files.walk import lazy_walk
from dockyard.domain.files.walk import shown as _shown
from dockyard.errors import (
    ConflictError,
    DockyardError,
    NotFoundError,
    StorageIOError,
    ValidationError,
)

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


def _walk_error(exc: OSError, parts: Sequence[str]) -> Exception:
    if exc.errno == errno.ENOENT:
        return NotFoundError(
            f"{_shown(parts)} does not exist",
            code="PATH_NOT_FOUND",
            details={"path": _shown(parts)},
        )
    if exc.errno == errno.EEXIST:  # a folder to make was made meanwhile (by the container)
        return path_changed(parts)
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
                    try:
                        os.fchown(child, self.uid, self.gid)
                    except OSError:
                        os.close(child)
                        raise
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

    def size(self, parts: Sequence[str]) -> int:
        """Bytes in the regular files below ``parts`` (links and special files skipped)."""
        total = 0
        with self.directory(parts) as top:
            for _parent, _rel, entry in lazy_walk(top, tuple(parts)):
                if entry.is_file(follow_symlinks=False):
                    with suppress(OSError):  # gone meanwhile
                        total += entry.stat(follow_symlinks=False).st_size
        return total

    def walk_files(
        self, parts: Sequence[str]
    ) -> Iterator[tuple[tuple[str, ...], os.stat_result, int]]:
        """Every regular file below ``parts``: (relative parts, stat, open descriptor), in
        the folders' own order, found as it is read (memory stays flat however many).

        Links and special files are skipped; the caller closes each descriptor."""
        with self.directory(parts) as top:
            for parent, rel, entry in lazy_walk(top, tuple(parts)):
                if not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    fd = os.open(rel[-1], _FILE_FLAGS, dir_fd=parent)
                except OSError:
                    continue  # gone, or swapped for a link meanwhile: skip, never follow
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    os.close(fd)
                    continue
                os.set_blocking(fd, True)
                yield rel, st, fd


class Transaction:
    """Moves a staged tree into place; on any failure every change is undone.

    The staged tree is merged into the target folder top-down: a staged entry whose name
    is free in the target moves in with one ``rename`` (a whole new folder at once);
    a folder that exists on both sides is merged entry by entry; a file that exists is
    first moved aside into ``backup``. Everything is a rename on one file system, and a
    ``check`` pass refuses conflicts before anything changes. ``rollback`` reverses the
    journal (what was placed goes into ``backup``, what was set aside comes back)."""

    def __init__(self, tree: HostTree, staging_fd: int, backup_fd: int) -> None:
        self.tree = tree
        self.staging_fd = staging_fd
        self.backup_fd = backup_fd
        self._journal: list[tuple[str, tuple[str, ...], str]] = []
        self._counter = 0

    def check(self, target: Sequence[str]) -> None:
        """Refuse up front what could not be applied, before anything changes."""
        with _changed_meanwhile(target):
            self._check(target)

    def _check(self, target: Sequence[str]) -> None:
        for depth in range(1, len(target) + 1):
            try:
                mode = self.tree.lstat(target[:depth]).st_mode
            except NotFoundError:
                return  # the rest of the target is made fresh: nothing can conflict
            if not stat.S_ISDIR(mode):
                raise _conflict(target[:depth], f"is a {kind_of(mode)}, not a folder")
        with self.tree.directory(target) as dst:
            self._merge(self.staging_fd, dst, tuple(target), apply=False)

    def apply(self, target: Sequence[str]) -> None:
        """Move the staged tree in; on an error the caller calls ``rollback``."""
        with _changed_meanwhile(target):
            self._apply(target)

    def _apply(self, target: Sequence[str]) -> None:
        for depth in range(1, len(target) + 1):
            try:
                self.tree.lstat(target[:depth])
            except NotFoundError:
                # Journaled first: a fault after the mkdir (its open, its chown) must
                # not leave the new folder behind.
                self._journal.append(("mkdir", tuple(target[:depth]), ""))
                with self.tree.directory(target[:depth], create=True):
                    pass
        with self.tree.directory(target) as dst:
            self._merge(self.staging_fd, dst, tuple(target), apply=True)

    def _merge(self, src: int, dst: int, at: tuple[str, ...], *, apply: bool) -> None:
        for name in sorted(os.listdir(src)):
            full = (*at, name)
            staged_dir = stat.S_ISDIR(os.stat(name, dir_fd=src, follow_symlinks=False).st_mode)
            try:
                existing = os.stat(name, dir_fd=dst, follow_symlinks=False).st_mode
            except FileNotFoundError:
                existing = None
            if existing is None:
                if apply:
                    os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
                    self._journal.append(("placed", full, ""))
                continue
            if staged_dir:
                if not stat.S_ISDIR(existing):
                    raise _conflict(full, f"is a {kind_of(existing)}, not a folder")
                child_src = os.open(name, _DIR_FLAGS, dir_fd=src)
                try:
                    try:
                        child_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
                    except OSError as exc:
                        raise _walk_error(exc, full) from exc
                    try:
                        self._merge(child_src, child_dst, full, apply=apply)
                    finally:
                        os.close(child_dst)
                finally:
                    os.close(child_src)
                continue
            if stat.S_ISDIR(existing):
                raise _conflict(full, "is a folder; a file cannot replace it")
            if apply:
                # A file or a link planted in its place: moved aside (never followed).
                self._counter += 1
                aside = str(self._counter)
                os.rename(name, aside, src_dir_fd=dst, dst_dir_fd=self.backup_fd)
                self._journal.append(("aside", full, aside))
                os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
                self._journal.append(("placed", full, ""))

    def rollback(self) -> bool:
        """Undo the journal; False if a step failed twice (then the backup folder may
        still hold files set aside: the caller must keep it)."""
        complete = True
        for action, full, extra in reversed(self._journal):
            # Each undo gets a second try: one transient fault (EIO opening a parent, a
            # failed rename) must neither stop the undo nor leave a mix of old and new.
            if not any(self._undo_step(action, full, extra) for _attempt in range(2)):
                complete = False
        self._journal.clear()
        return complete

    def _undo_step(self, action: str, full: tuple[str, ...], extra: str) -> bool:
        """True once undone, or once nothing is left to undo: a placed entry or a made
        folder that the container has since removed, moved or filled is its own now.
        A file set aside that cannot go back is never given up on (False)."""
        try:
            self._undo(action, full, extra)
        except (NotFoundError, ValidationError):  # its folder is gone or now a link
            return action != "aside"
        except OSError as exc:
            return action != "aside" and exc.errno in _CHANGED_ERRNOS
        except DockyardError:
            return False
        return True

    def _undo(self, action: str, full: tuple[str, ...], extra: str) -> None:
        with self.tree.directory(full[:-1]) as parent:
            if action == "placed":
                self._counter += 1
                os.rename(
                    full[-1], f"undo-{self._counter}", src_dir_fd=parent, dst_dir_fd=self.backup_fd
                )
            elif action == "aside":
                os.rename(extra, full[-1], src_dir_fd=self.backup_fd, dst_dir_fd=parent)
            elif action == "mkdir":
                with suppress(FileNotFoundError):  # journaled before it was made
                    os.rmdir(full[-1], dir_fd=parent)


def _conflict(parts: Sequence[str], what: str) -> ConflictError:
    return ConflictError(
        f"{_shown(parts)} {what}", code="PATH_CONFLICT", details={"path": _shown(parts)}
    )


def path_changed(parts: Sequence[str]) -> ConflictError:
    return ConflictError(
        f"{_shown(parts)} changed while the upload was moved in (by the container?); "
        "nothing was changed: try again",
        code="PATH_CHANGED",
        details={"path": _shown(parts)},
    )


# What a concurrent change of the target (a folder swapped for a link, removed, made,
# filled) makes the calls of a move-in fail with; any other errno is a real I/O error.
_CHANGED_ERRNOS = frozenset(
    (errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.ENOTEMPTY, errno.EISDIR)
)


@contextmanager
def _changed_meanwhile(target: Sequence[str]) -> Iterator[None]:
    """A move-in whose target changed under it is a 409 ``PATH_CHANGED``, not an error of
    ours: the refusals of ``O_NOFOLLOW`` walks and the errnos of a changed tree."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _CHANGED_ERRNOS:
            raise path_changed(target) from exc
        raise
    except (NotFoundError, ValidationError) as exc:  # _walk_error's ENOENT, ELOOP, ENOTDIR
        raise path_changed(target) from exc

"""Build sources turned into a build context: a plain tar Dockyard writes itself.

A source (Dockerfile text with optional extra files, an uploaded archive, a tarball URL,
a git repository) is read into a checked tree (``trees.py``) — names, types, links,
limits — and only then written, member by member, as ``workdir/<job_id>/context.tar``.
Anything refused is refused before a build starts, with a SPEC §9 error naming the field.
Everything made for a job lives in ``workdir/<job_id>/``; ``discard`` removes it, and a
failed ``prepare`` removes it itself.
"""

from __future__ import annotations

import asyncio
import io
import lzma
import re
import shutil
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, TypeVar

from dockyard.domain.files.archives import ArchiveLimits, Plan, inspect
from dockyard.domain.files.tars import archive_kind, inspect_tar, open_tar
from dockyard.domain.images.sources import (
    ArchiveSource,
    BuildSource,
    ContextLimits,
    DockerfileSource,
    GitCheckout,
    GitFetcher,
    GitSource,
    PreparedContext,
    TarUrlSource,
    github_source,
)
from dockyard.domain.images.trees import (
    Node,
    Tree,
    check_links,
    normal_path,
    outside,
    read_folder,
    resolve_dockerfile,
    too_large,
    write_tar,
)
from dockyard.domain.ports import UrlFetcher
from dockyard.errors import (
    DockyardError,
    PayloadTooLargeError,
    ValidationError,
    disk_full,
    is_disk_full,
)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
)
M = TypeVar("M")
CONTEXT_TAR = "context.tar"
__all__ = [  # the sources are re-exported: callers name them through this module
    "ArchiveSource",
    "BuildSource",
    "ContextBuilder",
    "ContextLimits",
    "DockerfileSource",
    "GitCheckout",
    "GitFetcher",
    "GitSource",
    "PreparedContext",
    "TarUrlSource",
    "github_source",
]


class ContextBuilder:
    """Prepares the build context of a job (see the module docstring)."""

    def __init__(
        self, workdir: Path, limits: ContextLimits, fetcher: UrlFetcher, git: GitFetcher
    ) -> None:
        self._workdir = workdir
        self._limits = limits
        self._fetcher = fetcher
        self._git = git

    def job_dir(self, job_id: str) -> Path:
        """``workdir/<job_id>`` (created): uploads saved here go away with ``discard``."""
        path = self._job_path(job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def prepare(
        self, source: BuildSource, *, dockerfile: str = "Dockerfile", job_id: str
    ) -> PreparedContext:
        wanted = normal_path(dockerfile, "dockerfile_path", "DOCKERFILE_OUTSIDE")
        if isinstance(source, DockerfileSource) and wanted != ("Dockerfile",):
            raise ValidationError(
                "dockerfile_path: with Dockerfile text, the Dockerfile is 'Dockerfile'",
                code="DOCKERFILE_OUTSIDE",
                details={"field": "dockerfile_path", "provided": dockerfile[:200]},
            )
        folder = await asyncio.to_thread(self.job_dir, job_id)
        stop = threading.Event()
        try:
            return await self._prepare(source, wanted, folder, stop)
        except BaseException:
            stop.set()
            await asyncio.shield(asyncio.to_thread(self.discard, job_id))
            raise

    def discard(self, job_id: str) -> None:
        """Remove everything made for ``job_id`` (idempotent; blocking)."""
        shutil.rmtree(self._job_path(job_id), ignore_errors=True)

    def _job_path(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self._workdir / job_id

    async def _prepare(
        self, source: BuildSource, wanted: tuple[str, ...], folder: Path, stop: threading.Event
    ) -> PreparedContext:
        dest = folder / CONTEXT_TAR
        if isinstance(source, DockerfileSource):
            return await asyncio.to_thread(self._from_text, source, dest, stop)
        if isinstance(source, ArchiveSource):
            return await asyncio.to_thread(
                self._from_archive, source.path, "context", wanted, dest, stop
            )
        if isinstance(source, TarUrlSource):
            download = folder / "download"
            await self._fetcher.fetch(source.url, download, field="tar_url")
            try:
                return await asyncio.to_thread(
                    self._from_archive, download, "tar_url", wanted, dest, stop
                )
            finally:
                download.unlink(missing_ok=True)
        checkout = await self._git.fetch(
            source.url, source.ref, folder / "git", max_bytes=self._limits.max_bytes
        )
        try:
            return await asyncio.to_thread(
                self._from_checkout, checkout.tree, source.subdir, wanted, dest, stop
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, folder / "git", True)

    def _tree(self, field: str) -> Tree:
        return Tree(field, self._limits.max_bytes, self._limits.max_entries)

    def _finish(
        self, tree: Tree, wanted: tuple[str, ...], dest: Path, stop: threading.Event
    ) -> PreparedContext:
        check_links(tree)
        name = resolve_dockerfile(tree, wanted)
        try:
            entries = write_tar(tree, dest, stop)
        except DockyardError:
            raise
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(exc) from exc
            raise _invalid(tree.origin, f"the archive's data is damaged ({exc})") from exc
        except _CORRUPT as exc:
            raise _invalid(tree.origin, f"the archive's data is damaged ({exc})") from exc
        return PreparedContext(tar=dest, dockerfile=name, size=tree.size, entries=entries)

    def _from_text(
        self, source: DockerfileSource, dest: Path, stop: threading.Event
    ) -> PreparedContext:
        data = source.text.encode()
        tree = self._tree("context")
        with ExitStack() as stack:
            if source.extra is not None:
                stack.enter_context(self._read_archive(tree, source.extra))
                # The text wins over a Dockerfile the extra files hold; a folder of that
                # name is a contradiction and is refused.
                old = tree.nodes.get(("Dockerfile",))
                if old is not None and old.kind == "dir":
                    raise ValidationError(
                        "context: the extra files hold a folder named 'Dockerfile'",
                        code="DOCKERFILE_CONFLICT",
                        details={"field": "context", "entry": "Dockerfile"},
                    )
            if ("Dockerfile",) in tree.nodes:
                tree.size -= tree.nodes.pop(("Dockerfile",)).size
            tree.add(("Dockerfile",), _text_node(data))
            return self._finish(tree, ("Dockerfile",), dest, stop)

    def _from_archive(
        self, path: Path, field: str, wanted: tuple[str, ...], dest: Path, stop: threading.Event
    ) -> PreparedContext:
        tree = self._tree(field)
        with self._read_archive(tree, path):
            return self._finish(tree, wanted, dest, stop)

    def _from_checkout(
        self,
        checkout: Path,
        subdir: str | None,
        wanted: tuple[str, ...],
        dest: Path,
        stop: threading.Event,
    ) -> PreparedContext:
        root = checkout
        if subdir is not None:
            for part in normal_path(subdir, "git.subdir", "CONTEXT_PATH_OUTSIDE"):
                root = root / part
                if root.is_symlink() or not root.is_dir():
                    raise ValidationError(
                        f"git.subdir: the repository has no folder {subdir[:200]!r}",
                        code="SUBDIR_NOT_FOUND",
                        details={"field": "git.subdir", "provided": subdir[:200]},
                    )
        tree = self._tree("git")
        read_folder(tree, root, stop)
        return self._finish(tree, wanted, dest, stop)

    @contextmanager
    def _read_archive(self, tree: Tree, path: Path) -> Iterator[None]:
        """Read an archive into ``tree``; its members stay readable until the exit."""
        limits = ArchiveLimits(
            max_entries=self._limits.max_entries,
            max_unpacked_bytes=self._limits.max_bytes,
        )
        kind = archive_kind(path)
        try:
            if kind == "zip":
                with zipfile.ZipFile(path) as archive:
                    _check_names(tree.origin, [i.orig_filename for i in archive.infolist()])
                    plan = inspect(archive, limits, symlinks=True)
                    _fill(tree, plan, archive.open, _zip_meta)
                    yield
            elif kind == "tar":
                with open_tar(path, limits) as tar:
                    members = _members(tar, tree.origin)
                    _check_names(tree.origin, [m.name for m in members])
                    _check_hard_links(tree.origin, members)
                    plan_t = inspect_tar(tar, limits, symlinks=True)
                    _fill(tree, plan_t, partial(_tar_open, tar), _tar_meta)
                    yield
            else:
                raise _invalid(tree.origin, "not a tar, tar.gz or zip archive")
        except zipfile.BadZipFile as exc:
            raise _invalid(tree.origin, f"a damaged zip archive ({exc})") from exc
        except DockyardError as exc:
            said = _for_field(exc, tree)
            if said is exc:
                raise
            raise said from exc


def _check_names(field: str, names: list[str]) -> None:
    """``..`` and absolute names get their own code before the other name rules."""
    for raw in names:
        if raw.startswith("/") or ".." in raw.replace("\\", "/").split("/"):
            raise outside(field, raw, "absolute path or '..'")


def _check_hard_links(field: str, members: list[tarfile.TarInfo]) -> None:
    """A hard link that leaves the context says so; one inside is refused by the archive
    rules (no hard links at all: write the file itself, e.g. ``tar --hard-dereference``)."""
    for member in members:
        target = member.linkname
        if member.islnk() and (target.startswith("/") or ".." in target.split("/")):
            raise ValidationError(
                f"{field}: hard link {member.name[:300]!r} points outside the context",
                code="CONTEXT_LINK_OUTSIDE",
                details={"field": field, "entry": member.name[:300], "target": target[:300]},
            )


def _members(tar: tarfile.TarFile, field: str) -> list[tarfile.TarInfo]:
    try:
        return tar.getmembers()
    except _CORRUPT as exc:
        raise _invalid(field, f"a damaged tar archive ({exc})") from exc


def _fill(
    tree: Tree,
    plan: Plan[M],
    opener: Callable[[M], IO[bytes]],
    meta: Callable[[M], tuple[float, bool]],
) -> None:
    """The checked plan of an archive as tree entries (data read when the tar is made)."""
    for parts in plan.dirs:
        tree.add(parts, Node("dir"))
    for parts, target in plan.links:
        tree.add(parts, Node("link", target=target))
    for parts, item in plan.files:
        mtime, executable = meta(item)
        size = _declared_size(item)
        tree.add(
            parts,
            Node(
                "file",
                size=size,
                executable=executable,
                mtime=mtime,
                opener=lambda item=item: opener(item),  # type: ignore[misc]
            ),
        )


def _declared_size(item: object) -> int:
    if isinstance(item, zipfile.ZipInfo):
        return item.file_size
    assert isinstance(item, tarfile.TarInfo)
    return item.size


def _zip_meta(info: zipfile.ZipInfo) -> tuple[float, bool]:
    try:
        mtime = datetime(*info.date_time).timestamp()
    except ValueError:
        mtime = 0.0
    return mtime, bool((info.external_attr >> 16) & 0o111)


def _tar_meta(member: tarfile.TarInfo) -> tuple[float, bool]:
    return float(member.mtime), bool(member.mode & 0o111)


def _tar_open(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    src = tar.extractfile(member)
    if src is None:  # inspect_tar let only regular files through
        raise tarfile.ReadError(f"{member.name!r} is not a regular file")
    return src


def _text_node(data: bytes) -> Node:
    return Node("file", size=len(data), mtime=time.time(), opener=lambda: io.BytesIO(data))


def _invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(
        f"{field}: {reason}", code="INVALID_ARCHIVE", details={"field": field, "reason": reason}
    )


def _for_field(exc: DockyardError, tree: Tree) -> DockyardError:
    """The archive rules' errors, said of the build context and its field."""
    if isinstance(exc, PayloadTooLargeError) and exc.code in (
        "UNPACKED_TOO_LARGE",
        "CONTEXT_TOO_LARGE",
    ):
        return too_large(tree.origin, tree.max_bytes)
    exc.details.setdefault("field", tree.origin)
    return exc

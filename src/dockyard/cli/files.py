"""``cp SRC DST``: files and folders in and out of a container, either side
``CUID:/path``. Folders travel as ZIPs made and unpacked on the fly; file modes are kept
(the server keeps the executable bit: 0755 or 0644)."""

from __future__ import annotations

import argparse
import os
import posixpath
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dockyard.cli.output import progress_bar
from dockyard.cli.parsing import CommandError, CopyEnd, parse_copy

if TYPE_CHECKING:
    from dockyard.cli.session import Session
    from dockyard.client import Dockyard


def cp(args: argparse.Namespace, session: Session) -> int:
    src, dst = parse_copy(args.src, args.dst)
    with session.client() as dy:
        if dst.cuid is not None:
            upload(dy, Path(src.path), dst)
        else:
            assert src.cuid is not None
            download(dy, src, Path(dst.path))
    return 0


def remote_is_dir(dy: Dockyard, cuid: str, path: str) -> bool:
    from dockyard.client import ApiError

    try:
        dy.files.list(cuid, path)
    except ApiError:
        return False
    return True


def upload(dy: Dockyard, source: Path, dst: CopyEnd) -> None:
    """A folder's content into ``dst`` (created as needed); a file to ``dst``, or into it
    when it is a folder (or ends with ``/``)."""
    assert dst.cuid is not None
    if not source.exists():
        raise CommandError(f"cp: {source}: no such file or folder")
    with progress_bar(f"uploading {source.name}") as progress:
        if source.is_dir():
            dy.files.upload(dst.cuid, source, path=dst.path, progress=progress)
            return
        into_dir = dst.path.endswith("/") or remote_is_dir(dy, dst.cuid, dst.path)
        folder = dst.path if into_dir else posixpath.dirname(dst.path) or "/app"
        name = source.name if into_dir else posixpath.basename(dst.path)
        with tempfile.TemporaryDirectory(prefix="dockyard-cp-") as tmp:
            archive = Path(tmp) / "upload.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                zf.write(source, name)
            dy.files.upload(dst.cuid, archive, path=folder, progress=progress)


def download(dy: Dockyard, src: CopyEnd, dest: Path) -> None:
    """A file to ``dest`` (or into it, when it is a folder); a folder unpacked into
    ``dest`` (into ``dest/<name>`` when ``dest`` is an existing folder)."""
    assert src.cuid is not None
    name = PurePosixPath(src.path).name or "app"
    is_dir = remote_is_dir(dy, src.cuid, src.path)
    target = dest / name if dest.is_dir() else dest
    with progress_bar(f"downloading {name}") as progress:
        if not is_dir:
            dy.files.download_to(src.cuid, src.path, target, progress=progress)
            return
        with tempfile.TemporaryDirectory(prefix="dockyard-cp-") as tmp:
            archive = Path(tmp) / "download.zip"
            dy.files.download_zip(src.cuid, src.path, archive, progress=progress)
            unpack(archive, target)


def unpack(archive: Path, dest: Path) -> None:
    """Every entry of ``archive`` below ``dest``, with its mode; names that would leave
    ``dest`` are refused."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (root / info.filename).resolve()
            if target != root and root not in target.parents:
                raise CommandError(f"cp: refusing the archive entry {info.filename!r}")
            mode = (info.external_attr >> 16) & 0o7777
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as data, target.open("wb") as out:
                while chunk := data.read(1024 * 1024):
                    out.write(chunk)
            if mode:
                os.chmod(target, mode & 0o777)

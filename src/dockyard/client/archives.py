"""Archives the SDK builds on the client side: a folder (or a tar) zipped for
``upload-zip``, and a build context tarred for ``POST /builds``. Written to a spooled
temporary file (memory up to 8 MiB, then disk), never whole in memory."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import IO

SPOOL_BYTES = 8 * 1024 * 1024


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def zip_for_upload(source: str | os.PathLike[str]) -> tuple[IO[bytes], int]:
    """``source`` as a ZIP ready to send, rewound, and its size: a folder is zipped (its
    files and empty folders, modes kept; links are skipped: the server refuses them), a
    ``.zip`` is sent as it is, a tar (plain or compressed) is repacked as a ZIP."""
    path = Path(source)
    if path.is_dir():
        kind = "dir"
    elif zipfile.is_zipfile(path):
        kind = "zip"
    elif tarfile.is_tarfile(path):
        kind = "tar"
    else:
        raise ValueError(f"{path} is not a folder, a ZIP or a tar archive")
    out = _spool()
    try:
        if kind == "dir":
            _zip_dir(path, out)
        elif kind == "zip":
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
        else:
            _zip_tar(path, out)
    except BaseException:
        out.close()
        raise
    size = out.tell()
    out.seek(0)
    return out, size


def _zip_dir(root: Path, out: IO[bytes]) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(dirpath)
            if here != root and not dirnames and not filenames:
                zf.write(here, here.relative_to(root).as_posix() + "/")
            for name in sorted(filenames):
                file = here / name
                if file.is_symlink() or not file.is_file():
                    continue
                zf.write(file, file.relative_to(root).as_posix())


def _zip_tar(path: Path, out: IO[bytes]) -> None:
    with (
        tarfile.open(path) as tf,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
    ):
        for member in tf:
            name = member.name.removeprefix("./")
            if not name or name == ".":
                continue
            if member.isdir():
                info = zipfile.ZipInfo(name.rstrip("/") + "/")
                info.external_attr = (0o40000 | member.mode) << 16
                zf.writestr(info, b"")
            elif member.isfile():
                info = zipfile.ZipInfo(name)
                info.external_attr = (0o100000 | member.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                data = tf.extractfile(member)
                with zf.open(info, "w") as dst:
                    while data is not None and (chunk := data.read(1024 * 1024)):
                        dst.write(chunk)


def tar_context(source: str | os.PathLike[str]) -> tuple[IO[bytes], int]:
    """A build context folder as a gzipped tar, rewound, and its size."""
    root = Path(source)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    out = _spool()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tf:
        for entry in sorted(root.iterdir()):
            tf.add(entry, arcname=entry.name)
    size = out.tell()
    out.seek(0)
    return out, size

"""The token-signing secret: generated on first start into the data folder, never a default."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import structlog

from dockyard.errors import StorageIOError

log = structlog.get_logger("dockyard.secrets")

SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret at ``path``, creating it (mode 0600, exclusively) if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageIOError(f"cannot create {path}: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
        log.info("secrets.created", path=str(path))
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            # Someone loosened it: tighten it again rather than serve with a readable key.
            path.chmod(0o600)
            log.warning("secrets.mode_fixed", path=str(path), mode=oct(mode))
        text = path.read_text().strip()
    except OSError as exc:
        raise StorageIOError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise StorageIOError(f"{path} does not hold a secret of {SECRET_BYTES} bytes (hex)")
    return secret

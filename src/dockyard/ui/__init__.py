"""The web UI's static files (``static/``), served by ``dockyard.api.ui`` (docs/ui.md).

The UI is plain JavaScript modules and CSS with vendored third-party files: nothing is
built, nothing is fetched from elsewhere at run time. Every asset is served under one
versioned path (``/ui/assets/<version>/…``, the version a hash of all the files), so it
can be cached for a year; ``index.html`` names that path and is never cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
ASSETS_PREFIX = "/ui/assets"

# Module scripts must be served as JavaScript (and nosniff is on): mimetypes does not
# know .mjs everywhere, so the few kinds the UI has are named here.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Assets:
    """Every static file in memory (a few hundred KB), the version, and the page shell."""

    version: str
    files: dict[str, Asset]
    index: bytes

    @classmethod
    def load(cls, root: Path = STATIC) -> Assets:
        files: dict[str, Asset] = {}
        digest = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            media_type = _TYPES.get(path.suffix.lower())
            if media_type is None:
                continue  # not something the UI serves (the licences, the vendor notes)
            body = path.read_bytes()
            digest.update(rel.encode() + b"\0" + body + b"\0")
            files[rel] = Asset(body, media_type)
        version = digest.hexdigest()[:16]
        shell = files.pop("index.html").body
        index = shell.replace(b"{{assets}}", f"{ASSETS_PREFIX}/{version}".encode())
        return cls(version=version, files=files, index=index)

    def get(self, version: str, path: str) -> Asset | None:
        """The asset at ``path`` of this ``version``, or None (an old or unknown name)."""
        if version != self.version:
            return None
        return self.files.get(path)

"""What a create may put into ``/app`` before the container first starts (SPEC §4).

``script`` (base64 text) and ``script_url`` become ``/app/boot.py``; ``data_url`` is
fetched into ``data_path`` (a folder under ``/app``), unpacked when it is a ZIP or tar
archive. Everything a client sends is checked here, before a record or a folder exists;
the fetching itself is a ``UrlFetcher`` (SSRF rules live in its adapter) and the writing
is ``FileService.provision`` (staged, then moved in like an upload).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from dockyard.domain.files.paths import ContainerPath, check_component, parse_under_app
from dockyard.errors import ValidationError

FIELDS = ("script", "script_url", "data_url", "data_path")
BOOT_PY = "boot.py"
FALLBACK_NAME = "data"
MAX_URL = 4096
SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Provision:
    """A create's checked provisioning inputs."""

    data_path: ContainerPath
    script: bytes | None = None
    script_url: str | None = None
    data_url: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        script: str | None,
        script_url: str | None,
        data_url: str | None,
        data_path: str | None,
    ) -> Provision | None:
        """None when the create asks for nothing; a 400 for anything malformed."""
        if script is not None and script_url is not None:
            raise ValidationError(
                "give script or script_url, not both",
                code="CONFLICTING_FIELDS",
                details={"field": "script_url"},
            )
        if data_path is not None and data_url is None:
            raise ValidationError(
                "data_path needs data_url",
                code="MISSING_DATA_URL",
                details={"field": "data_url", "provided": None},
            )
        if script is None and script_url is None and data_url is None:
            return None
        return cls(
            script=decode_script(script) if script is not None else None,
            script_url=check_url(script_url, "script_url") if script_url is not None else None,
            data_url=check_url(data_url, "data_url") if data_url is not None else None,
            data_path=parse_under_app(data_path, field="data_path"),
        )


def decode_script(text: str) -> bytes:
    """Standard base64; line breaks and spaces (as ``base64`` wraps its output) ignored."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            "script is not valid base64",
            code="INVALID_SCRIPT",
            details={"field": "script", "provided": None},
        ) from None


def public_url(url: str) -> str:
    """The URL as it may be shown or logged: no userinfo, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparseable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_refused(
    message: str, field: str, url: str, code: str = "URL_NOT_ALLOWED", **details: object
) -> ValidationError:
    return ValidationError(
        f"{field}: {message}",
        code=code,
        details={"field": field, "url": public_url(url), **details},
    )


def check_url(url: str, field: str) -> str:
    """The shape of a URL Dockyard may fetch; where it points is the fetcher's to judge."""
    if len(url) > MAX_URL:
        raise url_refused(f"longer than {MAX_URL} characters", field, url[:200])
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise url_refused("spaces and control characters are not allowed", field, url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise url_refused("not a valid URL", field, url) from None
    if parts.scheme.lower() not in SCHEMES:
        raise url_refused("only http and https URLs can be fetched", field, url)
    if not host:
        raise url_refused("the URL has no host", field, url)
    return url


def file_name(url: str) -> str:
    """The last segment of the URL's path, if it makes a safe file name, else "data"."""
    try:
        segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    except ValueError:
        return FALLBACK_NAME
    if not segment or "/" in segment:
        return FALLBACK_NAME
    try:
        return check_component(segment, segment, "data_url")
    except ValidationError:
        return FALLBACK_NAME

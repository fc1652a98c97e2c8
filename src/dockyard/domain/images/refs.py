"""Image references as a build tags them or a pull names them (the distribution
reference grammar: ``[host[:port]/]name[/name…][:tag][@digest]``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from dockyard.errors import ValidationError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
# A first part is a registry only with a dot, a port, or as localhost (as docker reads it).
_DOMAIN = rf"(?:(?:localhost|{_LABEL}(?:\.{_LABEL})+)(?::[0-9]{{1,5}})?/|{_LABEL}:[0-9]{{1,5}}/)"
_NAME = rf"(?:{_DOMAIN})?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"(?::[\w][\w.-]{0,127})"
_DIGEST = r"(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,})"
TAG_REF = re.compile(rf"{_NAME}{_TAG}?\Z")
PULL_REF = re.compile(rf"{_NAME}{_TAG}?{_DIGEST}?\Z")
MAX_REF = 255


def check_tag(tag: str, field: str = "tags") -> str:
    """A reference a build may tag its image with (no digest)."""
    if len(tag) > MAX_REF or not TAG_REF.match(tag):
        raise ValidationError(
            f"{tag[:80]!r} is not a valid image reference (e.g. me/app:1.0)",
            code="INVALID_TAG",
            details={"field": field, "provided": tag[:200]},
        )
    return tag


def check_pull_ref(ref: str) -> str:
    """A reference to pull; without a tag or digest it is ``:latest`` (the engine would
    otherwise pull every tag of the repository)."""
    if len(ref) > MAX_REF or not PULL_REF.match(ref):
        raise ValidationError(
            f"{ref[:80]!r} is not a valid image reference (e.g. registry:5000/me/app:1.0)",
            code="INVALID_IMAGE",
            details={"field": "image", "provided": ref[:200]},
        )
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in last else f"{ref}:latest"


def registry_of(ref: str) -> str:
    """The registry server a reference names (``docker.io`` when it names none)."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def without_userinfo(url: str) -> str:
    """A URL as it may be shown and stored: ``user:token@`` removed."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<invalid url>"
    return urlunsplit(parts._replace(netloc=netloc))

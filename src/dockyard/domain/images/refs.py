"""Image references (``[registry/]repo[:tag][@digest]``): checked, split and compared.

The grammar is distribution's ``reference`` package (regexp.go, and normalize.go for
where the registry ends): an optional registry, a lowercase path of components, an
optional tag of at most 128 characters, an optional digest.
A reference without a registry is Docker Hub's (``docker.io``, ``library/`` for one
component); without a tag or digest it means ``:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from dockyard.errors import ValidationError

DEFAULT_REGISTRY = "docker.io"
# distribution/reference regexp.go, in ASCII (Python's \w is Unicode) and matched whole
# (``$`` would let a trailing newline through).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?", re.ASCII
)
_REMAINDER = re.compile(
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}", re.ASCII)
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
MAX_NAME = 255  # distribution's NameTotalLengthMax: registry and path together
MAX_REF = 512


@dataclass(frozen=True)
class ImageRef:
    registry: str  # docker.io, 127.0.0.1:5000, …
    repository: str  # the path after the registry (library/busybox)
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository`` as the engine's pull and push endpoints want it (Docker
        Hub's without ``docker.io/``, which the engine adds itself)."""
        if self.registry == DEFAULT_REGISTRY:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """One spelling per image: ``busybox`` and ``docker.io/library/busybox:latest``
        are the same."""
        out = f"{self.registry}/{self.repository}"
        if self.tag or not self.digest:
            out += f":{self.tag or 'latest'}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _looks_like_host(part: str) -> bool:
    """Docker's rule (normalize.go ``splitDockerDomain``): the first part of a path is a
    registry when it has a ``.`` or ``:``, is ``localhost``, or is an IPv6 literal. Only a
    registry may have capitals; ``UPPER/case`` is refused, never a host called UPPER."""
    return "." in part or ":" in part or part == "localhost" or part.startswith("[")


def parse_ref(ref: str, *, field: str = "image") -> ImageRef:
    """The parts of ``ref``; 400 ``INVALID_IMAGE_REF`` if it is not one."""
    host, slash, rest = ref.partition("/")
    if not slash or not _looks_like_host(host):
        host, rest = "", ref
    match = _REMAINDER.fullmatch(rest) if len(ref) <= MAX_REF else None
    if (
        match is None
        or (host and _DOMAIN.fullmatch(host) is None)
        or len(f"{host}/{match.group('path')}" if host else match.group("path")) > MAX_NAME
        or _HEX64.fullmatch(ref)  # an image id, never a repository name
    ):
        raise ValidationError(
            f"{ref[:100]!r} is not an image reference",
            code="INVALID_IMAGE_REF",
            details={"field": field, "provided": ref[:200]},
        )
    path = match.group("path")
    if host.lower() == "index.docker.io":
        host = DEFAULT_REGISTRY
    registry = host or DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return ImageRef(registry, path, match.group("tag"), match.group("digest"))


def is_image_id(ref: str) -> bool:
    """A (possibly short) image id: ``sha256:…`` or 12 to 64 hex digits."""
    return _ID.fullmatch(ref) is not None


def check_ref(ref: str, *, field: str = "image") -> str:
    """``ref`` if it is an image reference or id (400 ``INVALID_IMAGE_REF`` if not): what
    reaches an engine URL is never a path of another kind (``../containers/x``)."""
    if not is_image_id(ref):
        parse_ref(ref, field=field)
    return ref


def canonical(ref: str) -> str | None:
    """``ref``'s canonical spelling, or None when it is not a reference (an id)."""
    if is_image_id(ref) and (ref.startswith("sha256:") or len(ref) == 64):
        return None
    try:
        return parse_ref(ref).canonical
    except ValidationError:
        return None


def registry_of(ref: str) -> str:
    """The registry ``ref`` is pulled from or pushed to (``docker.io`` by default)."""
    return parse_ref(ref).registry


def same_server(a: str, b: str) -> bool:
    """Registry servers compared as users write them (scheme, case, Hub aliases)."""
    return _server(a) == _server(b)


def _server(value: str) -> str:
    value = value.strip().lower()
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    value = value.split("/", 1)[0]
    if value in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return DEFAULT_REGISTRY
    return value


# -- what builds and pulls take (domain/images/builds.py, pulls.py) ------------------------


def check_tag(tag: str, field: str = "tags") -> str:
    """A reference a build may tag its image with (no digest)."""
    if parse_ref(tag, field=field).digest is not None:
        raise ValidationError(
            f"{tag[:80]!r}: a build tags its image with a name and tag, not a digest",
            code="INVALID_IMAGE_REF",
            details={"field": field, "provided": tag[:200]},
        )
    return tag


def check_pull_ref(ref: str) -> str:
    """A reference to pull, as the client spelled it; without a tag or digest it is
    ``:latest`` (the engine would otherwise pull every tag of the repository)."""
    parsed = parse_ref(ref)
    return ref if parsed.tag or parsed.digest else f"{ref}:latest"


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

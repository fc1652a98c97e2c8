"""What the command line's own arguments mean: ``-e K=V``, ``-p H:C``, ``--filter``, and
``cp``'s ``CUID:/path`` targets. Pure functions; a bad argument is a ``UsageError``."""

from __future__ import annotations

import re
from typing import Any, NamedTuple


class UsageError(Exception):
    """A command line that cannot mean anything (exit status 2)."""


class CommandError(Exception):
    """A command that cannot go on for a reason of its own (exit status 1)."""


_CUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_env(items: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """``-e K=V`` pairs; ``-e K`` alone takes ``K`` from ``environ`` (as docker does)."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"bad -e {item!r}: expected KEY=VALUE")
        if not sep:
            if environ is None or key not in environ:
                raise UsageError(f"bad -e {item!r}: expected KEY=VALUE ({key} is not set here)")
            value = environ[key]
        env[key] = value
    return env


def parse_port(spec: str) -> dict[str, Any]:
    """``-p`` as docker spells it: ``8080:80``, ``80`` (a drawn host port), ``8080:80/udp``."""
    text, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise UsageError(f"bad -p {spec!r}: the protocol is tcp or udp")
    host_text, sep, container_text = text.rpartition(":")
    if not sep:
        host_text, container_text = "", text
    try:
        container = _port_number(container_text)
        host = _port_number(host_text) if host_text else None
    except ValueError:
        raise UsageError(f"bad -p {spec!r}: expected HOST:CONTAINER[/tcp|udp]") from None
    return {"host": host, "container": container, "protocol": protocol}


def _port_number(text: str) -> int:
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(text)
    return number


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """``--filter status=running --filter tag=web`` as ``{"status": [...], "tag": [...]}``."""
    found: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value or key not in ("status", "tag", "image"):
            raise UsageError(f"bad --filter {item!r}: expected status=, tag= or image=")
        found.setdefault(key, []).append(value)
    return found


class CopyEnd(NamedTuple):
    """One side of ``cp``: a local path, or ``cuid`` and a path in the container."""

    path: str
    cuid: str | None = None

    @property
    def remote(self) -> bool:
        return self.cuid is not None


def parse_copy_end(text: str) -> CopyEnd:
    """``CUID:/app/x`` is in a container; anything else (``./x``, ``/tmp/x``, ``C:\\x`` with
    no container of that name) is local. ``./a:b`` stays local, as in docker."""
    head, sep, rest = text.partition(":")
    if not sep or "/" in head or not _CUID.match(head) or len(head) == 1:
        return CopyEnd(text)
    return CopyEnd(rest or "/app", head)


def parse_copy(source: str, dest: str) -> tuple[CopyEnd, CopyEnd]:
    src, dst = parse_copy_end(source), parse_copy_end(dest)
    if src.remote == dst.remote:
        raise UsageError("cp: exactly one of SRC and DST must be CUID:PATH")
    return src, dst


def parse_command(words: list[str]) -> str | list[str] | None:
    """``run IMAGE CMD…``: no words keep the image's command; several are the exec form."""
    return list(words) if words else None

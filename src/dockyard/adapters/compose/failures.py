"""Known Compose v2 failures: stderr patterns -> our errors (SPEC §9).

A failed Compose call is a ``ComposeError`` (500) unless its stderr says why in a way
we recognise. A request the engine refuses for its content (an image without a
command, a bad reference) becomes a 4xx the client can act on; an engine that cannot
be reached becomes 503. The patterns are tested against stderr recorded from the real
binary (tests/unit/data/compose/).

The table is read top to bottom and the first match wins: "unable to get image …:
Cannot connect to the Docker daemon" is the engine's fault, not the image's, and
"no such image: X: invalid reference format" is a bad reference, not a missing image.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.errors import (
    ComposeError,
    ConflictError,
    DockyardError,
    EngineUnavailableError,
    ValidationError,
)

Groups = dict[str, str]


@dataclass(frozen=True)
class Failure:
    """One recognised failure: where stderr matches ``pattern``, ``build`` says what it is
    (from the pattern's named groups)."""

    name: str
    pattern: re.Pattern[str]
    build: Callable[[Groups], DockyardError]


def _engine_down(_: Groups) -> DockyardError:
    return EngineUnavailableError("the Docker engine cannot be reached; retry later")


def _port_taken(groups: Groups) -> DockyardError:
    address, port = groups.get("address"), groups.get("port")
    details: dict[str, object] = {}
    where = ""
    if address and port:
        details = {"address": address, "port": int(port)}
        where = f" ({address}:{port})"
    return ConflictError(
        f"a host port of this container{where} is already bound on the host; "
        "choose another host port or free this one",
        code="PORT_IN_USE",
        details=details,
    )


def _no_command(_: Groups) -> DockyardError:
    return ValidationError(
        'the image has no command to run (no CMD or ENTRYPOINT): give "command", '
        "add /app/boot.py, or use an image that has a CMD",
        code="NO_COMMAND",
        details={"field": "command", "provided": None},
    )


def _invalid_image(groups: Groups) -> DockyardError:
    ref = groups.get("ref", "")
    why = groups.get("why", "").strip(" :") or "invalid reference format"
    return ValidationError(
        f"image reference {ref!r} is not valid ({why}); "
        "use name[:tag] or name@sha256:<64 hex digits>",
        code="INVALID_IMAGE",
        details={"field": "image", "provided": ref},
    )


def _image_missing(groups: Groups) -> DockyardError:
    ref = groups.get("ref", "")
    return ValidationError(
        f"image {ref} is not on the engine; build or pull it first",
        code="IMAGE_NOT_FOUND",
        details={"field": "image", "provided": ref},
    )


_ADDRESS = r"(?P<address>[0-9A-Fa-f.:\[\]]+?):(?P<port>\d+)"

FAILURES: tuple[Failure, ...] = (
    Failure(
        "engine_unreachable",
        re.compile(
            r"Cannot connect to the Docker daemon|error during connect|connection refused"
            r"|connection reset by peer|: EOF\s*$",
            re.IGNORECASE | re.MULTILINE,
        ),
        _engine_down,
    ),
    Failure(
        "port_allocated",  # another container holds it
        re.compile(rf"Bind for {_ADDRESS} failed: port is already allocated"),
        _port_taken,
    ),
    Failure(
        "port_in_use",  # another program holds it
        re.compile(rf"listen \w+ {_ADDRESS}: bind: address already in use"),
        _port_taken,
    ),
    Failure(
        "port_unspecified",
        re.compile(r"port is already allocated|address already in use", re.IGNORECASE),
        _port_taken,
    ),
    Failure(
        "no_command",
        re.compile(r"No command specified", re.IGNORECASE),
        _no_command,
    ),
    Failure(
        "invalid_reference",
        re.compile(
            r"unable to get image '(?P<ref>[^']*)'.*invalid reference format(?P<why>.*)$",
            re.IGNORECASE | re.MULTILINE,
        ),
        _invalid_image,
    ),
    Failure(
        "image_missing",
        re.compile(r"No such image: (?P<ref>\S+)", re.IGNORECASE),
        _image_missing,
    ),
)


def classify(exc: ComposeError) -> DockyardError:
    """What a failed Compose call means for the client; ``exc`` itself when unknown."""
    for failure in FAILURES:
        match = failure.pattern.search(exc.stderr)
        if match is not None:
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            return failure.build(groups)
    return exc

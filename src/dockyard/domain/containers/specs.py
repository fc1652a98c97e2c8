"""What a client may change of a spec, and how a change is merged (PATCH, SPEC §4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from dockyard.domain.containers.lifecycle import Action
from dockyard.domain.models import ContainerSpec, Port, Status
from dockyard.errors import ConflictError, ValidationError, invalid_input

CHANGEABLE = frozenset(
    {"env", "tags", "resources", "image", "labels", "restart", "command", "name"}
)
_REPLACED = ("tags", "image", "labels", "restart", "command", "name")


def patched(spec: ContainerSpec, patch: dict[str, Any]) -> ContainerSpec:
    """``env`` merged (a null value removes the key), ``resources`` merged, the rest
    replaced; the result validated as a whole."""
    unknown = set(patch) - CHANGEABLE
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationError(
            f"'{field}' cannot be changed", code="UNKNOWN_FIELD", details={"field": field}
        )
    merged = spec.model_dump()
    if "env" in patch:
        env = dict(merged["env"])
        for key, value in (patch["env"] or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        merged["env"] = env
    if "resources" in patch:
        merged["resources"] = {**merged["resources"], **(patch["resources"] or {})}
    for key in _REPLACED:
        if key in patch:
            merged[key] = patch[key]
    return parse_spec(merged)


STATUS_ACTIONS = {"stopped": Action.STOP, "running": Action.START}


def status_action(patch: dict[str, Any]) -> Action:
    """Seed 003's PATCH ``{"status": "stopped" | "running"}``: a stop or a start, asked
    alone (mixed with other fields it would be half applied if the action failed)."""
    if len(patch) > 1:
        other = sorted(set(patch) - {"status"})[0]
        raise ValidationError(
            f"status is changed alone; send '{other}' in another PATCH",
            code="CONFLICTING_FIELDS",
            details={"field": other},
        )
    value = patch["status"]
    if value not in STATUS_ACTIONS:
        raise ValidationError(
            'status may be set to "stopped" or "running"',
            code="INVALID_STATUS",
            details={"field": "status", "provided": value, "allowed": sorted(STATUS_ACTIONS)},
        )
    return STATUS_ACTIONS[value]


def engine_refused_port(exc: ConflictError) -> int | None:
    """The host port of the engine's "already allocated / in use" refusal, if it is one."""
    port = exc.details.get("port") if exc.code == "PORT_IN_USE" else None
    return port if isinstance(port, int) else None


def parse_spec(data: dict[str, Any]) -> ContainerSpec:
    """Validate client data into a spec, translating pydantic's error to ours."""
    try:
        return ContainerSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise invalid_input(exc.errors(include_url=False)) from None


def iter_statuses(raw: str | None) -> Iterator[Status]:
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            yield Status(part)
        except ValueError:
            raise ValidationError(
                f"unknown status {part!r}",
                code="INVALID_STATUS",
                details={"field": "status", "provided": part, "allowed": [s.value for s in Status]},
            ) from None


def check_host_ports(
    ports: list[Port], reserved: frozenset[int], *, host_access: bool = False
) -> None:
    """The engine's and the service's own host ports are never published, ports below
    1024 only with host access (an admin setting, off by default); a port is listed once."""
    for port in ports:
        if port.host is None:
            continue
        if port.host in reserved or (port.host < 1024 and not host_access):
            below = "" if host_access else "ports below 1024 (host access is off), "
            raise ValidationError(
                f"host port {port.host} may not be published ({below}the engine's"
                " and this service's own are reserved)",
                code="PORT_NOT_ALLOWED",
                details={"field": "ports", "provided": port.host},
            )
    wanted = [(p.host, p.protocol) for p in ports if p.host]
    if len(set(wanted)) != len(wanted):
        raise ValidationError(
            "the same host port is listed twice",
            code="DUPLICATE_PORT",
            details={"field": "ports"},
        )

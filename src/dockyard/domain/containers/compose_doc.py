"""Turn a container spec into the Compose document that runs it (SPEC §1, §4).

The document is the whole truth of what the engine is asked to run, so the
security policy (``policy.py``) checks this output rather than the request.

Replicas (issue 11, scaling.py): replica 1 is the service ``app``; replicas 2..N are
copies of it named ``app-K``, each with ``container_name`` ``{cuid}-app-K`` (the name
Compose would give ``--scale``'s K-th container) and its own published host ports. One
Compose service scaled with ``--scale`` or ``scale:`` cannot do that: its replicas share
one ``ports`` list, so a published host port could not differ between them. The count
is in the document, so every ``create`` and ``up`` (start, restart, PATCH, a restart of
Dockyard) keeps it, and ``up --remove-orphans`` removes the services scaled away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.domain.models import ContainerSpec, HostAccess, Port

SERVICE = "app"
APP_MOUNT = "/app"

# `python` where the image has it, `python3` otherwise (SPEC §4, "What runs").
BOOT_SCRIPT = (
    "if command -v python >/dev/null 2>&1; then exec python /app/boot.py; fi; "
    "exec python3 /app/boot.py"
)


@dataclass(frozen=True)
class Placement:
    """Where and as whom a container runs; fixed by configuration, not the client."""

    network: str
    user: str  # "uid:gid"
    stop_timeout: int


REPLICA_LABEL = "dockyard.replica"


def container_name(cuid: str, replica: int = 1) -> str:
    """The name of a replica's container (replica 1: the one Compose gives ``app``)."""
    return f"{cuid}-{SERVICE}-{replica}"


def service_name(replica: int) -> str:
    return SERVICE if replica == 1 else f"{SERVICE}-{replica}"


def replica_of(name: str, cuid: str) -> int | None:
    """The replica index of a container named ``name`` (``/`` prefix allowed), if ours."""
    prefix = f"{cuid}-{SERVICE}-"
    rest = name.lstrip("/")
    if not rest.startswith(prefix) or not rest[len(prefix) :].isdigit():
        return None
    return int(rest[len(prefix) :])


APP_VOLUME_KEY = "app"


def app_volume_name(cuid: str) -> str:
    """The named volume that is ``/app`` on a remote engine (no host folder there)."""
    return f"dockyard-{cuid}-app"


def app_volume(cuid: str) -> dict[str, Any]:
    """The document's ``volumes`` entry of a remote container's ``/app``."""
    labels = {"dockyard.managed": "true", "dockyard.cuid": cuid}
    return {APP_VOLUME_KEY: {"name": app_volume_name(cuid), "labels": labels}}


def escape(value: str) -> str:
    """Compose interpolates ``$``; a client's ``$`` must reach the container unchanged."""
    return value.replace("$", "$$")


def compose_document(
    cuid: str,
    owner: str,
    spec: ContainerSpec,
    app_dir: Path,
    placement: Placement,
    *,
    boot_py: bool,
    extra_env: dict[str, str] | None = None,
    replicas: int = 1,
    replica_ports: Mapping[int, Sequence[Port]] | None = None,
    volume: bool = False,
    host: HostAccess | None = None,
) -> dict[str, Any]:
    """The project of ``replicas`` copies of the service; ``replica_ports`` are the host
    ports of replicas 2..N (replica 1 publishes ``spec.ports``). ``volume``: ``/app`` is
    the named volume ``app_volume_name(cuid)`` (a remote engine), not ``app_dir``."""
    env = {key: escape(val) for key, val in spec.env.items()}
    env.update({key: escape(val) for key, val in (extra_env or {}).items()})
    env["CONTAINER_UID"] = cuid
    env["TAGS"] = escape(",".join(spec.tags))
    labels = {key: escape(val) for key, val in spec.labels.items()}
    labels.update({"dockyard.managed": "true", "dockyard.cuid": cuid, "dockyard.owner": owner})

    service: dict[str, Any] = {
        "image": spec.image,
        "pull_policy": "never",
        "init": True,
        "tty": True,
        "stdin_open": True,
        "user": placement.user,
        "working_dir": APP_MOUNT,
        "environment": env,
        "labels": labels,
        "volumes": [
            {"type": "volume", "source": APP_VOLUME_KEY, "target": APP_MOUNT}
            if volume
            else {"type": "bind", "source": str(app_dir), "target": APP_MOUNT}
        ],
        "restart": spec.restart,
        "stop_grace_period": f"{placement.stop_timeout}s",
        "security_opt": ["no-new-privileges:true"],
    }
    if spec.command is not None:
        if isinstance(spec.command, str):
            service["command"] = ["/bin/sh", "-c", escape(spec.command)]
        else:
            service["command"] = [escape(part) for part in spec.command]
    elif boot_py:
        service["entrypoint"] = ["/bin/sh", "-c", BOOT_SCRIPT]
        service["command"] = []
    res = spec.resources
    if res.cpus is not None:
        service["cpus"] = res.cpus
    if res.memory is not None:
        service["mem_limit"] = res.memory
    if res.pids is not None:
        service["pids_limit"] = res.pids
    if spec.ports:
        service["ports"] = _published(spec.ports)
    if host is not None:
        service.update(host_fields(host))
        service["volumes"] += host_binds(host)

    document: dict[str, Any] = {"name": cuid, "services": {SERVICE: service}}
    if volume:
        document["volumes"] = app_volume(cuid)
    if spec.network == "none":
        service["network_mode"] = "none"
    else:
        service["networks"] = [placement.network]
        document["networks"] = {placement.network: {"external": True, "name": placement.network}}
    for index in range(2, replicas + 1):
        ports = (replica_ports or {}).get(index, [])
        document["services"][service_name(index)] = _replica(cuid, service, index, ports)
    return document


def host_fields(host: HostAccess) -> dict[str, Any]:
    """The service keys of what host access grants (exactly what was asked)."""
    fields: dict[str, Any] = {}
    if host.privileged:
        fields["privileged"] = True
    if host.devices:
        fields["devices"] = [f"{device}:{device}" for device in host.devices]
    if host.cap_add:
        fields["cap_add"] = list(host.cap_add)
    return fields


def host_binds(host: HostAccess) -> list[dict[str, Any]]:
    return [
        {"type": "bind", "source": b.source, "target": b.target, "read_only": b.read_only}
        for b in host.binds
    ]


def _published(ports: Sequence[Port]) -> list[dict[str, Any]]:
    return [
        {"target": p.container, "protocol": p.protocol}
        | ({"published": str(p.host)} if p.host else {})
        for p in ports
    ]


def _replica(cuid: str, first: dict[str, Any], index: int, ports: Sequence[Port]) -> dict[str, Any]:
    """Replica ``index``: the first's service with its own name, label and host ports."""
    service = {key: value for key, value in first.items() if key != "ports"}
    service["container_name"] = container_name(cuid, index)
    service["labels"] = {**first["labels"], REPLICA_LABEL: str(index)}
    if ports:
        service["ports"] = _published(ports)
    return service

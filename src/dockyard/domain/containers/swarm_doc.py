"""The Compose document of a container, as a Swarm stack (issue 12, docs/engines.md "Swarm").

A container placed on an engine of kind ``swarm`` runs as the stack ``<cuid>`` with one
service, ``app``, made from the same checked Compose document (``compose_doc.py``):

- ``deploy.replicas`` is the container's replicas (the document's ``app``, ``app-2`` ..
  services counted; 0 while the container is stopped or only created); every replica
  shares the service's published ports through the routing mesh - unlike the Compose
  path, where each replica has host ports of its own;
- ``deploy.resources.limits`` {cpus, memory, pids} from ``cpus``/``mem_limit``/``pids_limit``;
- ``deploy.restart_policy`` from ``restart``;
- ``deploy.placement.constraints`` ``node.labels.K == V`` from the record's
  ``constraints`` (carried by the document's ``dockyard.constraints`` label; a key or
  value that could make another expression is refused, 400 ``INVALID_CONSTRAINT``);
- ``deploy.labels`` and the containers' ``labels`` both carry ``dockyard.managed``,
  ``dockyard.cuid`` and ``dockyard.owner``;
- ``/app`` is the container's named volume (external: Dockyard makes it first and gives
  it to the containers' user), the network Dockyard's attachable overlay (external,
  made once per swarm engine), no ``container_name``, ``cap_drop: [ALL]``.

``security_opt: no-new-privileges`` has no stack field that engine API 1.41 (Docker
20.10) honours, so it is left out: the service keeps every capability dropped and the
non-root user (the gap is in docs/engines.md).

``check_stack`` is the safety policy on the final stack document, deny by default like
``policy.check_document``: what other managers enforce on containers but forget on
services (privileged, host paths, host namespaces, devices, added capabilities, ``mode:
host`` ports, global services, unknown keys) is refused here the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.containers.compose_doc import APP_MOUNT, APP_VOLUME_KEY, SERVICE
from dockyard.domain.containers.compose_doc import app_volume_name as app_volume_name
from dockyard.domain.containers.policy import host_access_denied
from dockyard.errors import ValidationError

# Compose service keys carried to the stack's service as they are.
_CARRIED = (
    "image",
    "init",
    "tty",
    "stdin_open",
    "user",
    "working_dir",
    "environment",
    "labels",
    "volumes",
    "stop_grace_period",
    "entrypoint",
    "command",
)
_SERVICE_KEYS = frozenset({*_CARRIED, "ports", "networks", "cap_drop", "deploy"})
_DEPLOY_KEYS = frozenset({"replicas", "resources", "restart_policy", "placement", "labels"})
_LIMIT_KEYS = frozenset({"cpus", "memory", "pids"})
_PORT_KEYS = frozenset({"target", "published", "protocol", "mode"})
_RESTART_KEYS = frozenset({"condition", "max_attempts"})
_OWN_LABELS = ("dockyard.managed", "dockyard.cuid", "dockyard.owner")
# The record's constraints ride to the stack in this label of the Compose document
# (``reads.document``; a user's labels cannot start with ``dockyard.``).
CONSTRAINTS_LABEL = "dockyard.constraints"
# A node label in a constraint: swarmkit's key grammar (no ``:``/``/``), and a value of
# plain characters only, so that nothing can end one expression and start another
# (``==``, ``!=``, ``,``, spaces, newlines, swarmkit's pattern characters).
_NODE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}")
_NODE_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{1,255}")


def replicas_of(document: Mapping[str, Any]) -> int:
    """How many replicas a Compose document runs (``app`` and its copies ``app-K``)."""
    return len(document.get("services") or {})


def restart_policy(restart: str) -> dict[str, Any]:
    """Compose's ``restart`` as Swarm's ``restart_policy``."""
    if restart == "no":
        return {"condition": "none"}
    if restart.startswith("on-failure"):
        _, _, attempts = restart.partition(":")
        policy: dict[str, Any] = {"condition": "on-failure"}
        if attempts:
            policy["max_attempts"] = int(attempts)
        return policy
    return {"condition": "any"}  # always, unless-stopped


def node_constraints(constraints: Mapping[str, str]) -> list[str]:
    """The swarm's ``node.labels.K == V`` for each constraint, sorted; 400
    ``INVALID_CONSTRAINT`` for one that is not a plain node label and value."""
    out = []
    for key, value in sorted(constraints.items()):
        if not _NODE_KEY.fullmatch(key) or not _NODE_VALUE.fullmatch(value):
            raise ValidationError(
                f"constraint {key[:64]!r}={value[:64]!r} cannot be a swarm node constraint:"
                " a key of letters, digits and _.- (starting with a letter or _), a value"
                " of 1 to 255 letters, digits and _.:/- (no spaces, no '==', '!=', ',')",
                code="INVALID_CONSTRAINT",
                details={"field": "constraints", "provided": key[:64]},
            )
        out.append(f"node.labels.{key} == {value}")
    return out


def constraints_of(compose: Mapping[str, Any]) -> dict[str, str]:
    """The record's constraints that ``compose`` carries (``CONSTRAINTS_LABEL``)."""
    services = compose.get("services") or {}
    first = services.get(SERVICE) or {}
    raw = (first.get("labels") or {}).get(CONSTRAINTS_LABEL)
    if not raw:
        return {}
    loaded = json.loads(str(raw))
    if not isinstance(loaded, dict):
        raise host_access_denied(f"labels.{CONSTRAINTS_LABEL}")
    return {str(k): str(v) for k, v in loaded.items()}


def stack_document(
    compose: Mapping[str, Any],
    *,
    network: str,
    replicas: int,
    constraints: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The stack of ``compose`` (a document of ``compose_document(..., volume=True)``)
    with ``replicas`` tasks wanted; ``network``: the swarm engine's overlay network;
    ``constraints``: the record's (None: those ``compose`` carries)."""
    cuid = str(compose["name"])
    first: dict[str, Any] = compose["services"][SERVICE]
    if first.get("network_mode") == "none":
        raise ValidationError(
            "a container without a network cannot run on a swarm engine",
            code="SWARM_UNSUPPORTED",
            details={"field": "network"},
        )
    service = {key: first[key] for key in _CARRIED if key in first}
    service["cap_drop"] = ["ALL"]
    service["networks"] = [network]
    if first.get("ports"):
        service["ports"] = [_port(p) for p in first["ports"]]
    wanted = constraints_of(compose) if constraints is None else constraints
    service["deploy"] = _deploy(first, cuid, replicas, wanted)
    return {
        "services": {SERVICE: service},
        "volumes": {APP_VOLUME_KEY: {"external": True, "name": app_volume_name(cuid)}},
        "networks": {network: {"external": True, "name": network}},
    }


def _port(port: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"target": port["target"], "protocol": port.get("protocol", "tcp")}
    if port.get("published"):
        out["published"] = int(port["published"])
    out["mode"] = "ingress"  # the routing mesh: one published port for every replica
    return out


def _deploy(
    first: Mapping[str, Any], cuid: str, replicas: int, constraints: Mapping[str, str]
) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if first.get("cpus") is not None:
        limits["cpus"] = str(first["cpus"])
    if first.get("mem_limit") is not None:
        limits["memory"] = str(first["mem_limit"])
    if first.get("pids_limit") is not None:
        limits["pids"] = int(first["pids_limit"])
    labels = first.get("labels") or {}
    deploy: dict[str, Any] = {
        "replicas": replicas,
        "labels": {key: labels[key] for key in _OWN_LABELS if key in labels}
        | {"dockyard.cuid": cuid},
        "restart_policy": restart_policy(str(first.get("restart", "no"))),
    }
    if limits:
        deploy["resources"] = {"limits": limits}
    if constraints:
        deploy["placement"] = {"constraints": node_constraints(constraints)}
    return deploy


# -- the policy on the final stack document -------------------------------------------


def check_stack(
    document: Mapping[str, Any],
    cuid: str,
    network: str,
    constraints: Mapping[str, str] | None = None,
) -> None:
    """Refuse (400 ``HOST_ACCESS_DENIED``) anything in the stack that is not known safe;
    the placement constraints are exactly ``node_constraints(constraints)`` (None: the
    ones the service's ``CONSTRAINTS_LABEL`` names), nothing else."""
    extra = set(document) - {"services", "volumes", "networks"}
    if extra:
        raise host_access_denied(sorted(extra)[0])
    if document.get("volumes") != {
        APP_VOLUME_KEY: {"external": True, "name": app_volume_name(cuid)}
    }:
        raise host_access_denied("volumes")
    if document.get("networks") != {network: {"external": True, "name": network}}:
        raise host_access_denied("networks")
    services = document.get("services") or {}
    if set(services) != {SERVICE}:
        raise host_access_denied("services")
    service = services[SERVICE]
    wanted = constraints_of(service_doc(service)) if constraints is None else constraints
    _check_service(service, network, node_constraints(wanted))


def service_doc(service: Mapping[str, Any]) -> dict[str, Any]:
    """A document with ``service`` as its only service (what ``constraints_of`` reads)."""
    return {"services": {SERVICE: service}}


def _check_service(service: Mapping[str, Any], network: str, constraints: list[str]) -> None:
    for key in service:
        if key not in _SERVICE_KEYS:
            raise host_access_denied(key)
    user = str(service.get("user", ""))
    if not user or user.split(":")[0] in ("0", "root"):
        raise host_access_denied("user")
    if service.get("networks") != [network]:
        raise host_access_denied("networks")
    mount = {"type": "volume", "source": APP_VOLUME_KEY, "target": APP_MOUNT}
    if service.get("volumes") != [mount]:
        raise host_access_denied("volumes")
    if service.get("cap_drop") != ["ALL"]:
        raise host_access_denied("cap_drop")
    for port in service.get("ports") or []:
        if not isinstance(port, dict) or set(port) - _PORT_KEYS:
            raise host_access_denied("ports")
        if port.get("mode", "ingress") != "ingress":  # `host` binds the node's own port
            raise host_access_denied("ports.mode")
    _check_deploy(service.get("deploy") or {}, constraints)


def _check_deploy(deploy: Mapping[str, Any], constraints: list[str]) -> None:
    for key in deploy:
        if key not in _DEPLOY_KEYS:  # mode: global, endpoint_mode, update_config, ...
            raise host_access_denied(f"deploy.{key}")
    resources = deploy.get("resources") or {}
    if set(resources) - {"limits"} or set(resources.get("limits") or {}) - _LIMIT_KEYS:
        raise host_access_denied("deploy.resources")
    if set(deploy.get("restart_policy") or {}) - _RESTART_KEYS:
        raise host_access_denied("deploy.restart_policy")
    placement = deploy.get("placement") or {}
    if set(placement) - {"constraints"}:
        raise host_access_denied("deploy.placement")
    if list(placement.get("constraints") or []) != constraints:
        raise host_access_denied("deploy.placement.constraints")

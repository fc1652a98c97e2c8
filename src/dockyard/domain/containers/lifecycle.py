"""Which lifecycle action is possible from which state (SPEC §4)."""

from __future__ import annotations

from enum import Enum, StrEnum

from dockyard.domain.models import ContainerRecord, Status
from dockyard.errors import ConflictError, StateError


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    KILL = "kill"


class Plan(Enum):
    RUN = "run"  # do it
    NOOP = "noop"  # already there: answer 200 with the object, touch nothing


_S = Status
_ALLOWED: dict[Action, dict[Status, Plan]] = {
    Action.START: {
        _S.CREATED: Plan.RUN,
        _S.EXITED: Plan.RUN,
        _S.DEAD: Plan.RUN,
        _S.RUNNING: Plan.NOOP,
        _S.RESTARTING: Plan.NOOP,
    },
    Action.STOP: {
        _S.RUNNING: Plan.RUN,
        _S.PAUSED: Plan.RUN,
        _S.RESTARTING: Plan.RUN,
        _S.CREATED: Plan.NOOP,
        _S.EXITED: Plan.NOOP,
        _S.DEAD: Plan.NOOP,
    },
    Action.RESTART: {
        _S.RUNNING: Plan.RUN,
        _S.CREATED: Plan.RUN,
        _S.EXITED: Plan.RUN,
        _S.DEAD: Plan.RUN,
        _S.RESTARTING: Plan.RUN,
    },
    Action.PAUSE: {_S.RUNNING: Plan.RUN, _S.PAUSED: Plan.NOOP},
    Action.UNPAUSE: {_S.PAUSED: Plan.RUN, _S.RUNNING: Plan.NOOP},
    Action.KILL: {_S.RUNNING: Plan.RUN, _S.PAUSED: Plan.RUN, _S.RESTARTING: Plan.RUN},
}


def plan(action: Action, status: Status) -> Plan:
    found = _ALLOWED[action].get(status)
    if found is None:
        raise StateError(
            f"cannot {action.value} a container that is {status.value}",
            code="INVALID_TRANSITION",
            details={"action": action.value, "status": status.value},
        )
    return found


def require_usable(record: ContainerRecord) -> None:
    """Only DELETE is possible on a container being made, gone, failed or removed."""
    if record.status is Status.CREATING:
        raise ConflictError(
            "container is still being created",
            code="CONTAINER_BUSY",
            details={"status": record.status.value},
        )
    if record.status in (Status.MISSING, Status.FAILED, Status.REMOVING):
        raise StateError(
            f"container is {record.status.value}; only DELETE is possible",
            code="CONTAINER_UNAVAILABLE",
            details={"status": record.status.value},
        )

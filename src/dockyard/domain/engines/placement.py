"""Placement: which engine a new container goes to (SPEC §8, issue 12).

A create may name an ``engine``, or ``constraints`` on engine labels, or neither (every
engine is a candidate). An engine takes it when it is reachable, not draining, can run
containers (every kind: ``local``, ``remote``, ``swarm`` as stacks), carries
every constrained label, and has room: what Dockyard's containers there reserve
(``reserved_by_engine``, the same sum as ``/cluster/info``) plus what this one asks for
is within the engine's declared ``cpus`` and ``memory``. An engine without a declared
capacity sets no ceiling (Docker's limits are caps, and one host runs more than its
cores' worth of them, as Dockyard always did); what it reports still ranks it. Among
those that fit, the one with the most free CPUs wins, then the most free memory, then
the registry's order (local first) - a stable spread.

Nothing fits: 409 ``NO_CAPACITY``, with each engine considered and why not. A named
engine that does not exist: 400 ``UNKNOWN_ENGINE``. This module is pure; the service
(``EngineService.admit``) holds the lock that makes decide-and-insert atomic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

from dockyard.domain.engines.cluster import ContainerUse, Reserved, reserved_by_engine
from dockyard.domain.engines.models import LOCAL, EngineKind, EngineStatus
from dockyard.domain.models import Resources, memory_bytes
from dockyard.errors import ConflictError, ValidationError

if TYPE_CHECKING:
    from dockyard.domain.engines.models import EngineView

# Engines Dockyard can run containers on: all kinds (a swarm's as stacks, issue 12). A
# swarm's capacity is what is declared, else what its manager reports (the whole swarm
# only when it is a single node: declare it for more).
RUNNABLE = frozenset({EngineKind.LOCAL, EngineKind.REMOTE, EngineKind.SWARM})
_EPSILON = 1e-9


class Refusal(StrEnum):
    UNREACHABLE = "unreachable"
    DRAINING = "draining"
    LABELS = "labels"
    CANNOT_RUN = "cannot_run"
    CPU = "cpu"
    MEMORY = "memory"
    HOST_ACCESS = "host_access"


@dataclass(frozen=True)
class PlacementRequest:
    """What a create asks of placement: a named engine, label constraints, or neither."""

    engine: str | None = None
    constraints: Mapping[str, str] = field(default_factory=dict)
    host_access: bool = False  # the container asks for host access (an admin's create)


@dataclass(frozen=True)
class Need:
    """What a container reserves: its CPUs and memory (bytes) times its replicas."""

    cpus: float
    memory: int

    @classmethod
    def of(cls, resources: Resources, count: int = 1) -> Need:
        memory = memory_bytes(resources.memory) if resources.memory else 0
        return cls((resources.cpus or 0.0) * count, memory * count)


class EngineRoom(NamedTuple):
    """One engine as placement sees it. ``cpus``/``memory`` are its capacity (declared,
    else reported; None: unknown); only a declared one is a ceiling. (A tuple: every
    decision builds one per engine, and a tuple is the cheapest immutable value to build.)"""

    id: str
    kind: EngineKind
    status: EngineStatus
    labels: Mapping[str, str]
    cpus: float | None
    memory: int | None
    reserved: Reserved = Reserved()
    declared_cpus: bool = False
    declared_memory: bool = False
    host_access: bool = False  # an admin turned host access on for this engine

    @property
    def free_cpus(self) -> float:
        return (self.cpus or 0.0) - self.reserved.cpus

    @property
    def free_memory(self) -> int:
        return (self.memory or 0) - self.reserved.memory


@dataclass(frozen=True)
class Verdict:
    """Why an engine did not take the container."""

    engine: str
    reason: Refusal
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"engine": self.engine, "reason": self.reason.value, "message": self.message}


def rooms_of(
    views: Sequence[EngineView], uses: Iterable[ContainerUse], defaults: Resources
) -> list[EngineRoom]:
    """The registry's engines (in its order) with what Dockyard reserves on each."""
    reserved = reserved_by_engine(uses, defaults)
    return [
        EngineRoom(
            id=view.record.id,
            kind=view.record.kind,
            status=view.status,
            labels=view.record.labels,
            cpus=view.cpus,
            memory=view.memory,
            reserved=reserved.get(view.record.id, Reserved()),
            declared_cpus=view.record.cpus is not None,
            declared_memory=view.record.memory is not None,
            host_access=view.record.host_access,
        )
        for view in views
    ]


def _gib(value: int) -> str:
    return f"{value / 1024**3:.2f} GiB"


def refusal(
    room: EngineRoom, constraints: Mapping[str, str], need: Need, *, host_access: bool = False
) -> Verdict | None:
    """Why ``room`` cannot take ``need`` under ``constraints``; None: it can."""
    if room.status is not EngineStatus.HEALTHY:
        if room.status is EngineStatus.UNREACHABLE:
            return Verdict(room.id, Refusal.UNREACHABLE, "unreachable")
        return Verdict(room.id, Refusal.DRAINING, "draining (takes no new containers)")
    if constraints:
        differ = sorted(k for k, v in constraints.items() if room.labels.get(k) != v)
        if differ:
            wanted = ", ".join(f"{k}={constraints[k]}" for k in differ)
            return Verdict(room.id, Refusal.LABELS, f"labels differ (wants {wanted})")
    if room.kind not in RUNNABLE:
        why = f"cannot run containers yet (a {room.kind.value} engine)"
        return Verdict(room.id, Refusal.CANNOT_RUN, why)
    if host_access and not room.host_access:
        why = f"host access is off (an admin turns it on: PATCH /engines/{room.id})"
        return Verdict(room.id, Refusal.HOST_ACCESS, why)
    if room.declared_cpus and need.cpus > room.free_cpus + _EPSILON:
        free = max(room.free_cpus, 0.0)
        why = f"not enough cpu (free {free:g} of {room.cpus:g}, needs {need.cpus:g})"
        return Verdict(room.id, Refusal.CPU, why)
    if room.declared_memory and need.memory > room.free_memory:
        why = (
            f"not enough memory (free {_gib(max(room.free_memory, 0))} of "
            f"{_gib(room.memory or 0)}, needs {_gib(need.memory)})"
        )
        return Verdict(room.id, Refusal.MEMORY, why)
    return None


def choose(rooms: Sequence[EngineRoom], request: PlacementRequest, need: Need) -> str:
    """The engine the container goes to, or 400 ``UNKNOWN_ENGINE`` / 409 ``NO_CAPACITY``."""
    candidates = list(enumerate(rooms))
    if request.engine is not None:
        candidates = [(i, r) for i, r in candidates if r.id == request.engine]
        if not candidates:
            raise ValidationError(
                f"there is no engine {request.engine!r}",
                code="UNKNOWN_ENGINE",
                details={"field": "engine", "provided": request.engine[:80]},
            )
    fits: list[tuple[float, int, int, str]] = []
    refused: list[Verdict] = []
    for index, room in candidates:
        verdict = refusal(room, request.constraints, need, host_access=request.host_access)
        if verdict is None:
            fits.append((-room.free_cpus, -room.free_memory, index, room.id))
        else:
            refused.append(verdict)
    if fits:
        return min(fits)[3]
    why = "; ".join(f"{v.engine}: {v.message}" for v in refused)
    raise ConflictError(
        f"no capacity: no engine can take this container ({why})",
        code="NO_CAPACITY",
        details={
            "requested": {"cpus": need.cpus, "memory": need.memory},
            "engines": [v.as_detail() for v in refused],
        },
    )


def sums_matter(views: Sequence[EngineView]) -> bool:
    """Whether what Dockyard reserves can change a decision: some engine has a declared
    capacity (a ceiling), or more than one engine can run containers (spread by what is
    free). Otherwise a create need not read every container record to be placed."""
    declared = any(v.record.cpus is not None or v.record.memory is not None for v in views)
    return declared or sum(1 for v in views if v.record.kind in RUNNABLE) > 1


def worth_polling(rooms: Sequence[EngineRoom], request: PlacementRequest) -> list[str]:
    """Unreachable engines that could take a container if they answered now (a refusal
    asks them once more before it stands: the watcher's word may be a poll old)."""
    return [
        r.id
        for r in rooms
        if r.status is EngineStatus.UNREACHABLE
        and r.kind in RUNNABLE
        and request.engine in (None, r.id)
    ]


class Placer(Protocol):
    """What the create path asks: hold the decision while the record is stored."""

    def admit(
        self,
        request: PlacementRequest,
        resources: Resources,
        *,
        count: int = 1,
        image: str | None = None,
    ) -> AbstractAsyncContextManager[str]:
        """``image``: a create's image, checked on the chosen engine when that is not
        the local one (whose check the create makes itself)."""
        ...


class LocalOnly:
    """No registry (a service built without one, in unit tests): the local engine,
    always reachable and without a declared capacity."""

    @asynccontextmanager
    async def admit(
        self,
        request: PlacementRequest,
        resources: Resources,
        *,
        count: int = 1,
        image: str | None = None,
    ) -> AsyncIterator[str]:
        room = EngineRoom(LOCAL, EngineKind.LOCAL, EngineStatus.HEALTHY, {}, None, None)
        yield choose([room], request, Need.of(resources, count))


def image_missing(image: str, engine: str) -> ValidationError:
    """The create's answer for an image its engine lacks (the local one's, as ever)."""
    if engine == LOCAL:
        return ValidationError(
            f"image {image} is not on the engine; build or pull it first",
            code="IMAGE_NOT_FOUND",
            details={"field": "image", "provided": image},
        )
    return ValidationError(
        f"image {image} is not on engine {engine}; build or pull it there first",
        code="IMAGE_NOT_FOUND",
        details={"field": "image", "provided": image, "engine": engine},
    )

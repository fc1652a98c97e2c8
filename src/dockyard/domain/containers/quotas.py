"""Per-account quotas: containers, CPUs, memory, upload size (409 ``QUOTA_EXCEEDED``).

A limit that is not set is unlimited. With a CPU (or memory) quota set, a container that
asks for no CPU (memory) limit could use the whole of it, so it counts as the whole quota:
an account with a quota sets ``resources`` on its containers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from dockyard.domain.leases import Exclusive, alone
from dockyard.domain.models import ContainerSpec, Resources, memory_bytes
from dockyard.errors import ConflictError, PayloadTooLargeError


class Quota(BaseModel):
    """What one account may hold at once; ``None`` is unlimited."""

    model_config = ConfigDict(extra="forbid")

    # Strict: a JSON true is not 1 (issue 9, schemathesis).
    max_containers: StrictInt | None = Field(default=None, ge=0)
    max_cpus: StrictFloat | None = Field(default=None, gt=0, le=4096)
    max_memory: str | None = Field(default=None, description='e.g. "4g"')
    max_upload_bytes: StrictInt | None = Field(default=None, ge=1)

    @field_validator("max_memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is None:
            return None
        Resources(memory=value)  # the same syntax as a container's limit
        return value.lower()

    @property
    def max_memory_bytes(self) -> int | None:
        return memory_bytes(self.max_memory) if self.max_memory else None


@dataclass(frozen=True)
class Usage:
    containers: int = 0
    cpus: float = 0.0
    memory_bytes: int = 0


class QuotaStore(Protocol):
    async def quota(self, username: str) -> Quota: ...
    async def specs_of(self, owner: str, *, exclude: str | None) -> list[ContainerSpec]: ...


def usage_of(specs: list[ContainerSpec], quota: Quota) -> Usage:
    cpus = 0.0
    memory = 0
    for spec in specs:
        cpus += _cpus(spec, quota)
        memory += _memory(spec, quota)
    return Usage(containers=len(specs), cpus=cpus, memory_bytes=memory)


def _cpus(spec: ContainerSpec, quota: Quota) -> float:
    if spec.resources.cpus is not None:
        return spec.resources.cpus
    return quota.max_cpus or 0.0


def _memory(spec: ContainerSpec, quota: Quota) -> int:
    if spec.resources.memory is not None:
        return memory_bytes(spec.resources.memory)
    return quota.max_memory_bytes or 0


def _exceeded(what: str, limit: float, in_use: float, requested: float, hint: str) -> None:
    raise ConflictError(
        f"quota exceeded: {what} would be {in_use + requested:g}, the limit is {limit:g}{hint}",
        code="QUOTA_EXCEEDED",
        details={"quota": what, "limit": limit, "in_use": in_use, "requested": requested},
    )


@dataclass(frozen=True)
class UploadLimit:
    bytes: int
    by_quota: bool

    @contextmanager
    def enforced(self) -> Iterator[None]:
        """An upload over the account's quota is a quota error (409), not a 413."""
        try:
            yield
        except PayloadTooLargeError as exc:
            if not self.by_quota:
                raise
            raise ConflictError(
                f"quota exceeded: uploads are limited to {self.bytes} bytes",
                code="QUOTA_EXCEEDED",
                details={"quota": "max_upload_bytes", "limit": self.bytes},
            ) from exc


class Quotas:
    """The check ``ContainerService`` runs before it stores a new or changed spec."""

    def __init__(self, store: QuotaStore, *, exclusive: Exclusive = alone) -> None:
        self._store = store
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._exclusive = exclusive  # the owner's lock in other processes too

    async def check(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None, count: int = 1
    ) -> None:
        """``spec`` run ``count`` times (its replicas) fits beside the owner's other
        containers (``replacing``'s own share is not counted: it is being changed)."""
        quota = await self._store.quota(owner)
        if quota.max_containers is None and quota.max_cpus is None and quota.max_memory is None:
            return
        usage = usage_of(await self._store.specs_of(owner, exclude=replacing), quota)
        if (
            (replacing is None or count > 1)
            and quota.max_containers is not None
            and usage.containers + count > quota.max_containers
        ):
            _exceeded("max_containers", quota.max_containers, usage.containers, count, "")
        if quota.max_cpus is not None:
            wanted = _cpus(spec, quota) * count
            if usage.cpus + wanted > quota.max_cpus + 1e-9:
                hint = "; set resources.cpus" if spec.resources.cpus is None else ""
                _exceeded("max_cpus", quota.max_cpus, usage.cpus, wanted, hint)
        limit = quota.max_memory_bytes
        if limit is not None:
            wanted_mem = _memory(spec, quota) * count
            if usage.memory_bytes + wanted_mem > limit:
                hint = "; set resources.memory" if spec.resources.memory is None else ""
                _exceeded("max_memory", limit, usage.memory_bytes, wanted_mem, hint)

    @asynccontextmanager
    async def admit(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None = None, count: int = 1
    ) -> AsyncIterator[None]:
        """Check, and hold the owner's lock while the caller stores the record, so that
        two concurrent creates cannot both take the last slot."""
        async with self._locks[owner], self._exclusive(f"quota:{owner}"):
            await self.check(owner, spec, replacing=replacing, count=count)
            yield

    async def usage(self, owner: str) -> Usage:
        quota = await self._store.quota(owner)
        return usage_of(await self._store.specs_of(owner, exclude=None), quota)

    async def upload_limit(self, username: str, default: int) -> UploadLimit:
        """The largest upload ``username`` may send: the service's limit or its quota."""
        quota = await self._store.quota(username)
        if quota.max_upload_bytes is not None and quota.max_upload_bytes < default:
            return UploadLimit(quota.max_upload_bytes, by_quota=True)
        return UploadLimit(default, by_quota=False)


class NoQuotas:
    """No limits (the default of ``ContainerService``)."""

    async def check(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None, count: int = 1
    ) -> None:
        return None

    @asynccontextmanager
    async def admit(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None = None, count: int = 1
    ) -> AsyncIterator[None]:
        yield


class QuotaGuard(Protocol):
    async def check(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None, count: int = 1
    ) -> None: ...

    def admit(
        self, owner: str, spec: ContainerSpec, *, replacing: str | None = None, count: int = 1
    ) -> Any: ...

"""Host ports: fixed ones a client names and free ones drawn from ``PORT_RANGE`` (SPEC §4).

Every published host port is a row of the allocation store whose key is
(engine, host port, protocol): the insert *is* the lock, so two creates can never hold
the same port, whatever their timing. A conflict means "taken": a fixed port is then
409 ``PORT_IN_USE``, a free one moves on to the next candidate. Before a free port is
claimed, ``probe`` (a bind on the host) skips ports held by something that is not
Dockyard's; it is only a hint, as the engine's own bind is the last word (see
``ContainerService`` for the retry when the engine refuses a drawn port).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from dockyard.domain.models import Port
from dockyard.errors import ConflictError, ValidationError

Key = tuple[int, str]  # (host port, protocol)
HostProbe = Callable[[int, str], bool]  # True: nothing on this host holds the port
_RANGE = re.compile(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*\Z")
_EXPOSED = re.compile(r"(\d{1,5})(?:/(tcp|udp|sctp))?\Z")
MAX_PORTS = 64


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    @classmethod
    def parse(cls, text: str, reserved: Iterable[int] = ()) -> PortRange:
        """``first-last`` inside 1024-65535, holding none of ``reserved``; else ValueError."""
        found = _RANGE.match(text)
        if not found:
            raise ValueError(f"{text!r} is not a range like 20000-29999")
        first, last = int(found[1]), int(found[2])
        if not 1024 <= first <= last <= 65535:
            raise ValueError(f"{text!r} must lie inside 1024-65535, the lower bound first")
        inside = sorted(p for p in set(reserved) if first <= p <= last)
        if inside:
            raise ValueError(f"{text!r} contains the reserved port {inside[0]}")
        return cls(first, last)

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Allocation:
    engine: str
    host_port: int
    protocol: str
    cuid: str
    container_port: int
    replica: int = 0


class PortAllocations(Protocol):
    """The allocation table; ``claim`` is an insert that fails on the key, never a read."""

    async def claim(self, allocation: Allocation) -> bool: ...
    async def holder(self, engine: str, host_port: int, protocol: str) -> str | None: ...
    async def held(self, cuid: str) -> list[Allocation]: ...
    async def release(self, cuid: str, keys: Iterable[Key] | None = None) -> None: ...


def exposed_ports(exposed: Iterable[str]) -> list[Port]:
    """The image's ``ExposedPorts`` keys (``8000/tcp``) as ports to draw host ports for;
    protocols the engine cannot publish through Compose here (sctp) are left out."""
    ports: list[Port] = []
    for item in exposed:
        found = _EXPOSED.match(item.strip())
        if found and (found[2] or "tcp") != "sctp" and 1 <= int(found[1]) <= 65535:
            proto = "udp" if found[2] == "udp" else "tcp"
            ports.append(Port(container=int(found[1]), protocol=proto))
    return ports


def with_exposed(ports: list[Port], exposed: Iterable[Port]) -> list[Port]:
    """``ports`` plus every exposed port the client did not map itself."""
    mapped = {(p.container, p.protocol) for p in ports}
    added = [p for p in exposed if (p.container, p.protocol) not in mapped]
    if len(ports) + len(added) > MAX_PORTS:
        raise ValidationError(
            f"publish_all would publish more than {MAX_PORTS} ports",
            code="TOO_MANY_PORTS",
            details={"field": "publish_all"},
        )
    return [*ports, *added]


def drawn_keys(resolved: Sequence[Port], asked: Sequence[Port]) -> set[Key]:
    """The keys of the ports whose host port was drawn (asked for as ``null``)."""
    return {
        (got.host, got.protocol)
        for got, ask in zip(resolved, asked, strict=True)
        if ask.host is None and got.host is not None
    }


def port_in_use(port: int, protocol: str) -> ConflictError:
    return ConflictError(
        f"host port {port}/{protocol} is already bound by another container",
        code="PORT_IN_USE",
        details={"port": port, "protocol": protocol},
    )


def url_of(public_host: str, port: Port) -> str | None:
    """The ready URL of a published tcp port; udp has none."""
    if port.host is None or port.protocol != "tcp":
        return None
    host = f"[{public_host}]" if ":" in public_host else public_host
    return f"http://{host}:{port.host}"


class PortAllocator:
    """Claims and releases host ports of containers (one engine name per claim)."""

    def __init__(
        self, store: PortAllocations, port_range: PortRange, probe: HostProbe | None = None
    ) -> None:
        self._store = store
        self._range = port_range
        self._probe = probe
        # Candidates come from one moving cursor, so concurrent creates of this process
        # try different ports; a random start spreads the claims of a restarted process.
        self._cursor = secrets.randbelow(port_range.size)

    async def claim(
        self, cuid: str, engine: str, wanted: Sequence[Port], current: Sequence[Port] = ()
    ) -> tuple[list[Port], set[Key]]:
        """Every port of ``wanted`` with a host port: the fixed ones claimed as given
        (held by ``cuid`` already is fine), a ``null`` one keeps the host port it had in
        ``current`` or gets a free one. Returns the ports and the keys newly claimed;
        on failure nothing new stays claimed."""
        if not wanted:
            return [], set()  # most containers publish nothing: no read
        held = {(a.host_port, a.protocol) for a in await self._store.held(cuid)}
        fresh: set[Key] = set()
        try:
            resolved = await self._claim_all(cuid, engine, wanted, current, held, fresh)
        except BaseException:
            if fresh:
                await self._store.release(cuid, fresh)
            raise
        return resolved, fresh

    async def _claim_all(
        self,
        cuid: str,
        engine: str,
        wanted: Sequence[Port],
        current: Sequence[Port],
        held: set[Key],
        fresh: set[Key],
    ) -> list[Port]:
        taken = {(p.host, p.protocol) for p in wanted if p.host is not None}
        for port in wanted:
            if port.host is None or (port.host, port.protocol) in held:
                continue
            allocation = Allocation(engine, port.host, port.protocol, cuid, port.container)
            if not await self._store.claim(allocation):
                raise port_in_use(port.host, port.protocol)
            fresh.add((port.host, port.protocol))
        before = {(p.container, p.protocol): p.host for p in current if p.host is not None}
        resolved: list[Port] = []
        for port in wanted:
            if port.host is None:
                kept = before.get((port.container, port.protocol))
                if kept is not None and (kept, port.protocol) in held - taken:
                    host = kept
                else:
                    host = await self.draw(cuid, engine, port.container, port.protocol)
                    fresh.add((host, port.protocol))
                taken.add((host, port.protocol))
                port = port.model_copy(update={"host": host})
            resolved.append(port)
        return resolved

    async def draw(
        self, cuid: str, engine: str, container_port: int, protocol: str, replica: int = 0
    ) -> int:
        """A free host port of the range, claimed for ``cuid`` (and its ``replica``)."""
        first, size = self._range.first, self._range.size
        for _ in range(size):
            candidate = first + self._cursor % size
            self._cursor = (self._cursor + 1) % size
            if self._probe is not None and not self._probe(candidate, protocol):
                continue  # something else on the host holds it
            allocation = Allocation(engine, candidate, protocol, cuid, container_port, replica)
            if await self._store.claim(allocation):
                return candidate
        raise ConflictError(
            f"no free host port left in PORT_RANGE {first}-{self._range.last}",
            code="NO_FREE_PORT",
            details={"protocol": protocol},
        )

    async def redraw(
        self, cuid: str, engine: str, ports: list[Port], host: int
    ) -> tuple[list[Port], set[Key]]:
        """``ports`` with the drawn host port ``host`` (which the engine could not bind)
        replaced by another free one, and the new keys; the old claim is released."""
        out: list[Port] = []
        new: set[Key] = set()
        for port in ports:
            if port.host == host:
                drawn = await self.draw(cuid, engine, port.container, port.protocol)
                await self._store.release(cuid, [(host, port.protocol)])
                new.add((drawn, port.protocol))
                port = port.model_copy(update={"host": drawn})
            out.append(port)
        return out, new

    def drawable(self, port: Port) -> bool:
        """A host port of ``PORT_RANGE``: each replica gets its own such port; one
        outside the range was named by the client and cannot be shared (scaling.py)."""
        return port.host is not None and self._range.first <= port.host <= self._range.last

    async def claim_replica(
        self, cuid: str, engine: str, replica: int, first: Sequence[Port]
    ) -> list[Port]:
        """Replica ``replica``'s own host ports, one drawn for each drawn port of the
        first replica's ``first`` (an unpublished one stays unpublished); on failure
        nothing new stays claimed."""
        ports: list[Port] = []
        fresh: set[Key] = set()
        try:
            for port in first:
                if port.host is not None:
                    host = await self.draw(cuid, engine, port.container, port.protocol, replica)
                    fresh.add((host, port.protocol))
                    port = port.model_copy(update={"host": host})
                ports.append(port)
        except BaseException:
            if fresh:
                await self._store.release(cuid, fresh)
            raise
        return ports

    async def keep_only(self, cuid: str, ports: Iterable[Port]) -> None:
        """Release every claim of ``cuid`` that ``ports`` no longer publishes."""
        keep = {(p.host, p.protocol) for p in ports if p.host is not None}
        # Replicas 2..N hold their own (scaling.py releases those).
        held = await self._store.held(cuid)
        stale = {(a.host_port, a.protocol) for a in held if a.replica < 2} - keep
        if stale:
            await self._store.release(cuid, stale)

    async def release(self, cuid: str, keys: Iterable[Key] | None = None) -> None:
        """Give back ``keys`` (all of ``cuid``'s when None). A container that holds none
        (most do) costs a read, not a write: no commit on its delete path, and no wait
        for a database whose write lock another process holds."""
        if keys is None and not await self._store.held(cuid):
            return
        await self._store.release(cuid, keys)

    async def backfill(self, cuid: str, engine: str, ports: Iterable[Port]) -> list[Key]:
        """Claims for a container's host ports that have none (records older than the
        table); returns the ones another container holds already."""
        clashes: list[Key] = []
        held = {(a.host_port, a.protocol) for a in await self._store.held(cuid)}
        for port in ports:
            if port.host is None or (port.host, port.protocol) in held:
                continue
            allocation = Allocation(engine, port.host, port.protocol, cuid, port.container)
            if not await self._store.claim(allocation):
                clashes.append((port.host, port.protocol))
        return clashes

"""A container's output as the engine logged it (SPEC §4 ``/logs``), read or followed.

Containers have a TTY, so the engine keeps one merged stream (logged as stdout):
``stderr=false`` changes nothing for them and ``stdout=false`` leaves nothing. A follow
ends when the container stops (the engine closes the stream) or the client leaves; the
follows open at once are bounded per container and in total.
"""

from __future__ import annotations

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.scaling import require_replica
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.observe.streams import LeasedStream, SessionLimiter, parse_instant
from dockyard.domain.ports import Engine, LogQuery
from dockyard.errors import ValidationError

MAX_TAIL = 10_000_000


def log_query(
    *,
    follow: bool,
    tail: str | None,
    since: str | None,
    until: str | None,
    timestamps: bool,
    stdout: bool,
    stderr: bool,
) -> LogQuery:
    """Validate what a client asked for (``tail``: a line count or ``all``)."""
    lines: int | None = None
    if tail is not None and tail.strip().lower() not in ("", "all"):
        try:
            lines = int(tail)
        except ValueError:
            lines = -1
        if not 0 <= lines <= MAX_TAIL:
            raise ValidationError(
                f"tail must be a line count from 0 to {MAX_TAIL} or 'all'",
                code="INVALID_TAIL",
                details={"field": "tail", "provided": tail[:32]},
            )
    if not stdout and not stderr:
        raise ValidationError(
            "ask for stdout, stderr or both",
            code="INVALID_STREAMS",
            details={"field": "stdout", "provided": False},
        )
    start = parse_instant(since, "since")
    end = parse_instant(until, "until")
    if start is not None and end is not None and end < start:
        raise ValidationError(
            "until is before since", code="INVALID_TIME", details={"field": "until"}
        )
    return LogQuery(
        follow=follow,
        tail=lines,
        since=start.timestamp() if start else None,
        until=end.timestamp() if end else None,
        timestamps=timestamps,
        stdout=stdout,
        stderr=stderr,
    )


class LogService:
    def __init__(
        self,
        containers: ContainerService,
        engine: Engine,
        *,
        follow_per_container: int,
        follow_total: int,
    ) -> None:
        self._containers = containers
        self._engine = engine
        self.follows = SessionLimiter(
            "log follow", total=follow_total, per_key=follow_per_container
        )

    async def open(
        self, principal: Principal, cuid: str, query: LogQuery, *, replica: int = 1
    ) -> LeasedStream[bytes]:
        """Open the engine's log stream of ``replica`` (errors come here, before any
        byte is sent)."""
        principal.require(Permission.CONTAINERS_READ)
        record = await self._containers.owned(principal, cuid)
        require_replica(record, replica)
        lease = self.follows.acquire(record.cuid) if query.follow else None
        try:
            stream = await self._engine.open_logs(record.cuid, query, replica=replica)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        return LeasedStream(aiter(stream), lease, stream.aclose)

"""What the container service does for its timers and check-ins (issue 11): the
lifetime set at create and by PATCH, the idle stop and the expiry the scheduler
(domain/automation/timers.py) asks for, and check-ins by the owner or the workload.

An idle stop and an expiry are recorded with the ``system`` actor: nobody asked for
them over HTTP, so the recorder writes their audit entries itself.
"""

from __future__ import annotations

from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.automation.checkin import token_hash, token_matches
from dockyard.domain.automation.lifetime import apply_timers
from dockyard.domain.containers.lifecycle import Action, require_usable
from dockyard.domain.containers.reads import ContainerReads
from dockyard.domain.models import CUID, ContainerRecord, Status
from dockyard.domain.recording import SYSTEM, Change
from dockyard.errors import AuthError

log = structlog.get_logger("dockyard.containers")

# An auto_remove container is removed from these (MISSING: the engine lost it already,
# REMOVING: a removal was interrupted); a refresh never writes REMOVING or MISSING back
# to a record the engine still has.
ENDED = (Status.EXITED, Status.DEAD, Status.MISSING, Status.REMOVING)


class AutomaticActions(ContainerReads):
    """Timers and check-ins; ``ContainerService`` provides ``_act`` and the delete."""

    async def _act(self, record: ContainerRecord, action: Action) -> ContainerRecord:
        raise NotImplementedError

    async def finish_delete(self, cuid: str) -> None:
        raise NotImplementedError

    # -- set by clients ----------------------------------------------------------

    def _start_lifetime(self, record: ContainerRecord, timers: dict[str, Any]) -> None:
        """A new record's timers (IDLE_TIMEOUT unless the create names one) and the
        hash of its check-in token."""
        apply_timers(record, timers, default_idle=self._config.idle_timeout)
        if self._config.checkin is not None:
            record.checkin_token_hash = token_hash(self._config.checkin.token(record.cuid))

    async def _set_timers(
        self, principal: Principal, cuid: str, timers: dict[str, Any]
    ) -> ContainerRecord:
        """A PATCH of timers only: stored, rescheduled, nothing recreated."""
        record = await self.owned(principal, cuid)
        require_usable(record)
        async with self.locked(cuid):
            record = await self.owned(principal, cuid)  # current under the lock
            apply_timers(record, timers)
            await self._repo.save(record)
        if self.timers is not None:
            self.timers.watch(record)
        return record

    # -- asked for by the scheduler ----------------------------------------------

    async def timed(self) -> list[ContainerRecord]:
        return await self._repo.timed()

    async def lookup(self, cuid: str) -> ContainerRecord | None:
        return await self._repo.get(cuid)

    async def idle_stop(self, record: ContainerRecord) -> None:
        """Stop a container nobody used for its idle timeout."""
        if record.status in (Status.CREATING, Status.REMOVING, Status.FAILED):
            return
        last = self.with_activity(record).last_activity_at
        record = await self._act(record, Action.STOP)
        log.info("container.idle_stopped", cuid=record.cuid, idle_timeout=record.idle_timeout)
        self._system(
            "container.idle_stopped",
            record,
            idle_timeout=record.idle_timeout,
            last_activity_at=last.isoformat() if last else None,
        )

    async def expire(self, record: ContainerRecord) -> None:
        """Delete a container whose ``expires_at`` has come."""
        cuid = record.cuid
        async with self.locked(cuid):
            record.status = Status.REMOVING
            await self._repo.save_state(record)
            await self.finish_delete(cuid)
        self.activity.forget(cuid)
        log.info("container.expired", cuid=cuid)
        expired = record.expires_at.isoformat() if record.expires_at else None
        self._system("container.expired", record, expires_at=expired)

    async def auto_remove(self, record: ContainerRecord) -> bool:
        """Delete a container created with ``auto_remove`` whose main process has ended
        (the same delete as DELETE's); False when it is not, or no longer, to be removed
        (started again, already gone)."""
        cuid = record.cuid
        async with self.locked(cuid):
            current = await self._repo.get(cuid)
            if current is None or not current.spec.auto_remove:
                return False
            if current.status not in (Status.REMOVING, Status.MISSING):
                await self.refresh(current, persist=False)
            if current.status not in ENDED:
                return False
            exit_code = current.exit_code
            current.status = Status.REMOVING
            await self._repo.save_state(current)
            await self.finish_delete(cuid)
        self.activity.forget(cuid)
        log.info("container.auto_removed", cuid=cuid, exit_code=exit_code)
        self._system("container.auto_removed", current, "auto_remove", exit_code=exit_code)
        return True

    def _system(
        self, action: str, record: ContainerRecord, component: str = "timers", **details: Any
    ) -> None:
        self._recorder.record(
            Change(action, record.cuid, record.owner, SYSTEM, component=component, details=details)
        )

    # -- check-ins ---------------------------------------------------------------

    async def check_in(self, principal: Principal, cuid: str) -> ContainerRecord:
        """The owner (or whoever may control the container) says it is in use."""
        principal.require(Permission.CONTAINERS_CONTROL)
        record = await self.owned(principal, cuid)
        self.activity.touch(cuid)
        return self.with_activity(record)

    async def check_in_with_token(self, cuid: str, token: str) -> ContainerRecord:
        """The workload says it is in use, with its container's check-in token; any
        mismatch (another container's token, an unknown cuid) is the same 401."""
        record = await self._repo.get(cuid) if CUID.match(cuid) else None
        if record is None or not token_matches(token, record.checkin_token_hash):
            raise AuthError("invalid check-in token", code="INVALID_CREDENTIALS")
        self.activity.touch(cuid)
        return self.with_activity(record)

    def with_activity(self, record: ContainerRecord) -> ContainerRecord:
        """The record with its newest activity (which may not be stored yet)."""
        last = self.activity.last(record.cuid)
        if last is not None and (record.last_activity_at is None or last > record.last_activity_at):
            record.last_activity_at = last
        return record


__all__ = ["AutomaticActions"]

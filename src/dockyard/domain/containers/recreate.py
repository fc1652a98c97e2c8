"""Recreating a container from its own document (a hub redeploy, issue 11).

``docker compose up --force-recreate`` of the same Compose document: env, ports (the
same host ports), replicas, timers and the ``/app`` bind mount stay as they are, and the
image reference, which names another image id since the pull or build, is resolved again.
A container that was not running is recreated without being started (``create
--force-recreate``): it runs the new image when it is next started, and stays stopped.

Nobody asked for a recreate over HTTP; its caller records it (``container.redeployed``,
actor ``system``).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from dockyard.domain.containers.reads import ContainerReads
from dockyard.domain.images.refs import canonical
from dockyard.domain.models import ContainerRecord, Status
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.containers")

RUNNING = (Status.RUNNING, Status.RESTARTING, Status.PAUSED)
SKIPPED = (Status.CREATING, Status.REMOVING, Status.FAILED, Status.MISSING)
# ComposeRunner.action verbs (adapters/compose/runner.py).
RECREATE = "recreate"  # up --detach --force-recreate
RECREATE_STOPPED = "recreate-stopped"  # create --force-recreate: made again, not started


@dataclass(frozen=True)
class Recreated:
    """What became of one container: ``outcome`` is ``recreated`` (running again on its
    image), ``recreated_stopped`` (made again, left stopped), ``skipped`` (being made,
    removed, missing or failed), ``gone`` (deleted meanwhile) or ``failed`` (``error``)."""

    cuid: str
    outcome: str
    old_image_id: str | None = None
    new_image_id: str | None = None
    status: str | None = None
    error: str | None = None  # an error code

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


class Recreation(ContainerReads):
    """``ContainerService``'s recreate (its state and locks live in ``ContainerReads``)."""

    async def using_image(self, owner: str, image: str) -> list[ContainerRecord]:
        """``owner``'s containers whose image is ``image`` (``app`` and
        ``docker.io/library/app:latest`` are the same), oldest first."""
        wanted = canonical(image)
        return sorted(
            (
                record
                for record in await self._repo.all()
                if record.owner == owner and canonical(record.spec.image) == wanted
            ),
            key=lambda record: record.seq,
        )

    async def recreate(self, cuid: str) -> Recreated:
        """Recreate one container from its document; a failure is its outcome, never
        raised (the next container is recreated all the same)."""
        record = await self._repo.get(cuid)
        if record is None:
            return Recreated(cuid, "gone")
        if record.status in SKIPPED:
            return Recreated(cuid, "skipped", status=record.status.value)
        async with self.locked(cuid):
            before = await self._engine.inspect(cuid)
            await self.refresh(record)
            running = record.status in RUNNING
            project_dir = self.project_dir(cuid)
            try:
                await self._compose.write(project_dir, self.document(record))
                async with self._heavy:
                    verb = RECREATE if running else RECREATE_STOPPED
                    await self._compose.action(cuid, project_dir, verb)
            except DockyardError as exc:
                await self.refresh(record)
                log.warning("container.recreate_failed", cuid=cuid, code=exc.code)
                return Recreated(
                    cuid,
                    "failed",
                    old_image_id=before.image_id if before else None,
                    status=record.status.value,
                    error=exc.code,
                )
            after = await self.refresh(record)
        log.info("container.recreated", cuid=cuid, running=running)
        return Recreated(
            cuid,
            "recreated" if running else "recreated_stopped",
            old_image_id=before.image_id if before else None,
            new_image_id=after.image_id if after else None,
            status=record.status.value,
        )


__all__ = ["Recreated", "Recreation"]

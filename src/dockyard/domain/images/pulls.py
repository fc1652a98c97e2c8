"""Pulls (``POST /images/pull``, SPEC §6): a job in the same queue as builds, with the
progress of each layer (bytes done of total) in the job and its status lines in the log.
A pull that cannot reach its registry fails at the job's deadline at the latest."""

from __future__ import annotations

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.images.builds import push_error
from dockyard.domain.images.jobs import JobService
from dockyard.domain.images.models import Job, JobKind, JobStatus
from dockyard.domain.images.ports import Credentials, ImageEngine, ProgressKind, RegistryAuth
from dockyard.domain.images.refs import check_pull_ref
from dockyard.domain.images.running import JobRun, closing
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import ValidationError


class PullService:
    def __init__(
        self,
        jobs: JobService,
        images: ImageEngine,
        credentials: Credentials,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self._jobs = jobs
        self._images = images
        self._credentials = credentials
        self._recorder = recorder or NullRecorder()

    async def submit(
        self,
        principal: Principal,
        image: str,
        *,
        registry: str | None = None,
        auth: RegistryAuth | None = None,
    ) -> Job:
        """Queue a pull of ``image`` (202); 429 when there is no room."""
        principal.require(Permission.IMAGES_PULL)
        ref = check_pull_ref(image)
        if registry and auth:
            raise ValidationError(
                "give either registry or auth, not both",
                code="INVALID_FIELD",
                details={"field": "auth"},
            )
        spec: dict[str, object] = {"image": ref, "registry": registry}
        if auth is not None:
            spec["auth"] = {"server": auth.server, "username": auth.username}
        job = self._jobs.new_job(JobKind.PULL, principal.username, tags=[ref], spec=spec)

        async def work(run: JobRun) -> None:
            await self._work(run, ref, registry, auth)

        masked = frozenset({auth.password}) if auth is not None else frozenset()
        return await self._jobs.submit(job, work, secrets=masked)

    async def pull_in(self, run: JobRun, ref: str) -> None:
        """Pull ``ref`` as a step of another job (a hub redeploy), with the job owner's
        stored credentials for its registry, if any."""
        await self._work(run, check_pull_ref(ref), None, None)

    async def _work(
        self, run: JobRun, ref: str, registry: str | None, inline: RegistryAuth | None
    ) -> None:
        await run.set_status(JobStatus.PULLING)
        auth = await self._credentials.resolve(
            run.job.owner, ref, registry_id=registry, inline=inline
        )
        if auth is not None:
            run.mask(auth.password)
        await run.write(f"Pulling {ref}")
        async with closing(self._images.pull(ref, auth)) as stream:
            async for progress in stream:
                if progress.kind is ProgressKind.ERROR:
                    kind, code = push_error(progress.text)
                    code = "PULL_FAILED" if code == "PUSH_FAILED" else code
                    await run.fail(kind, code, progress.text, step=f"pull {ref}")
                elif progress.kind is ProgressKind.RESULT:
                    run.job.digest = progress.digest or run.job.digest
                    run.job.image_id = progress.image_id or run.job.image_id
                else:
                    await run.follow(progress)
        info = await self._images.inspect_image(ref)
        if info is None:
            await run.fail(
                "engine_error", "PULL_FAILED", f"{ref} is not on the engine after the pull"
            )
        else:
            run.job.image_id = info.id
            run.job.digest = run.job.digest or next(iter(info.digests), None)
        await run.write(f"Pulled {ref} ({run.job.image_id})")
        await run.save()
        self._recorder.record(
            Change(
                action="image.pulled",
                resource=ref,
                owner=run.job.owner,
                actor=run.job.owner,
                component="jobs",
                details={"image": ref, "job_id": run.id, "image_id": run.job.image_id},
            )
        )

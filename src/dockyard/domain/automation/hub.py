"""``POST /hub/webhook/{key}``: redeploy on push (issue 11, seed 004's Shipyard).

The key is the only credential. An unknown key is ``UnknownHubKey``, which the route
answers exactly as it answers a path that does not exist; the failures of one source
address are counted like failed logins, and past the limit it is 429. A delivery is
Docker Hub's payload (``repository.repo_name``, ``push_data.tag``; its ``callback_url``
is never called) or a plain ``{"image": "repo:tag"}``. Its repository must be the key's;
its tag (the key's by default) is what is pulled or built.

Each delivery has a *fingerprint* (``fingerprint_of``); it is stored in
``hub_deliveries`` in the same transaction as the job it queued, so a replay (Docker Hub
retries, a proxy resends) is answered with the same job and redeploys nothing again.

The job (``JobKind.REDEPLOY``, in the build queue: listed, followed, cancelled at
``/builds``) pulls the image with the owner's stored credentials for its registry, or
runs the key's bound build, then recreates one at a time every container of the key's
owner whose image is that repository and tag (domain/containers/recreate.py). Its
``result`` lists each container; each recreate is a ``container.redeployed`` event and
audit entry by ``system``, and each new delivery a ``hub.delivery`` event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import structlog

from dockyard.domain.access.authn import LoginLimiter
from dockyard.domain.access.credentials import hash_secret
from dockyard.domain.access.permissions import not_found
from dockyard.domain.automation.hubkeys import WebhookKey, WebhookKeyRepository, looks_like_key
from dockyard.domain.containers.recreate import Recreated
from dockyard.domain.images.builds import BuildRequest, BuildService
from dockyard.domain.images.jobs import JobService
from dockyard.domain.images.models import Job, JobKind, JobStatus
from dockyard.domain.images.pulls import PullService
from dockyard.domain.images.refs import parse_ref
from dockyard.domain.images.running import JobRun
from dockyard.domain.models import ContainerRecord
from dockyard.domain.recording import SYSTEM, Change, NullRecorder, Recorder
from dockyard.errors import ConflictError, RateLimitedError, ValidationError

log = structlog.get_logger("dockyard.hub")

MAX_DELIVERY_ID = 200

# A bound build (the key's stored request) and the tag to build -> the build request.
BuildFactory = Callable[[dict[str, Any], str], BuildRequest]


class UnknownHubKey(Exception):
    """No such key: answered as a path that does not exist (nothing learned)."""


class Redeployer(Protocol):
    """The container side (``ContainerService``: domain/containers/recreate.py)."""

    async def using_image(self, owner: str, image: str) -> list[ContainerRecord]: ...
    async def recreate(self, cuid: str) -> Recreated: ...


@dataclass(frozen=True)
class HubDelivery:
    """What a delivery asks for: a repository, maybe a tag, and its fingerprint."""

    repository: str
    tag: str | None
    fingerprint: str
    source: str  # docker_hub | plain


@dataclass(frozen=True)
class Accepted:
    job: Job
    replay: bool


def _invalid(message: str, field: str = "body", code: str = "INVALID_PAYLOAD") -> ValidationError:
    return ValidationError(message, code=code, details={"field": field})


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def parse_delivery(body: bytes, delivery_id: str | None = None) -> HubDelivery:
    """The repository and tag a delivery names, and its fingerprint.

    The same delivery: Docker Hub's payload with the same ``repository.repo_name``,
    ``push_data.tag`` and ``push_data.pushed_at`` (whatever else differs); any other body
    with the same bytes and the same ``X-Hub-Delivery`` (or ``Idempotency-Key``) header,
    or none."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise _invalid("the body is not JSON") from None
    if not isinstance(data, dict):
        raise _invalid('send Docker Hub\'s payload or {"image": "repo:tag"}')
    if delivery_id is not None and len(delivery_id) > MAX_DELIVERY_ID:
        raise _invalid(f"X-Hub-Delivery is at most {MAX_DELIVERY_ID} characters", "X-Hub-Delivery")
    if "repository" in data or "push_data" in data:
        return _docker_hub(data, body, delivery_id)
    image = data.get("image")
    if not isinstance(image, str) or not image:
        raise _invalid("image is required (repo or repo:tag)", "image", "MISSING_IMAGE")
    ref = parse_ref(image, field="image")
    if ref.digest is not None:
        raise _invalid("image names a tag, not a digest", "image", "INVALID_IMAGE_REF")
    fingerprint = _digest("plain", hashlib.sha256(body).hexdigest(), delivery_id or "")
    return HubDelivery(ref.name, ref.tag, fingerprint, "plain")


def _docker_hub(data: dict[str, Any], body: bytes, delivery_id: str | None) -> HubDelivery:
    repository = data.get("repository")
    push = data.get("push_data") or {}
    name = repository.get("repo_name") if isinstance(repository, dict) else None
    if not isinstance(name, str) or not name or not isinstance(push, dict):
        raise _invalid("repository.repo_name is required", "repository.repo_name")
    ref = parse_ref(name, field="repository.repo_name")
    if ref.tag is not None or ref.digest is not None:
        raise _invalid("repository.repo_name is a repository", "repository.repo_name")
    tag = push.get("tag")
    if tag is not None and (not isinstance(tag, str) or not tag):
        raise _invalid("push_data.tag is a tag name", "push_data.tag")
    if tag is not None:
        parse_ref(f"{name}:{tag}", field="push_data.tag")
    pushed_at = push.get("pushed_at")
    if isinstance(pushed_at, (int, float, str)) and not isinstance(pushed_at, bool):
        fingerprint = _digest("hub", ref.name, tag or "", str(pushed_at))
    else:  # no push time: the body itself (and its delivery id) is the delivery
        fingerprint = _digest("hub-body", hashlib.sha256(body).hexdigest(), delivery_id or "")
    return HubDelivery(ref.name, tag, fingerprint, "docker_hub")


def target_of(key: WebhookKey, delivery: HubDelivery) -> str:
    """The reference to pull or build: the key's repository with the delivery's tag (the
    key's by default). A repository other than the key's is 400 ``REPOSITORY_MISMATCH``;
    a payload that names no registry matches the key's repository path on any registry."""
    mine = parse_ref(key.image)
    theirs = parse_ref(delivery.repository)
    same = (theirs.registry, theirs.repository) == (mine.registry, mine.repository)
    bare = not _has_host(delivery.repository) and _short(delivery.repository) == _short(
        mine.repository
    )
    if not (same or bare):
        raise ValidationError(
            "the delivery names another repository than this key's",
            code="REPOSITORY_MISMATCH",
            details={"field": "repository", "provided": delivery.repository[:200]},
        )
    return f"{key.repository}:{delivery.tag or key.tag}"


def _has_host(name: str) -> bool:
    first = name.split("/", 1)[0]
    return "." in first or ":" in first or first == "localhost"


def _short(path: str) -> str:
    return path.removeprefix("library/")


class HubService:
    """Deliveries to ``/hub/webhook/{key}`` and the redeploy jobs they queue."""

    def __init__(
        self,
        keys: WebhookKeyRepository,
        jobs: JobService,
        pulls: PullService,
        builds: BuildService,
        containers: Redeployer,
        build_from: BuildFactory,
        *,
        failures: LoginLimiter,
        per_key: LoginLimiter,
        recorder: Recorder | None = None,
    ) -> None:
        self._keys = keys
        self._jobs = jobs
        self._pulls = pulls
        self._builds = builds
        self._containers = containers
        self._build_from = build_from
        self._failures = failures
        self._per_key = per_key
        self._recorder = recorder or NullRecorder()

    async def deliver(
        self, secret: str, body: bytes, *, delivery_id: str | None, source: str
    ) -> Accepted:
        """Queue the redeploy a delivery asks for (a replay: the job it queued before).
        ``UnknownHubKey`` for a key that does not exist, 429 past the failure limit."""
        await self._throttled(self._failures, f"ip:{source}")
        key = await self._keys.by_hash(hash_secret(secret)) if looks_like_key(secret) else None
        if key is None:
            await self._failures.failed(f"ip:{source}")
            log.warning("hub.unknown_key", source=source)
            raise UnknownHubKey()
        await self._throttled(self._per_key, f"key:{key.id}")
        await self._per_key.failed(f"key:{key.id}")  # counts every delivery of the key
        delivery = parse_delivery(body, delivery_id)
        ref = target_of(key, delivery)
        seen = await self._keys.delivery(key.id, delivery.fingerprint)
        if seen is not None:
            return await self._replayed(key, seen)
        job = self._jobs.new_job(
            JobKind.REDEPLOY,
            key.owner,
            tags=[ref],
            spec={"image": ref, "key_id": key.id, "build": key.build is not None},
        )

        async def work(run: JobRun) -> None:
            await self._redeploy(run, key, ref)

        async def insert(new: Job) -> None:
            await self._keys.insert_with_job(new, key.id, delivery.fingerprint)

        try:
            queued = await self._jobs.submit(job, work, insert=insert)
        except ConflictError as exc:
            if exc.code != "DELIVERY_REPLAYED":
                raise
            seen = await self._keys.delivery(key.id, delivery.fingerprint)
            if seen is None:
                raise
            return await self._replayed(key, seen)
        log.info("hub.delivery", key_id=key.id, job_id=job.id, image=ref)
        self._recorder.record(
            Change(
                "hub.delivery",
                queued.id,
                key.owner,
                SYSTEM,
                component="hub",
                details={
                    "key_id": key.id,
                    "image": ref,
                    "job_id": queued.id,
                    "source": delivery.source,
                },
            )
        )
        return Accepted(queued, replay=False)

    async def _replayed(self, key: WebhookKey, job_id: str) -> Accepted:
        log.info("hub.delivery_replayed", key_id=key.id, job_id=job_id)
        job = await self._jobs.peek(job_id)
        if job is None:
            raise not_found("build", job_id)
        return Accepted(job, replay=True)

    @staticmethod
    async def _throttled(limiter: LoginLimiter, scope: str) -> None:
        wait = await limiter.retry_after(scope)
        if wait is not None:
            raise RateLimitedError(
                "too many webhook deliveries; try again later",
                retry_after=wait,
                details={"retry_after": wait},
            )

    # -- the job -----------------------------------------------------------------------

    async def _redeploy(self, run: JobRun, key: WebhookKey, ref: str) -> None:
        if key.build is not None:
            await self._builds.build_in(run, self._build_from(key.build, ref))
        else:
            await self._pulls.pull_in(run, ref)
        await run.set_status(JobStatus.REDEPLOYING)
        records = await self._containers.using_image(key.owner, ref)
        await run.write(f"Recreating {len(records)} container(s) of {key.owner} using {ref}")
        done: list[dict[str, Any]] = []
        run.job.result = {"image": ref, "image_id": run.job.image_id, "containers": done}
        await run.save()
        for record in records:
            outcome = await self._containers.recreate(record.cuid)
            done.append(asdict(outcome))
            await run.save()
            await run.write(f"{outcome.cuid}: {outcome.outcome}" + _ids(outcome))
            if outcome.outcome in ("recreated", "recreated_stopped", "failed"):
                self._redeployed(run, record, outcome, ref)
        failed = [item for item in done if item["outcome"] == "failed"]
        if failed:
            await run.fail(
                "compose_error",
                "REDEPLOY_FAILED",
                f"{len(failed)} of {len(done)} containers could not be recreated",
                step="recreate",
            )
        await run.write(f"Redeployed {ref}: {len(done)} container(s)")

    def _redeployed(
        self, run: JobRun, record: ContainerRecord, outcome: Recreated, ref: str
    ) -> None:
        self._recorder.record(
            Change(
                "container.redeployed",
                record.cuid,
                record.owner,
                SYSTEM,
                component="hub",
                details={"job_id": run.id, "image": ref, **asdict(outcome)},
            )
        )


def _ids(outcome: Recreated) -> str:
    if outcome.old_image_id is None and outcome.new_image_id is None:
        return ""
    return f" ({outcome.old_image_id} -> {outcome.new_image_id})"

"""The job queue and runner (domain/images/jobs.py) with a fake image engine and the real
store: limits, transitions, cancel, deadline, restarts, logs, and secrets kept out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.domain.access.permissions import Principal
from dockyard.domain.images.builds import BuildConfig, BuildOptions, BuildRequest, BuildService
from dockyard.domain.images.joblogs import JobLogs
from dockyard.domain.images.jobs import JobService, QueueLimits
from dockyard.domain.images.models import Job, JobKind, JobStatus
from dockyard.domain.images.ports import Progress, ProgressKind, RegistryAuth
from dockyard.domain.images.pulls import PullService
from dockyard.domain.recording import Change
from dockyard.errors import NotFoundError, RateLimitedError, ValidationError
from dockyard.store import Database
from dockyard.store.jobs import SqlJobRepository
from tests.images_fakes import FakeContexts, FakeCredentials, ScriptedImages, line, ok_build, step

ALICE = Principal(username="alice", role="user")
BOB = Principal(username="bob", role="user")
ADMIN = Principal(username="root", role="admin")


@dataclass
class ListRecorder:
    changes: list[Change] = field(default_factory=list)

    def record(self, change: Change) -> None:
        self.changes.append(change)

    def actions(self, resource: str) -> list[str]:
        return [c.action for c in self.changes if c.resource == resource]


@dataclass
class World:
    db: Database
    tmp: Path
    images: ScriptedImages
    contexts: FakeContexts
    recorder: ListRecorder
    jobs: JobService
    builds: BuildService
    pulls: PullService

    def restart(self, **limits: float) -> World:
        """Another process on the same store and folder."""
        return make_world(self.db, self.tmp, **limits)

    async def build(
        self, principal: Principal = ALICE, *, local: bool = True, **options: object
    ) -> Job:
        opts = BuildOptions(**{"tags": ("me/app:1",), **options})  # type: ignore[arg-type]
        request = BuildRequest("FROM x", opts, {"type": "dockerfile"}, local)
        return await self.builds.submit(principal, request)


def make_world(db: Database, tmp: Path, **limits: float) -> World:
    images = ScriptedImages()
    contexts = FakeContexts(tmp / "contexts")
    recorder = ListRecorder()
    repo = SqlJobRepository(db)
    logs = JobLogs(tmp / "jobs", int(limits.pop("log_max", 1024 * 1024)), follow_max=4)
    jobs = JobService(repo, logs, QueueLimits(**limits), recorder=recorder)  # type: ignore[arg-type]
    creds = FakeCredentials()
    builds = BuildService(jobs, images, contexts, creds, BuildConfig(network="dockyard-build"))
    pulls = PullService(jobs, images, creds, recorder=recorder)
    return World(db, tmp, images, contexts, recorder, jobs, builds, pulls)


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    w = make_world(db, tmp_path)
    yield w
    await w.jobs.stop(2.0)


async def ended(w: World, job: Job, principal: Principal = ALICE) -> Job:
    await w.jobs.wait(job.id)
    return await w.jobs.get(principal, job.id)


async def log_of(w: World, job: Job, principal: Principal = ALICE, follow: bool = False) -> str:
    stream = await w.jobs.open_log(principal, job.id, follow=follow)
    return b"".join([chunk async for chunk in stream]).decode()


async def test_a_build_runs_its_steps_and_succeeds(world: World) -> None:
    job = await world.build(build_args={"V": "1"}, target="final", no_cache=True)
    assert job.status is JobStatus.QUEUED and job.kind is JobKind.BUILD
    done = await ended(world, job)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (done.step, done.total_steps) == (2, 2)
    assert done.image_id == "sha256:" + "ab" * 32
    assert done.started_at and done.finished_at and done.duration is not None
    spec = world.images.builds[0]
    assert spec.network_mode == "dockyard-build" and spec.target == "final" and spec.no_cache
    assert spec.build_args == {"V": "1"} and spec.tags == ("me/app:1",)
    text = await log_of(world, job)
    assert "Step 2/2 : RUN echo hi\nhi\n" in text and "Built sha256:" in text
    assert world.recorder.actions(job.id) == ["build.queued", "build.started", "build.succeeded"]
    assert world.contexts.discarded == [job.id]  # the context goes when the job ends
    assert world.images.closed == 1


async def test_a_failing_step_fails_the_job_with_that_step(world: World) -> None:
    world.images.build_script = [
        step(1, 2, "FROM dockyard-test/busybox:latest"),
        step(2, 2, "RUN false"),
        Progress(
            ProgressKind.ERROR, text="The command '/bin/sh -c false' returned a non-zero code: 1"
        ),
    ]
    done = await ended(world, await world.build())
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.kind, done.error.code) == ("engine_error", "BUILD_FAILED")
    assert done.error.step == "Step 2/2 : RUN false"
    assert "returned a non-zero code" in await log_of(world, done)
    assert world.recorder.actions(done.id)[-1] == "build.failed"


async def test_the_queue_runs_a_few_at_once_and_refuses_past_its_limits(
    db: Database, tmp_path: Path
) -> None:
    w = make_world(db, tmp_path, max_running=1, max_queued=1, per_account=2)
    gate = asyncio.Event()
    w.images.build_script = [gate, *ok_build()]
    try:
        first = await w.build()
        second = await w.build()
        await w.images.started.wait()
        assert (await w.jobs.get(ALICE, first.id)).status is JobStatus.BUILDING
        assert (await w.jobs.get(ALICE, second.id)).status is JobStatus.QUEUED
        with pytest.raises(RateLimitedError) as mine:
            await w.build()
        assert mine.value.code == "TOO_MANY_JOBS" and mine.value.retry_after
        with pytest.raises(RateLimitedError) as full:
            await w.build(BOB)
        assert full.value.code == "QUEUE_FULL" and full.value.retry_after
        assert w.contexts.prepared and len(w.contexts.prepared) == 2  # nothing made for those
        gate.set()
        assert (await ended(w, first)).status is JobStatus.SUCCEEDED
        assert (await ended(w, second)).status is JobStatus.SUCCEEDED
        await w.build(BOB)  # room again
    finally:
        gate.set()
        await w.jobs.stop(2.0)


async def test_cancel_a_queued_job_at_once_and_a_running_one_closes_its_stream(
    db: Database, tmp_path: Path
) -> None:
    w = make_world(db, tmp_path, max_running=1)
    hold = asyncio.Event()  # never set: the build runs until cancelled
    w.images.build_script = [step(1, 1, "RUN sleep 60"), hold]
    try:
        running = await w.build()
        queued = await w.build()
        await w.images.started.wait()
        cancelled = await w.jobs.cancel(ALICE, queued.id)
        assert cancelled.status is JobStatus.CANCELLED and cancelled.started_at is None
        assert len(w.images.builds) == 1  # the queued one never reached the engine
        stopped = await w.jobs.cancel(ALICE, running.id)
        assert stopped.status is JobStatus.CANCELLED and stopped.finished_at is not None
        assert w.images.closed == 1  # the engine stream was closed: the build stops there
        assert "Cancelled." in await log_of(w, running)
        assert w.recorder.actions(running.id)[-1] == "build.cancelled"
        assert sorted(w.contexts.discarded) == sorted([running.id, queued.id])
        with pytest.raises(NotFoundError):
            await w.jobs.cancel(BOB, running.id)  # another's job is not there for bob
        assert (await w.jobs.cancel(ADMIN, running.id)).status is JobStatus.CANCELLED
    finally:
        await w.jobs.stop(2.0)


async def test_the_deadline_fails_the_job_and_closes_the_stream(
    db: Database, tmp_path: Path
) -> None:
    # The fake engine gives its step at once, then never ends; the deadline leaves the job
    # room to record that step even when the store is slow (a loaded CI's PostgreSQL).
    w = make_world(db, tmp_path, timeout=2.0)
    w.images.build_script = [step(1, 1, "RUN sleep 60"), asyncio.Event()]
    done = await ended(w, await w.build())
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.kind, done.error.code) == ("timeout", "BUILD_TIMEOUT")
    assert done.error.step == "Step 1/1 : RUN sleep 60"
    assert w.images.closed == 1
    assert "deadline" in await log_of(w, done)


async def test_jobs_left_by_another_process_end_interrupted_and_stop_interrupts_its_own(
    db: Database, tmp_path: Path
) -> None:
    first = make_world(db, tmp_path)
    # What a killed process leaves behind: a row still `building`, of another instance.
    job = Job(id=JobService.new_id(), kind=JobKind.BUILD, owner="alice", instance="dead")
    job.status = JobStatus.BUILDING
    await SqlJobRepository(db).insert(job)
    second = first.restart()
    assert await second.jobs.recover() == 1
    seen = await second.jobs.get(ALICE, job.id)
    assert seen.status is JobStatus.FAILED and seen.error and seen.error.code == "interrupted"
    assert "Interrupted" in await log_of(second, seen)
    assert await second.jobs.recover() == 0
    # A clean stop marks the jobs it runs failed: interrupted too.
    second.images.build_script = [step(1, 1, "RUN sleep 60"), asyncio.Event()]
    running = await second.build()
    await second.images.started.wait()
    assert await second.jobs.stop(2.0) == 1
    after = await second.restart().jobs.get(ALICE, running.id)
    assert after.status is JobStatus.FAILED and after.error and after.error.code == "interrupted"
    with pytest.raises(RateLimitedError):
        await second.build()  # a stopping service takes no new job


async def test_a_late_follower_reads_the_log_from_its_first_line_until_the_end(
    world: World,
) -> None:
    gate = asyncio.Event()
    world.images.build_script = [line("first"), line("second"), gate, line("third"), *ok_build()]
    job = await world.build()
    await world.images.started.wait()
    stream = await world.jobs.open_log(ALICE, job.id, follow=True)
    received = b""
    break_seen = False
    async for chunk in stream:
        received += chunk
        if b"second" in received:
            break_seen = True
            gate.set()
    assert break_seen
    text = received.decode()
    assert text.index("first") < text.index("second") < text.index("third")
    assert text.rstrip().endswith("tagged me/app:1")  # the stream ended with the job
    assert (await world.jobs.get(ALICE, job.id)).status is JobStatus.SUCCEEDED


async def test_the_log_keeps_its_head_and_says_where_it_was_cut(
    db: Database, tmp_path: Path
) -> None:
    w = make_world(db, tmp_path, log_max=1024)
    w.images.build_script = [line(f"line {i:04d} " + "x" * 40) for i in range(100)] + ok_build()
    done = await ended(w, await w.build())
    text = await log_of(w, done)
    assert text.startswith("line 0000")
    assert "[log truncated: it is longer than 1024 bytes]" in text
    assert len(text.encode()) < 1024 + 100
    assert done.status is JobStatus.SUCCEEDED


async def test_secrets_never_reach_the_stored_spec_the_log_or_the_events(
    db: Database, tmp_path: Path
) -> None:
    w = make_world(db, tmp_path)
    secret, password = "s3cr3t-token-value", "registry-password-123"
    w.images.build_script = [line(f"echo {secret}"), *ok_build()]
    w.images.push_script = [
        Progress(ProgressKind.ERROR, text="unauthorized: authentication required")
    ]
    auth = RegistryAuth("127.0.0.1:5000", "bob", password)
    job = await w.build(build_args={"TOKEN": secret}, push=True, auth=auth)
    done = await ended(w, job)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.kind, done.error.code) == ("auth_error", "REGISTRY_AUTH_FAILED")
    assert done.spec["build_args"] == ["TOKEN"]
    assert done.spec["auth"] == {"server": "127.0.0.1:5000", "username": "bob"}
    stored = await SqlJobRepository(db).get(job.id)
    everything = json.dumps(stored.__dict__, default=str) + await log_of(w, done)
    everything += repr(w.recorder.changes)
    assert secret not in everything and password not in everything
    assert "echo ***" in await log_of(w, done)
    assert w.images.pushes == [("me/app:1", auth)]


async def test_a_push_records_the_digest(world: World) -> None:
    done = await ended(world, await world.build(push=True, tags=("127.0.0.1:5000/me/app:1",)))
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.digest == "sha256:" + "cd" * 32


async def test_a_hostile_local_context_is_refused_before_any_job(world: World) -> None:
    world.contexts.refuse = ValidationError("a path leaves the context", code="UNSAFE_PATH")
    with pytest.raises(ValidationError):
        await world.build()
    page = await world.jobs.page(ALICE, limit=10, cursor=None)
    assert page.items == [] and world.images.builds == []
    assert len(world.contexts.discarded) == 1


async def test_a_remote_source_that_fails_to_prepare_fails_its_job(world: World) -> None:
    world.contexts.refuse = ValidationError("git fetch failed", code="GIT_FAILED")
    done = await ended(world, await world.build(local=False))
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.kind, done.error.code) == ("validation_error", "GIT_FAILED")


async def test_bad_options_are_refused(world: World) -> None:
    for bad in (
        {"tags": ()},
        {"tags": ("Bad Tag",)},
        {"build_args": {"1X": "v"}},
        {"labels": {"dockyard.owner": "me"}},
        {"target": "-x"},
        {"registry": "r1"},
    ):
        with pytest.raises(ValidationError):
            await world.build(**bad)


async def test_lists_are_own_newest_first_with_cursors_and_filters(world: World) -> None:
    mine = [await ended(world, await world.build()) for _ in range(3)]
    theirs = await ended(world, await world.build(BOB), BOB)
    first = await world.jobs.page(ALICE, limit=2, cursor=None)
    assert [j.id for j in first.items] == [mine[2].id, mine[1].id]
    assert first.next_cursor
    second = await world.jobs.page(ALICE, limit=2, cursor=first.next_cursor)
    assert [j.id for j in second.items] == [mine[0].id] and second.next_cursor is None
    everyone = await world.jobs.page(ADMIN, limit=10, cursor=None)
    assert theirs.id in {j.id for j in everyone.items} and len(everyone.items) == 4
    failed = await world.jobs.page(ALICE, statuses=(JobStatus.FAILED,), limit=10, cursor=None)
    assert failed.items == []
    pulls = await world.jobs.page(ALICE, kinds=(JobKind.PULL,), limit=10, cursor=None)
    assert pulls.items == []
    with pytest.raises(NotFoundError):
        await world.jobs.get(ALICE, theirs.id)


async def test_a_pull_is_a_job_with_layer_progress(world: World) -> None:
    job = await world.pulls.submit(ALICE, "127.0.0.1:5000/me/base")
    assert job.kind is JobKind.PULL and job.tags == ["127.0.0.1:5000/me/base:latest"]
    done = await ended(world, job)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.progress == {"l1": {"status": "Pull complete", "current": 10, "total": 10}}
    assert done.image_id == "sha256:" + "ef" * 32
    assert "image.pulled" in [c.action for c in world.recorder.changes]
    with pytest.raises(ValidationError):
        await world.pulls.submit(ALICE, "bad ref!")

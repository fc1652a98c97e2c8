"""Build and pull bodies (SPEC §6): the build manifest, the pull request, the job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso, iso_or_none
from dockyard.domain.images.builds import BuildOptions, BuildRequest
from dockyard.domain.images.contexts import (
    ArchiveSource,
    DockerfileSource,
    GitSource,
    TarUrlSource,
    github_source,
)
from dockyard.domain.images.models import Job, JobKind, JobStatus
from dockyard.domain.images.ports import RegistryAuth
from dockyard.domain.images.refs import registry_of, without_userinfo
from dockyard.errors import ValidationError

Short = Annotated[str, Field(min_length=1, max_length=255)]
Path_ = Annotated[str, Field(min_length=1, max_length=1024)]
Url = Annotated[str, Field(min_length=1, max_length=4096)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AuthIn(_In):
    """Registry credentials used for this request only: never stored, never shown."""

    server: Short = Field(description="e.g. registry.example.com or 127.0.0.1:5000")
    username: Short
    password: SecretStr = Field(min_length=1, max_length=8192, description="or a token")

    def value(self) -> RegistryAuth:
        return RegistryAuth(self.server, self.username, self.password.get_secret_value())


class GitIn(_In):
    url: Url = Field(description="https (http only to hosts an admin allows)")
    ref: Short | None = Field(default=None, description="branch, tag or commit")
    subdir: Path_ | None = Field(default=None, description="the context's folder")
    dockerfile: Path_ | None = Field(default=None, description="path inside the context")


class BuildIn(_In):
    """A build: exactly one source, then options. As JSON, the ``Json`` part of a
    multipart upload (beside ``TarFile``), or the ``manifest`` of a raw archive body."""

    dockerfile: str | None = Field(
        default=None, max_length=1024 * 1024, description="Dockerfile text (a source)"
    )
    tar_url: Url | None = Field(default=None, description="a tarball of the context (a source)")
    git: GitIn | None = Field(default=None, description="a git repository (a source)")
    github_username: Short | None = None
    github_reponame: Short | None = None
    github_tag: Short | None = None
    tags: list[Short] | None = Field(default=None, max_length=16, description="image names")
    image_name: Short | None = Field(default=None, description="seed 002: one tag")
    build_args: dict[str, str] = Field(default_factory=dict)
    target: Short | None = Field(default=None, description="the stage to build")
    labels: dict[str, str] = Field(default_factory=dict)
    no_cache: StrictBool = False
    pull: StrictBool = Field(default=False, description="pull newer base images first")
    dockerfile_path: Path_ | None = Field(
        default=None, description="the Dockerfile's path inside the context (Dockerfile)"
    )
    push: StrictBool | None = Field(default=None, description="push every tag when built")
    registry: Short | None = Field(default=None, description="a stored registry's id")
    auth: AuthIn | None = None
    username: Short | None = Field(default=None, description="seed 002: push credentials")
    password: SecretStr | None = Field(default=None, max_length=8192)
    email: Short | None = Field(default=None, description="seed 002: accepted, unused")

    def to_request(self, upload: Path | None = None) -> BuildRequest:
        source, described, local = self._source(upload)
        return BuildRequest(source, self._options(), described, local)

    def _source(self, upload: Path | None) -> tuple[Any, dict[str, Any], bool]:
        github = any((self.github_username, self.github_reponame, self.github_tag))
        given = [
            name
            for name, present in (
                ("dockerfile", self.dockerfile is not None),
                ("tar_url", self.tar_url is not None),
                ("git", self.git is not None),
                ("github_*", github),
                ("TarFile", upload is not None and self.dockerfile is None),
            )
            if present
        ]
        if len(given) != 1:
            raise ValidationError(
                "give exactly one source: dockerfile, tar_url, git, github_username/"
                "github_reponame, or an uploaded context",
                code="ONE_SOURCE_REQUIRED",
                details={"field": "source", "provided": given},
            )
        if self.dockerfile is not None:
            return DockerfileSource(self.dockerfile, upload), _kind("dockerfile", upload), True
        if upload is not None:
            return ArchiveSource(upload), {"type": "upload"}, True
        if self.tar_url is not None:
            return TarUrlSource(self.tar_url), _url("tar_url", self.tar_url), False
        if self.git is not None:
            git = self.git
            described = {**_url("git", git.url), "ref": git.ref, "subdir": git.subdir}
            return GitSource(git.url, git.ref, git.subdir), described, False
        if not (self.github_username and self.github_reponame):
            raise ValidationError(
                "github_username and github_reponame go together",
                code="INVALID_FIELD",
                details={"field": "github_reponame"},
            )
        described = {
            "type": "github",
            "username": self.github_username,
            "reponame": self.github_reponame,
            "tag": self.github_tag,
        }
        source = github_source(self.github_username, self.github_reponame, self.github_tag)
        return source, described, False

    def _options(self) -> BuildOptions:
        tags = [*(self.tags or []), *([self.image_name] if self.image_name else [])]
        auth = self.auth.value() if self.auth is not None else None
        seed = self.username is not None or self.password is not None
        if seed:
            if auth is not None or not (self.username and self.password):
                raise ValidationError(
                    "push credentials: username with password, or auth, not both",
                    code="INVALID_FIELD",
                    details={"field": "auth"},
                )
            server = registry_of(tags[0]) if tags else "docker.io"
            auth = RegistryAuth(server, self.username, self.password.get_secret_value())
        dockerfile = self.git.dockerfile if self.git and self.git.dockerfile else None
        return BuildOptions(
            tags=tuple(dict.fromkeys(tags)),
            build_args=dict(self.build_args),
            target=self.target,
            labels=dict(self.labels),
            no_cache=self.no_cache,
            pull=self.pull,
            dockerfile=dockerfile or self.dockerfile_path,
            push=self.push if self.push is not None else seed,
            registry=self.registry,
            auth=auth,
        )


def _kind(name: str, upload: Path | None) -> dict[str, Any]:
    return {"type": name, "extra_files": upload is not None}


def _url(name: str, url: str) -> dict[str, Any]:
    return {"type": name, "url": without_userinfo(url)}


class PullIn(_In):
    image: str = Field(min_length=1, max_length=512, description="e.g. registry:5000/me/app:1")
    registry: Short | None = Field(default=None, description="a stored registry's id")
    auth: AuthIn | None = None


class JobErrorOut(Out):
    kind: str = Field(description="an error kind of SPEC §9, e.g. engine_error, auth_error")
    code: str = Field(description="e.g. BUILD_FAILED, BUILD_TIMEOUT, interrupted")
    message: str
    step: str | None = Field(description='the step that failed, e.g. "Step 3/4 : RUN false"')


class JobOut(Out):
    """A build, pull or hub redeploy job."""

    job_id: str
    kind: JobKind
    status: JobStatus
    owner: str
    created_at: Instant
    started_at: Instant | None
    finished_at: Instant | None
    duration: float | None = Field(description="seconds since it started, or that it ran")
    step: int | None = Field(description="the build step running or last run")
    total_steps: int | None
    image_id: str | None
    digest: str | None = Field(description="of the push (builds) or the pulled image")
    tags: list[str]
    progress: dict[str, dict[str, Any]] = Field(
        description="per layer of a pull or push: status, current and total bytes"
    )
    error: JobErrorOut | None
    spec: dict[str, Any] = Field(description="the request, without any secret")
    result: dict[str, Any] | None = Field(
        default=None,
        description="a redeploy's: image, image_id and containers (cuid, outcome,"
        " old_image_id, new_image_id, status, error)",
    )

    @classmethod
    def from_job(cls, job: Job) -> JobOut:
        error = job.error
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            owner=job.owner,
            created_at=iso(job.created_at),
            started_at=iso_or_none(job.started_at),
            finished_at=iso_or_none(job.finished_at),
            duration=round(job.duration, 3) if job.duration is not None else None,
            step=job.step,
            total_steps=job.total_steps,
            image_id=job.image_id,
            digest=job.digest,
            tags=job.tags,
            progress=job.progress,
            error=JobErrorOut(**error.__dict__) if error is not None else None,
            spec=job.spec,
            result=job.result,
        )


class JobAccepted(JobOut):
    """A job just queued (the 202 of ``POST /builds`` and ``POST /images/pull``)."""

    job_identifier: str = Field(
        serialization_alias="JobIdentifier",
        description="the job_id again, under seed 002's name (docker-builder's clients)",
    )

    @classmethod
    def accepted(cls, job: Job) -> JobAccepted:
        out = JobOut.from_job(job)
        return cls(**out.__dict__, job_identifier=out.job_id)


class JobPage(Out):
    builds: list[JobOut]
    next_cursor: NextCursor

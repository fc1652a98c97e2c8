"""Webhook key and hub delivery bodies (issue 11): the key goes out once, on create."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic import ValidationError as PydanticValidationError

from dockyard.api.schemas.builds import BuildIn, GitIn, Path_, Short, Url
from dockyard.api.schemas.common import Instant, Out, iso
from dockyard.domain.automation.hubkeys import WebhookKey
from dockyard.domain.images.builds import BuildRequest
from dockyard.domain.images.models import Job
from dockyard.errors import invalid_input


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BoundBuildIn(_In):
    """A build run on each delivery instead of a pull: ``POST /builds``'s JSON request
    without secrets (no ``build_args``, no ``auth``) and without tags (it builds the
    key's repository with the delivered tag). A ``push`` uses a stored ``registry`` or
    the owner's stored credentials for the image's registry."""

    dockerfile: str | None = Field(
        default=None, max_length=1024 * 1024, description="Dockerfile text (a source)"
    )
    tar_url: Url | None = Field(default=None, description="a tarball of the context (a source)")
    git: GitIn | None = Field(default=None, description="a git repository (a source)")
    github_username: Short | None = None
    github_reponame: Short | None = None
    github_tag: Short | None = None
    target: Short | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    no_cache: StrictBool = False
    pull: StrictBool = False
    dockerfile_path: Path_ | None = None
    push: StrictBool = False
    registry: Short | None = Field(default=None, description="a stored registry's id")

    def to_request(self, ref: str) -> BuildRequest:
        """The build of ``ref`` this asks for (400 for a bad source or option)."""
        fields = self.model_dump(exclude_none=True)
        try:
            manifest = BuildIn.model_validate({**fields, "tags": [ref]})
        except PydanticValidationError as exc:  # the image is too long to be a build tag
            raise invalid_input(exc.errors()) from None
        request = manifest.to_request()
        request.options.check()
        return request


def bound_build(stored: dict[str, Any], ref: str) -> BuildRequest:
    """A key's stored build (``BoundBuildIn``'s dump) for the delivered tag."""
    return BoundBuildIn.model_validate(stored).to_request(ref)


class CreateWebhookKey(_In):
    image: str = Field(
        min_length=1, max_length=512, description="repo[:tag] it redeploys (tag: latest)"
    )
    build: BoundBuildIn | None = Field(
        default=None, description="build this on each delivery instead of pulling the image"
    )


class WebhookKeyOut(Out):
    id: str
    owner: str
    image: str = Field(description="repository:tag")
    build: dict[str, Any] | None = Field(description="the bound build, if any")
    created_at: Instant

    @classmethod
    def from_key(cls, key: WebhookKey) -> WebhookKeyOut:
        return cls(
            id=key.id,
            owner=key.owner,
            image=key.image,
            build=key.build,
            created_at=iso(key.created_at),
        )


class WebhookKeyCreated(WebhookKeyOut):
    key: str = Field(description="the secret; shown this once only")
    url: str = Field(description="POST deliveries here (Docker Hub's webhook URL)")


class WebhookKeyList(Out):
    webhookkeys: list[WebhookKeyOut]


class HubAccepted(Out):
    """The redeploy job a delivery queued (a replay: the one it queued before)."""

    job_id: str = Field(description="follow it at /builds/{job_id}")
    status: str
    image: str = Field(description="the repository:tag pulled or built")
    replay: bool = Field(description="true: this delivery was received before")

    @classmethod
    def of(cls, job: Job, replay: bool) -> HubAccepted:
        return cls(job_id=job.id, status=job.status.value, image=job.tags[0], replay=replay)

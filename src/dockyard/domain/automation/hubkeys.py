"""``/webhookkeys``: keys that let a registry's webhook redeploy one image (issue 11).

A key is bound to an image repository and tag (``repo[:tag]``, ``latest`` by default)
and to its owner, and optionally to a build (``POST /builds``'s request without secrets):
``POST /hub/webhook/{key}`` (hub.py) then pulls that image, or runs that build, and
recreates the owner's containers that use it. The key is a random secret shown once in
the create answer; only its SHA-256 is stored (like service keys), and a delivery finds
its key by that hash. Keys are managed with ``webhooks:manage``: one's own, admins all.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from dockyard.domain.access.credentials import hash_secret
from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.images.models import Job
from dockyard.domain.images.refs import check_pull_ref, parse_ref
from dockyard.domain.models import utcnow
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import ValidationError

log = structlog.get_logger("dockyard.hub")

KEY_PREFIX = "dyh_"
KEY_SHAPE = re.compile(r"dyh_[A-Za-z0-9_-]{43}\Z")  # token_urlsafe(32)
MAX_KEYS = 100  # per account


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str) -> bool:
    return KEY_SHAPE.match(value) is not None


@dataclass(frozen=True)
class WebhookKey:
    id: str
    owner: str
    key_hash: str = field(repr=False)
    image: str  # repository:tag, as given (the tag defaulted to latest)
    build: dict[str, Any] | None  # the bound build request, secrets never in it
    created_at: datetime = field(default_factory=utcnow)

    @property
    def repository(self) -> str:
        """The image's repository as a pull names it (``127.0.0.1:5000/me/app``)."""
        return parse_ref(self.image).name

    @property
    def tag(self) -> str:
        return parse_ref(self.image).tag or "latest"


class WebhookKeyRepository(Protocol):
    async def insert(self, key: WebhookKey) -> None: ...
    async def get(self, key_id: str) -> WebhookKey | None: ...
    async def by_hash(self, key_hash: str) -> WebhookKey | None: ...
    async def of_owner(self, owner: str | None) -> list[WebhookKey]:
        """Oldest first; ``None``: every owner's."""
        ...

    async def delete(self, key_id: str) -> None:
        """The key and the record of its deliveries."""
        ...

    async def delivery(self, key_id: str, fingerprint: str) -> str | None:
        """The job id of a delivery seen before (None: a new one)."""
        ...

    async def insert_with_job(self, job: Job, key_id: str, fingerprint: str) -> None:
        """The job and its delivery, in one transaction; a delivery seen before is
        ``ConflictError`` ``DELIVERY_REPLAYED`` and stores nothing."""
        ...


class WebhookKeyService:
    """Create, list and delete webhook keys."""

    def __init__(
        self, repo: WebhookKeyRepository, base_url: str, *, recorder: Recorder | None = None
    ) -> None:
        self._repo = repo
        self.base_url = base_url.rstrip("/")
        self._recorder = recorder or NullRecorder()

    def url(self, secret: str) -> str:
        """Where a registry's webhook posts (shown once, with the key)."""
        return f"{self.base_url}/hub/webhook/{secret}"

    async def create(
        self, principal: Principal, image: str, build: dict[str, Any] | None = None
    ) -> tuple[str, WebhookKey]:
        """A new key for ``image`` (``build``: a checked, secret-free build request);
        the secret is returned this once."""
        principal.require(Permission.WEBHOOKS_MANAGE)
        ref = check_pull_ref(image)
        if parse_ref(ref).digest is not None:
            raise ValidationError(
                "a webhook key names a repository and tag, not a digest",
                code="INVALID_IMAGE_REF",
                details={"field": "image", "provided": image[:200]},
            )
        if len(await self._repo.of_owner(principal.username)) >= MAX_KEYS:
            raise ValidationError(
                f"an account may have at most {MAX_KEYS} webhook keys",
                code="TOO_MANY_KEYS",
                details={"field": "image", "limit": MAX_KEYS},
            )
        secret = new_key()
        key = WebhookKey(
            id=uuid.uuid4().hex,
            owner=principal.username,
            key_hash=hash_secret(secret),
            image=ref,
            build=build,
        )
        await self._repo.insert(key)
        log.info("webhookkey.created", key_id=key.id, owner=key.owner, image=ref)
        self._record(principal, "webhookkey.created", key, image=ref, build=build is not None)
        return secret, key

    async def visible(self, principal: Principal, owner: str | None = None) -> list[WebhookKey]:
        """One's own keys; an admin's ``owner`` filter (None: everyone's)."""
        principal.require(Permission.WEBHOOKS_MANAGE)
        if not principal.is_admin:
            owner = principal.username
        return await self._repo.of_owner(owner)

    async def delete(self, principal: Principal, key_id: str) -> None:
        principal.require(Permission.WEBHOOKS_MANAGE)
        key = await self._repo.get(key_id) if len(key_id) <= 64 else None
        if key is None or not principal.sees(key.owner):
            raise not_found("webhookkey", key_id[:64])
        await self._repo.delete(key.id)
        log.info("webhookkey.deleted", key_id=key.id, owner=key.owner, by=principal.username)
        self._record(principal, "webhookkey.deleted", key)

    def _record(self, principal: Principal, action: str, key: WebhookKey, **details: Any) -> None:
        self._recorder.record(
            Change(action, key.id, key.owner, principal.username, details=details)
        )

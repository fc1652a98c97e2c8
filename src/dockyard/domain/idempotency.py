"""``Idempotency-Key`` on the POSTs that create (SPEC §4): a retry gets the first answer.

A key belongs to the account that sent it. The first request with a key claims it
(``pending``); its answer is kept (``done``) unless it was a 5xx, which frees the key so
that a retry runs again (nothing was made: a failed create removes what it began).
The same key with the same route and body answers the kept answer again, also after a
restart; with another body or route it is 422. While the first is still running, a retry
is 409 ``IDEMPOTENCY_IN_PROGRESS``; a first request that a crash of the service cut off is
409 ``IDEMPOTENCY_INTERRUPTED`` (its create may have been completed by the reconcile: the
client looks before it tries again with a new key). Keys are kept 24 hours.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from dockyard.domain.models import utcnow
from dockyard.errors import ConflictError, StateError, ValidationError

KEEP = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}\Z")  # printable ASCII, no spaces


@dataclass
class KeptAnswer:
    owner: str
    key: str
    route: str
    body_hash: str
    instance: str
    state: str = "pending"  # pending | done
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None
    created_at: datetime = field(default_factory=utcnow)


class IdempotencyRepository(Protocol):
    async def claim(self, answer: KeptAnswer) -> KeptAnswer | None:
        """Store ``answer`` unless its (owner, key) is taken; the one kept if it is."""
        ...

    async def complete(
        self, owner: str, key: str, status: int, content_type: str | None, body: bytes
    ) -> None: ...
    async def release(self, owner: str, key: str) -> None: ...
    async def purge(self, before: datetime) -> int: ...


@dataclass(frozen=True)
class Claim:
    """This request runs; its answer is to be kept."""

    owner: str
    key: str


class Idempotency:
    def __init__(self, repo: IdempotencyRepository, *, keep: timedelta = KEEP) -> None:
        self._repo = repo
        self._keep = keep
        self.instance = secrets.token_hex(8)  # this process: a pending claim of another died

    async def begin(self, owner: str, key: str, route: str, body: bytes) -> Claim | KeptAnswer:
        """Claim ``key`` for this request, or the answer kept for an earlier one."""
        if not _KEY.match(key):
            raise ValidationError(
                "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
                code="INVALID_IDEMPOTENCY_KEY",
                details={"field": "Idempotency-Key"},
            )
        wanted = KeptAnswer(owner, key, route, _digest(body), self.instance)
        kept = await self._repo.claim(wanted)
        if kept is not None and kept.created_at < utcnow() - self._keep:
            await self._repo.release(owner, key)  # expired, not yet purged
            kept = await self._repo.claim(wanted)
        if kept is None:
            return Claim(owner, key)
        if (kept.route, kept.body_hash) != (route, wanted.body_hash):
            raise StateError(  # 422, SPEC §4
                "this Idempotency-Key was used with another request; use a new key",
                code="IDEMPOTENCY_KEY_REUSED",
                details={"field": "Idempotency-Key"},
            )
        if kept.state == "done":
            return kept
        if kept.instance == self.instance:
            raise ConflictError(
                "a request with this Idempotency-Key is still running; retry shortly",
                code="IDEMPOTENCY_IN_PROGRESS",
            )
        raise ConflictError(
            "the request with this Idempotency-Key was interrupted by a restart of the"
            " service; check whether it took effect, then retry with a new key",
            code="IDEMPOTENCY_INTERRUPTED",
        )

    async def finish(
        self, claim: Claim, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Keep the answer; a 5xx frees the key instead (a retry runs again)."""
        if status >= 500:
            await self._repo.release(claim.owner, claim.key)
        else:
            await self._repo.complete(claim.owner, claim.key, status, content_type, body)

    async def purge(self) -> int:
        return await self._repo.purge(utcnow() - self._keep)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()

"""Credentials besides passwords: service keys, bearer tokens and WebSocket tickets.

- A **service key** (``dyk_…``, 256 random bits) acts as its owner, optionally with a
  narrower role. It is shown once; the store keeps its SHA-256 (a fast hash is enough for
  a secret of that entropy), so a request costs one hash and one cached lookup.
- A **bearer token** (``dyt.<id>.<expiry>.<mac>``) is HMAC-SHA256-signed with the secret
  generated on first start in the data folder. The signature and the expiry are checked
  without the store; the id is looked up (and cached) so that a token can be revoked.
  A token is read by this service only, so a JWT library would add nothing but choices
  (algorithms, headers) that have to be refused.
- A **WebSocket ticket** (``dyw_…``) is single use, lives 30 s and only in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.models import utcnow

KEY_PREFIX = "dyk_"
TOKEN_PREFIX = "dyt."  # noqa: S105 - a prefix, not a secret
TICKET_PREFIX = "dyw_"
TICKET_TTL = 30.0
_TICKETS_MAX = 10_000


def new_id() -> str:
    return secrets.token_hex(8)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


class ServiceKey(BaseModel):
    id: str = Field(default_factory=new_id)
    owner: str
    key_hash: str = Field(repr=False)
    prefix: str  # the first characters, so that a user can tell keys apart
    description: str = ""
    role: str | None = None  # a narrower role; None: the owner's own
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


class IssuedToken(BaseModel):
    id: str = Field(default_factory=lambda: secrets.token_hex(12))
    owner: str
    scope: frozenset[Permission] | None = None  # None: the owner's role, unnarrowed
    key_id: str | None = None  # issued through this service key (revoked with it)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class ServiceKeyRepository(Protocol):
    async def insert(self, key: ServiceKey) -> None: ...
    async def by_hash(self, key_hash: str) -> ServiceKey | None: ...
    async def get(self, key_id: str) -> ServiceKey | None: ...
    async def of_owner(self, owner: str | None) -> list[ServiceKey]: ...
    async def delete(self, key_id: str) -> None: ...
    async def touch(self, key_id: str, when: datetime) -> None: ...
    async def using_role(self, role: str) -> list[ServiceKey]: ...


class TokenRepository(Protocol):
    async def insert(self, token: IssuedToken) -> None: ...
    async def get(self, token_id: str) -> IssuedToken | None: ...
    async def active_of(self, owner: str, now: datetime) -> list[IssuedToken]: ...
    async def revoke(
        self,
        when: datetime,
        *,
        token_id: str | None = None,
        owner: str | None = None,
        key_id: str | None = None,
    ) -> int: ...
    async def purge_expired(self, before: datetime) -> int: ...


@dataclass(frozen=True)
class TokenClaims:
    token_id: str
    expires_at: int


class TokenSigner:
    """Signs and checks bearer tokens with the service's own secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must have at least 32 bytes")
        self._secret = secret

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, token_id: str, expires_at: int) -> str:
        body = f"{TOKEN_PREFIX}{token_id}.{expires_at}"
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a token this service signed; None for anything else."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        body, _, mac = token.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        token_id, _, expiry = body[len(TOKEN_PREFIX) :].partition(".")
        try:
            return TokenClaims(token_id, int(expiry))
        except ValueError:
            return None


class TicketBook:
    """Single-use WebSocket tickets, held in memory for ``TICKET_TTL`` seconds."""

    def __init__(self, ttl: float = TICKET_TTL) -> None:
        self.ttl = ttl
        self._tickets: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal) -> str:
        now = time.monotonic()
        if len(self._tickets) >= _TICKETS_MAX:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
            if len(self._tickets) >= _TICKETS_MAX:
                self._tickets.pop(next(iter(self._tickets)))
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        self._tickets[hash_secret(ticket)] = (principal, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        found = self._tickets.pop(hash_secret(ticket), None)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def forget(self, username: str) -> None:
        self._tickets = {k: v for k, v in self._tickets.items() if v[0].username != username}

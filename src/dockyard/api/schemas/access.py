"""Accounts, roles, service keys, tokens and the audit trail."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso, iso_or_none
from dockyard.domain.access.accounts import AccountView
from dockyard.domain.access.audit import AuditEntry
from dockyard.domain.access.credentials import IssuedToken, ServiceKey
from dockyard.domain.access.permissions import Principal
from dockyard.domain.containers.quotas import Quota, Usage

# -- accounts -----------------------------------------------------------------------


class UsageOut(Out):
    """What an account holds now, against its quota."""

    containers: int
    cpus: float
    memory_bytes: int

    @classmethod
    def from_usage(cls, usage: Usage) -> UsageOut:
        return cls(
            containers=usage.containers,
            cpus=round(usage.cpus, 3),
            memory_bytes=usage.memory_bytes,
        )


class QuotaOut(Out):
    """An account's limits; ``null`` is unlimited."""

    max_containers: int | None
    max_cpus: float | None
    max_memory: str | None
    max_upload_bytes: int | None

    @classmethod
    def from_quota(cls, quota: Quota) -> QuotaOut:
        return cls(
            max_containers=quota.max_containers,
            max_cpus=quota.max_cpus,
            max_memory=quota.max_memory,
            max_upload_bytes=quota.max_upload_bytes,
        )


def _account(view: AccountView) -> dict[str, Any]:
    account = view.account
    return {
        "username": account.username,
        "role": str(account.role),
        "created_at": iso(account.created_at),
        "quota": QuotaOut.from_quota(view.quota),
    }


class AccountOut(Out):
    username: str
    role: str = Field(description="a built-in role or a custom role's name")
    created_at: Instant
    quota: QuotaOut

    @classmethod
    def from_view(cls, view: AccountView) -> AccountOut:
        return cls(**_account(view))


class AccountList(Out):
    accounts: list[AccountOut]


class AccountUsageOut(AccountOut):
    """One account with its current usage."""

    usage: UsageOut

    @classmethod
    def from_view(cls, view: AccountView) -> AccountUsageOut:
        return cls(**_account(view), usage=UsageOut.from_usage(view.usage or Usage()))


class MyAccountOut(AccountUsageOut):
    """The caller's account, with the permissions its credential carries."""

    permissions: list[str]

    @classmethod
    def of(cls, view: AccountView, principal: Principal) -> MyAccountOut:
        return cls(
            **_account(view),
            usage=UsageOut.from_usage(view.usage or Usage()),
            permissions=sorted(p.value for p in principal.permissions),
        )


# -- roles ----------------------------------------------------------------------------


class BuiltinRoleOut(Out):
    name: str
    permissions: list[str]
    builtin: Literal[True]


class CustomRoleOut(Out):
    name: str
    permissions: list[str]
    builtin: Literal[False]
    description: str
    created_by: str | None


RoleOut = BuiltinRoleOut | CustomRoleOut


class RoleList(Out):
    roles: list[RoleOut]
    permissions: list[str] = Field(description="every permission there is")


# -- service keys and tokens ------------------------------------------------------------


def _key(key: ServiceKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "owner": key.owner,
        "prefix": key.prefix,
        "description": key.description,
        "role": key.role,
        "created_at": iso(key.created_at),
        "expires_at": iso_or_none(key.expires_at),
        "last_used_at": iso_or_none(key.last_used_at),
    }


class ServiceKeyOut(Out):
    """A key as listed: never the key itself."""

    id: str
    owner: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    description: str
    role: str | None = Field(description="a narrower role; null: the owner's own")
    created_at: Instant
    expires_at: Instant | None
    last_used_at: Instant | None

    @classmethod
    def from_key(cls, key: ServiceKey) -> ServiceKeyOut:
        return cls(**_key(key))


class NewServiceKeyOut(ServiceKeyOut):
    key: str = Field(description="the key; in this answer only, the service keeps its hash")

    @classmethod
    def of(cls, key: ServiceKey, secret: str) -> NewServiceKeyOut:
        return cls(**_key(key), key=secret)


class ServiceKeyList(Out):
    servicekeys: list[ServiceKeyOut]


class TokenOut(Out):
    """A bearer token as listed: never the token itself."""

    id: str
    owner: str
    key_id: str | None = Field(description="issued through this service key")
    scope: list[str] | None = Field(description="narrowed permissions; null: the owner's")
    created_at: Instant
    expires_at: Instant

    @classmethod
    def from_token(cls, token: IssuedToken) -> TokenOut:
        return cls(
            id=token.id,
            owner=token.owner,
            key_id=token.key_id,
            scope=sorted(p.value for p in token.scope) if token.scope is not None else None,
            created_at=iso(token.created_at),
            expires_at=iso(token.expires_at),
        )


class TokenList(Out):
    tokens: list[TokenOut]


class NewTokenOut(Out):
    token: str
    token_type: Literal["bearer"]
    id: str
    expires_at: Instant
    expires_in: int = Field(description="seconds")

    @classmethod
    def of(cls, token: str, issued: IssuedToken) -> NewTokenOut:
        lifetime = (issued.expires_at - issued.created_at).total_seconds()
        return cls(
            token=token,
            token_type="bearer",  # noqa: S106 - the scheme's name
            id=issued.id,
            expires_at=iso(issued.expires_at),
            expires_in=max(0, int(lifetime)),
        )


class TicketOut(Out):
    ticket: str = Field(description="for one WebSocket, as ?ticket=")
    expires_in: int = Field(description="seconds")


class WhoAmI(Out):
    username: str
    role: str
    permissions: list[str]
    credential: str = Field(description="basic, key, token or ticket")

    @classmethod
    def of(cls, principal: Principal) -> WhoAmI:
        return cls(
            username=principal.username,
            role=str(principal.role),
            permissions=sorted(p.value for p in principal.permissions),
            credential=principal.via,
        )


# -- audit ------------------------------------------------------------------------------


class AuditEntryOut(Out):
    id: int
    at: Instant
    user: str
    credential: str = Field(description="basic, key:<id>, token:<id> or ticket")
    method: str
    route: str = Field(description="the route's template, e.g. /containers/{cuid}/start")
    action: str = Field(description="the endpoint's name, e.g. start_container")
    resource: str | None
    request_id: str | None
    status: int
    source: str | None

    @classmethod
    def from_entry(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.seq,
            at=iso(entry.at),
            user=entry.username,
            credential=entry.credential,
            method=entry.method,
            route=entry.route,
            action=entry.action,
            resource=entry.resource,
            request_id=entry.request_id,
            status=entry.status,
            source=entry.source,
        )


class AuditPage(Out):
    entries: list[AuditEntryOut]
    next_cursor: NextCursor

"""Accounts (with quotas), custom roles, service keys and bearer tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from dockyard.domain.access.credentials import IssuedToken, ServiceKey
from dockyard.domain.access.permissions import Permission, parse_permissions
from dockyard.domain.access.roles import CustomRole
from dockyard.domain.containers.quotas import Quota
from dockyard.domain.models import Account, ContainerSpec, Status
from dockyard.store.containers import split_spec
from dockyard.store.database import Database
from dockyard.store.tables import (
    accounts,
    containers,
    registries,
    roles,
    service_keys,
    tokens,
)


class SqlAccountRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, username: str) -> Account | None:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(accounts).where(accounts.c.username == username))
            ).first()
        if row is None:
            return None
        return _account(row)

    async def all(self) -> list[Account]:
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(accounts).order_by(accounts.c.username))).all()
        return [_account(row) for row in rows]

    async def delete(self, username: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(accounts).where(accounts.c.username == username))
            # Its registry credentials go with it (a new account of the same name must
            # not inherit them).
            await conn.execute(delete(registries).where(registries.c.owner == username))

    async def count_role(self, role: str) -> int:
        stmt = select(func.count()).select_from(accounts).where(accounts.c.role == role)
        async with self._db.reading() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def with_role(self, role: str) -> list[str]:
        stmt = select(accounts.c.username).where(accounts.c.role == role)
        async with self._db.reading() as conn:
            return [str(r.username) for r in (await conn.execute(stmt)).all()]

    async def quota(self, username: str) -> Quota:
        return await _quota(self._db, username)

    async def set_quota(self, username: str, quota: Quota) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                update(accounts)
                .where(accounts.c.username == username)
                .values(
                    quota_containers=quota.max_containers,
                    quota_cpus=quota.max_cpus,
                    quota_memory=quota.max_memory,
                    quota_upload_bytes=quota.max_upload_bytes,
                )
            )

    async def insert(self, account: Account) -> None:
        async with self._db.writing() as conn:
            await conn.execute(insert(accounts).values(**account.model_dump()))

    async def save(self, account: Account) -> None:
        values = account.model_dump()
        values.pop("username")
        async with self._db.writing() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.username == account.username).values(**values)
            )

    async def count(self) -> int:
        async with self._db.reading() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
            )


# -- accounts, roles, keys, tokens, audit ----------------------------------------------


def _account(row: Any) -> Account:
    return Account(
        username=row.username,
        role=row.role,
        password_hash=row.password_hash,
        password_changed=row.password_changed,
        created_at=row.created_at,
    )


async def _quota(db: Database, username: str) -> Quota:
    stmt = select(
        accounts.c.quota_containers,
        accounts.c.quota_cpus,
        accounts.c.quota_memory,
        accounts.c.quota_upload_bytes,
    ).where(accounts.c.username == username)
    async with db.reading() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return Quota()
    return Quota(
        max_containers=row.quota_containers,
        max_cpus=row.quota_cpus,
        max_memory=row.quota_memory,
        max_upload_bytes=row.quota_upload_bytes,
    )


class SqlQuotaStore:
    """What ``Quotas`` reads: an account's limits and the specs of its containers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def quota(self, username: str) -> Quota:
        return await _quota(self._db, username)

    async def specs_of(self, owner: str, *, exclude: str | None) -> list[ContainerSpec]:
        stmt = select(containers.c.spec).where(
            containers.c.owner == owner, containers.c.status != Status.FAILED.value
        )
        if exclude is not None:
            stmt = stmt.where(containers.c.cuid != exclude)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        # A container of N replicas counts N times (issue 11, quotas count replicas).
        specs: list[ContainerSpec] = []
        for row in rows:
            spec, replicas, _ = split_spec(row.spec)
            specs += [spec] * replicas
        return specs


class SqlRoleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _values(role: CustomRole) -> dict[str, Any]:
        return {
            "name": role.name,
            "permissions": sorted(p.value for p in role.permissions),
            "description": role.description,
            "created_by": role.created_by,
            "created_at": role.created_at,
        }

    async def all(self) -> list[CustomRole]:
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(roles).order_by(roles.c.name))).all()
        return [
            CustomRole(
                name=row.name,
                # A permission a later version dropped is ignored, never granted.
                permissions=parse_permissions(p for p in row.permissions if _known(p)),
                description=row.description,
                created_by=row.created_by,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def insert(self, role: CustomRole) -> None:
        async with self._db.writing() as conn:
            await conn.execute(insert(roles).values(**self._values(role)))

    async def save(self, role: CustomRole) -> None:
        values = self._values(role)
        values.pop("name")
        async with self._db.writing() as conn:
            await conn.execute(update(roles).where(roles.c.name == role.name).values(**values))

    async def delete(self, name: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(roles).where(roles.c.name == name))


def _known(permission: str) -> bool:
    return permission in Permission._value2member_map_


def _key(row: Any) -> ServiceKey:
    return ServiceKey(
        id=row.id,
        owner=row.owner,
        key_hash=row.key_hash,
        prefix=row.prefix,
        description=row.description,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


class SqlServiceKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, key: ServiceKey) -> None:
        async with self._db.writing() as conn:
            await conn.execute(insert(service_keys).values(**key.model_dump()))

    async def _one(self, where: Any) -> ServiceKey | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(service_keys).where(where))).first()
        return _key(row) if row else None

    async def by_hash(self, key_hash: str) -> ServiceKey | None:
        return await self._one(service_keys.c.key_hash == key_hash)

    async def get(self, key_id: str) -> ServiceKey | None:
        return await self._one(service_keys.c.id == key_id)

    async def of_owner(self, owner: str | None) -> list[ServiceKey]:
        stmt = select(service_keys).order_by(service_keys.c.created_at, service_keys.c.id)
        if owner is not None:
            stmt = stmt.where(service_keys.c.owner == owner)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_key(row) for row in rows]

    async def using_role(self, role: str) -> list[ServiceKey]:
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(select(service_keys).where(service_keys.c.role == role))
            ).all()
        return [_key(row) for row in rows]

    async def delete(self, key_id: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(service_keys).where(service_keys.c.id == key_id))

    async def touch(self, key_id: str, when: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                update(service_keys).where(service_keys.c.id == key_id).values(last_used_at=when)
            )


def _token(row: Any) -> IssuedToken:
    return IssuedToken(
        id=row.id,
        owner=row.owner,
        scope=parse_permissions(p for p in row.scope if _known(p))
        if row.scope is not None
        else None,
        key_id=row.key_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlTokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, token: IssuedToken) -> None:
        values = token.model_dump()
        if token.scope is not None:
            values["scope"] = sorted(p.value for p in token.scope)
        async with self._db.writing() as conn:
            await conn.execute(insert(tokens).values(**values))

    async def get(self, token_id: str) -> IssuedToken | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(tokens).where(tokens.c.id == token_id))).first()
        return _token(row) if row else None

    async def active_of(self, owner: str, now: datetime) -> list[IssuedToken]:
        stmt = (
            select(tokens)
            .where(
                tokens.c.owner == owner, tokens.c.revoked_at.is_(None), tokens.c.expires_at > now
            )
            .order_by(tokens.c.created_at)
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_token(row) for row in rows]

    async def revoke(
        self,
        when: datetime,
        *,
        token_id: str | None = None,
        owner: str | None = None,
        key_id: str | None = None,
    ) -> int:
        stmt = update(tokens).where(tokens.c.revoked_at.is_(None)).values(revoked_at=when)
        if token_id is not None:
            stmt = stmt.where(tokens.c.id == token_id)
        if owner is not None:
            stmt = stmt.where(tokens.c.owner == owner)
        if key_id is not None:
            stmt = stmt.where(tokens.c.key_id == key_id)
        if token_id is None and owner is None and key_id is None:
            raise ValueError("revoke what?")
        async with self._db.writing() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount or 0)

    async def purge_expired(self, before: datetime) -> int:
        async with self._db.writing() as conn:
            result = await conn.execute(delete(tokens).where(tokens.c.expires_at < before))
        return int(result.rowcount or 0)

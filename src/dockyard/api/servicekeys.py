"""``/servicekeys``: keys that act as their owner (Shipyard's ``X-Service-Key``)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.access import NewServiceKeyOut, ServiceKeyList, ServiceKeyOut

router = APIRouter(prefix="/servicekeys", tags=["accounts"])


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=255)
    role: str | None = Field(default=None, description="a narrower role for the key")
    expires_in: StrictFloat | None = Field(default=None, description="seconds until it expires")


class RevokeKey(BaseModel):
    """Shipyard's ``DELETE /servicekeys`` body."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)


@router.get("")
async def list_keys(
    principal: PrincipalDep, services: ServicesDep, owner: str | None = None
) -> ServiceKeyList:
    """The caller's keys (admins: everyone's, or ``owner``'s); never the keys themselves."""
    keys = await services.accounts.list_keys(principal, owner)
    return ServiceKeyList(servicekeys=[ServiceKeyOut.from_key(k) for k in keys])


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_key(
    principal: PrincipalDep, services: ServicesDep, body: CreateKey | None = None
) -> NewServiceKeyOut:
    """A new key; ``key`` is in this answer only, the service keeps its hash."""
    body = body or CreateKey()
    secret, key = await services.accounts.create_key(
        principal, description=body.description, role=body.role, expires_in=body.expires_in
    )
    return NewServiceKeyOut.of(key, secret)


@router.delete("", status_code=204)
async def revoke_key_by_value(
    principal: PrincipalDep, services: ServicesDep, body: RevokeKey = Body()
) -> Response:
    """Revoke a key given by its value (Shipyard style)."""
    await services.accounts.revoke_key(principal, secret=body.key)
    return Response(status_code=204)


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Revoke a key at once (and the tokens issued through it)."""
    await services.accounts.revoke_key(principal, key_id)
    return Response(status_code=204)

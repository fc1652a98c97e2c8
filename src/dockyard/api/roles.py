"""``/roles``: the built-in roles and custom ones (sets of permissions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.access import RoleList, RoleOut
from dockyard.domain.access.permissions import Permission, parse_permissions

router = APIRouter(prefix="/roles", tags=["accounts"])

_ROLE: TypeAdapter[RoleOut] = TypeAdapter(RoleOut)


def _role(role: dict[str, Any]) -> RoleOut:
    return _ROLE.validate_python(role)


class CreateRole(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    permissions: list[str] = Field(max_length=64)
    description: str = Field(default="", max_length=255)


class UpdateRole(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=255)


@router.get("")
async def list_roles(principal: PrincipalDep, services: ServicesDep) -> RoleList:
    """Every role and the permissions it carries, and every permission there is."""
    return RoleList(
        roles=[_role(r) for r in services.accounts.list_roles()],
        permissions=[p.value for p in Permission],
    )


@router.get("/{name}")
async def get_role(name: str, principal: PrincipalDep, services: ServicesDep) -> RoleOut:
    """One role."""
    return _role(services.accounts.get_role(name))


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_role(body: CreateRole, principal: PrincipalDep, services: ServicesDep) -> RoleOut:
    """A custom role; it may carry only permissions the caller holds."""
    return _role(
        await services.accounts.create_role(
            principal, body.name, parse_permissions(body.permissions), body.description
        )
    )


@router.patch("/{name}")
async def update_role(
    name: str, body: UpdateRole, principal: PrincipalDep, services: ServicesDep
) -> RoleOut:
    """Replace a custom role's permissions or description; takes effect at once."""
    permissions = parse_permissions(body.permissions) if body.permissions is not None else None
    return _role(
        await services.accounts.update_role(
            principal, name, permissions=permissions, description=body.description
        )
    )


@router.delete("/{name}", status_code=204)
async def delete_role(name: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Delete a custom role that no account or key holds."""
    await services.accounts.delete_role(principal, name)
    return Response(status_code=204)

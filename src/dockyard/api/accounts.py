"""``/accounts``: list, create, read, change and delete accounts (admins), and the
caller's own account, quota and password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dockyard.api.deps import PrincipalDep, ServicesDep, client_address
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.access import AccountList, AccountOut, AccountUsageOut, MyAccountOut
from dockyard.domain.containers.quotas import Quota

router = APIRouter(prefix="/accounts", tags=["accounts"])


class RoleRef(BaseModel):
    """Shipyard's ``{"name": "user"}``; a plain string works as well."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=64)


def _role(value: str | RoleRef | None) -> str | None:
    return value.name if isinstance(value, RoleRef) else value


class CreateAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: str | RoleRef = "user"
    quota: Quota | None = None


class UpdateAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | RoleRef | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    quota: Quota | None = Field(default=None, description="replaces the whole quota")


class ChangePassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


@router.get("")
async def list_accounts(principal: PrincipalDep, services: ServicesDep) -> AccountList:
    """Every account with its role and quota."""
    views = await services.accounts.list_accounts(principal)
    return AccountList(accounts=[AccountOut.from_view(v) for v in views])


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_account(
    body: CreateAccount, principal: PrincipalDep, services: ServicesDep
) -> AccountOut:
    """Create an account with a role (built-in or custom) and an optional quota."""
    view = await services.accounts.create_account(
        principal, body.username, body.password, _role(body.role) or "user", body.quota
    )
    return AccountOut.from_view(view)


@router.get("/me")
async def my_account(principal: PrincipalDep, services: ServicesDep) -> MyAccountOut:
    """The caller's account, quota and current usage."""
    view = await services.accounts.view(principal, principal.username)
    return MyAccountOut.of(view, principal)


@router.put("/me/password", status_code=204)
async def change_my_password(
    body: ChangePassword, request: Request, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Change the caller's password (the current one is required); revokes its tokens."""
    await services.accounts.change_own_password(
        principal, body.current_password, body.new_password, client_address(request)
    )
    return Response(status_code=204)


@router.get("/{username}")
async def get_account(
    username: str, principal: PrincipalDep, services: ServicesDep
) -> AccountUsageOut:
    """One account with its quota and current usage."""
    return AccountUsageOut.from_view(await services.accounts.view(principal, username))


@router.patch("/{username}")
async def update_account(
    username: str, body: UpdateAccount, principal: PrincipalDep, services: ServicesDep
) -> AccountOut:
    """Change an account's role, password or quota."""
    view = await services.accounts.update_account(
        principal, username, role=_role(body.role), password=body.password, quota=body.quota
    )
    return AccountOut.from_view(view)


@router.delete("/{username}", status_code=204)
async def delete_account(username: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Delete an account that owns no containers; its keys and tokens go with it."""
    await services.accounts.delete_account(principal, username)
    return Response(status_code=204)

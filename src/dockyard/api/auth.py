"""``/auth``: who am I, bearer tokens, WebSocket tickets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from dockyard.api.deps import PrincipalDep, ServicesDep

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: float | None = Field(
        default=None, description="seconds; TOKEN_TTL when omitted, at most TOKEN_MAX_TTL"
    )
    role: str | None = Field(default=None, description="narrow the token to this role")


@router.get("/whoami")
async def whoami(principal: PrincipalDep) -> dict[str, Any]:
    """The authenticated account, its role and effective permissions."""
    return {
        "username": principal.username,
        "role": str(principal.role),
        "permissions": sorted(p.value for p in principal.permissions),
        "credential": principal.via,
    }


@router.post("/token", status_code=201)
async def issue_token(
    principal: PrincipalDep, services: ServicesDep, body: TokenRequest | None = None
) -> dict[str, Any]:
    """A bearer token acting as the caller (never with more), expiring and revocable."""
    body = body or TokenRequest()
    token, issued = await services.accounts.issue_token(
        principal, expires_in=body.expires_in, role=body.role
    )
    expires_at = issued.expires_at
    return {
        "token": token,
        "token_type": "bearer",
        "id": issued.id,
        "expires_at": expires_at.isoformat(),
        "expires_in": max(0, int((expires_at - issued.created_at).total_seconds())),
    }


@router.post("/ws-ticket", status_code=201)
async def issue_ws_ticket(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """A single-use ticket for one WebSocket (``?ticket=``), valid for 30 seconds."""
    ticket = services.auth.issue_ticket(principal)
    return {"ticket": ticket, "expires_in": int(services.auth.tickets.ttl)}


@router.get("/tokens")
async def list_tokens(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The caller's tokens that are neither expired nor revoked (never the tokens)."""
    tokens = await services.accounts.list_tokens(principal)
    return {"tokens": [t.public() for t in tokens]}


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Revoke one token at once."""
    await services.accounts.revoke_token(principal, token_id)
    return Response(status_code=204)

"""``/auth``: who am I, bearer tokens, WebSocket tickets."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.access import NewTokenOut, TicketOut, TokenList, TokenOut, WhoAmI

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: StrictFloat | None = Field(
        default=None, description="seconds; TOKEN_TTL when omitted, at most TOKEN_MAX_TTL"
    )
    role: str | None = Field(default=None, description="narrow the token to this role")


@router.get("/whoami")
async def whoami(principal: PrincipalDep) -> WhoAmI:
    """The authenticated account, its role and effective permissions."""
    return WhoAmI.of(principal)


@router.post("/token", status_code=201, dependencies=[IDEMPOTENT])
async def issue_token(
    principal: PrincipalDep, services: ServicesDep, body: TokenRequest | None = None
) -> NewTokenOut:
    """A bearer token acting as the caller (never with more), expiring and revocable."""
    body = body or TokenRequest()
    token, issued = await services.accounts.issue_token(
        principal, expires_in=body.expires_in, role=body.role
    )
    return NewTokenOut.of(token, issued)


@router.post("/ws-ticket", status_code=201)
async def issue_ws_ticket(principal: PrincipalDep, services: ServicesDep) -> TicketOut:
    """A single-use ticket for one WebSocket (``?ticket=``), valid for 30 seconds."""
    ticket = services.auth.issue_ticket(principal)
    return TicketOut(ticket=ticket, expires_in=int(services.auth.tickets.ttl))


@router.get("/tokens")
async def list_tokens(principal: PrincipalDep, services: ServicesDep) -> TokenList:
    """The caller's tokens that are neither expired nor revoked (never the tokens)."""
    tokens = await services.accounts.list_tokens(principal)
    return TokenList(tokens=[TokenOut.from_token(t) for t in tokens])


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Revoke one token at once."""
    await services.accounts.revoke_token(principal, token_id)
    return Response(status_code=204)

"""Who am I: the cheapest authenticated request (clients use it to check credentials)."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard.api.deps import PrincipalDep

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/whoami")
async def whoami(principal: PrincipalDep) -> dict[str, str]:
    """The authenticated account and its role."""
    return {"username": principal.username, "role": principal.role.value}

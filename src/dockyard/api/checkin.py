"""``POST /containers/{cuid}/check-in``: "this container is in use" (issue 11).

Two callers: the owner (any credential with ``containers:control`` on the container),
and the workload itself with its own check-in token (``Authorization: Bearer``, from
``DOCKYARD_CHECKIN_TOKEN`` in its environment). The token is recognised here, on this
route only: the authenticator knows nothing of it, so everywhere else it is an invalid
bearer token (401), and on another container's check-in it does not match (401).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from dockyard.api.deps import ServicesDep, get_principal
from dockyard.api.schemas.common import iso, iso_or_none
from dockyard.api.schemas.containers import CheckInOut
from dockyard.domain.automation.checkin import is_checkin_token
from dockyard.domain.models import ContainerRecord

router = APIRouter(prefix="/containers", tags=["containers"])


def _token(request: Request) -> str | None:
    """The check-in token of the request, if that is its (only) credential."""
    if request.headers.get("x-service-key") is not None:
        return None
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value.strip()
    return token if scheme.lower() == "bearer" and is_checkin_token(token) else None


@router.post("/{cuid}/check-in")
async def check_in(cuid: str, request: Request, services: ServicesDep) -> CheckInOut:
    """Mark the container as in use (puts its idle stop off)."""
    token = _token(request)
    if token is not None:
        record = await services.containers.check_in_with_token(cuid, token)
        request.state.user = record.owner  # the audit: on the owner's behalf, by the token
        request.state.credential = "checkin"
    else:
        principal = await get_principal(request)
        record = await services.containers.check_in(principal, cuid)
    return _out(record)


def _out(record: ContainerRecord) -> CheckInOut:
    assert record.last_activity_at is not None  # a check-in has just set it
    stop_at = None
    if record.idle_timeout is not None:
        stop_at = record.last_activity_at + timedelta(seconds=record.idle_timeout)
    return CheckInOut(
        cuid=record.cuid,
        last_activity_at=iso(record.last_activity_at),
        idle_timeout=record.idle_timeout,
        idle_stop_at=iso_or_none(stop_at),
        expires_at=iso_or_none(record.expires_at),
    )

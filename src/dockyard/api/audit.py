"""``GET /audit``: the trail of accepted changes (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from dockyard.api.deps import PageParams, PrincipalDep, ServicesDep, paged
from dockyard.api.schemas.access import AuditEntryOut, AuditPage
from dockyard.domain.access.audit import MAX_PAGE
from dockyard.errors import ValidationError

router = APIRouter(tags=["accounts"])
# An ISO 8601 time with its zone, parsed here: pydantic's datetime also takes a number as
# unix seconds ("until=0.5"), which the documented format does not allow.
_DATE_TIME = {"format": "date-time"}


@router.get("/audit")
async def list_audit(
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=50, maximum=MAX_PAGE)],
    user: str | None = None,
    action: str | None = Query(default=None, description="e.g. start_container"),
    resource: str | None = Query(default=None, description="a cuid, account, key id or role"),
    since: str | None = Query(
        default=None, description="ISO 8601, inclusive", json_schema_extra=_DATE_TIME
    ),
    until: str | None = Query(
        default=None, description="ISO 8601, exclusive", json_schema_extra=_DATE_TIME
    ),
) -> AuditPage:
    """Audit entries, newest first, with cursor pagination."""
    page = await services.audit.page(
        principal,
        username=user,
        action=action,
        resource=resource,
        since=_instant("since", since),
        until=_instant("until", until),
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return AuditPage(
        entries=[AuditEntryOut.from_entry(e) for e in page.items], next_cursor=page.next_cursor
    )


def _instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValidationError(
            f"{name} must be an ISO 8601 time with a time zone (e.g. 2024-05-01T12:00:00Z)",
            code="INVALID_FIELD",
            details={"field": name, "provided": value[:100]},
        )
    return when

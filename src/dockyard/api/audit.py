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


@router.get("/audit")
async def list_audit(
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=50, maximum=MAX_PAGE)],
    user: str | None = None,
    action: str | None = Query(default=None, description="e.g. start_container"),
    resource: str | None = Query(default=None, description="a cuid, account, key id or role"),
    since: datetime | None = Query(default=None, description="ISO 8601, inclusive"),
    until: datetime | None = Query(default=None, description="ISO 8601, exclusive"),
) -> AuditPage:
    """Audit entries, newest first, with cursor pagination."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(
                f"{name} needs a time zone (e.g. 2024-05-01T12:00:00Z)",
                code="INVALID_FIELD",
                details={"field": name, "provided": value.isoformat()},
            )
    page = await services.audit.page(
        principal,
        username=user,
        action=action,
        resource=resource,
        since=since,
        until=until,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return AuditPage(
        entries=[AuditEntryOut.from_entry(e) for e in page.items], next_cursor=page.next_cursor
    )

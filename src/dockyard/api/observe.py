"""Observation routes (SPEC §4, §7): a container's logs and metrics, and ``/events``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from dockyard.api.deps import PageParams, PrincipalDep, ServicesDep, paged
from dockyard.api.schemas.observe import EventOut, EventPage, MetricsOut
from dockyard.domain.observe.events import MAX_PAGE, Event, event_filter
from dockyard.domain.observe.logs import log_query
from dockyard.domain.observe.streams import LeasedStream
from dockyard.errors import ValidationError

router = APIRouter(tags=["observe"])

# Proxies must not buffer or cache a stream that is read as it comes.
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get(
    "/containers/{cuid}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def container_logs(
    cuid: str,
    principal: PrincipalDep,
    services: ServicesDep,
    follow: bool = False,
    tail: str | None = Query(default=None, description="a line count, or all (default)"),
    since: str | None = Query(default=None, description="unix seconds, ISO 8601, or 10m"),
    until: str | None = Query(default=None, description="unix seconds, ISO 8601, or 10m"),
    timestamps: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    replica: int = Query(default=1, ge=1, description="which replica (1: the container)"),
) -> StreamingResponse:
    """The container's output; follow=true streams until it stops or the client leaves."""
    query = log_query(
        follow=follow,
        tail=tail,
        since=since,
        until=until,
        timestamps=timestamps,
        stdout=stdout,
        stderr=stderr,
    )
    stream = await services.logs.open(principal, cuid, query, replica=replica)
    return StreamingResponse(
        _closing(stream), media_type="text/plain; charset=utf-8", headers=_STREAM_HEADERS
    )


@router.get("/containers/{cuid}/metrics")
async def container_metrics(
    cuid: str, principal: PrincipalDep, services: ServicesDep
) -> MetricsOut:
    """CPU %, memory, network and block I/O, pids: the latest sample and its age."""
    return MetricsOut.model_validate(await services.metrics.get(principal, cuid))


# With follow=true: Server-Sent Events, each one an Event as JSON in `data` (OpenAPI
# 3.1 describes an event stream by the schema of one event).
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["data"],
}


@router.get(
    "/events",
    response_model=EventPage,
    responses={200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}}},
)
async def list_events(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=100, maximum=MAX_PAGE)],
    cuid: str | None = None,
    types: str | None = Query(
        default=None, alias="type", description="comma list, e.g. start,die,oom"
    ),
    since: str | None = Query(default=None, description="unix seconds, ISO 8601, or 10m"),
    until: str | None = Query(default=None, description="unix seconds, ISO 8601, or 10m"),
    follow: bool = False,
) -> Response | EventPage:
    """Container events, newest first; follow=true streams new ones (Server-Sent Events)."""
    flt = event_filter(cuid=cuid, types=types, since=since, until=until)
    if follow:
        after = _last_event_id(request.headers.get("last-event-id"))
        stream = await services.events.follow(principal, flt, after=after)
        return StreamingResponse(
            _sse(stream), media_type="text/event-stream", headers=_STREAM_HEADERS
        )
    page = await services.events.page(principal, flt, limit=paging.limit, cursor=paging.cursor)
    return EventPage(
        events=[EventOut.from_event(e) for e in page.items], next_cursor=page.next_cursor
    )


async def _closing(stream: LeasedStream[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


async def _sse(stream: LeasedStream[Event | None]) -> AsyncIterator[bytes]:
    """One event per message: ``id: <seq>`` and one ``data:`` line of JSON; a comment
    line now and then keeps proxies from closing a quiet stream."""
    try:
        yield b": events follow\n\n"
        async for event in stream:
            if event is None:
                yield b": keep-alive\n\n"
                continue
            # json.dumps as before (ASCII-only), not pydantic's encoder.
            data = json.dumps(
                EventOut.from_event(event).model_dump(mode="json"), separators=(",", ":")
            )
            yield f"id: {event.seq}\ndata: {data}\n\n".encode()
    finally:
        await stream.aclose()


def _last_event_id(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ValidationError(
            "Last-Event-ID must be an event id this service sent",
            code="INVALID_LAST_EVENT_ID",
            details={"provided": raw[:32]},
        )
    return value

"""Recording in the domain: every change a service makes goes through one ``Recorder``,
whether a request asked for it or the service did it by itself (reconcile today; idle
stops, TTL deletes and webhook redeploys next).

A change becomes an event (``GET /events``: containers, builds, images) and an audit
entry. During an HTTP request the request middleware writes the audit entry (one per
request, refusals and failures included, with the answer's status); the change tells it
which resource the request made or touched, through the request's ``RequestScope``.
Outside a request the recorder writes the audit entry itself, as the ``system`` actor
with method ``SYSTEM`` and status 0 (no HTTP answer exists).

The last write of a change a request asked for (a create's record, a delete's) carries
the request's audit entry in its own transaction (``audit_in_change``): one commit where
there were two, and the change and its entry are durable together. The middleware then
has nothing left to commit for a success; any other outcome it records as before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockyard.domain.access.audit import AuditEntry, AuditTrail
from dockyard.domain.observe.events import Event, EventService

SYSTEM = "system"
# Changes that are events too; ``cuid`` is the resource (a cuid, a build's job id), and
# an image's reference is in the details.
EVENT_PREFIXES = ("container.", "build.", "image.", "webhook.", "hub.", "engine.")


@dataclass
class RequestScope:
    """What the request middleware wants to know of the changes its request made."""

    resource: str | None = None
    # The middleware's entry for this request's success answer, for a resource (None: a
    # request nobody authenticated); ``written`` is the one a change's transaction took.
    draft: Callable[[str | None], AuditEntry | None] | None = None
    written: AuditEntry | None = None


@contextmanager
def audit_in_change(resource: str) -> Iterator[AuditEntry | None]:
    """The request's audit entry, for the transaction of the write that completes its
    change (once per request; None outside a request). If the block fails, the entry is
    handed back: the middleware then records the request's real outcome."""
    scope = request_scope.get()
    if scope is None or scope.draft is None or scope.written is not None:
        yield None
        return
    entry = scope.written = scope.draft(resource)
    try:
        yield entry
    except BaseException:
        if scope.written is entry:
            scope.written = None
        raise


request_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "dockyard_request_scope", default=None
)


@dataclass(frozen=True)
class Change:
    """One change of state, by ``actor`` (a username, or ``system``)."""

    action: str  # an event type, e.g. container.created
    resource: str | None
    owner: str | None  # who owns the resource: events are shown to their owner
    actor: str
    component: str = "api"  # who did it: api, reconcile, …
    details: dict[str, Any] = field(default_factory=dict)


class Recorder(Protocol):
    def record(self, change: Change) -> None:
        """Record the change; never blocks, never does I/O."""
        ...


class NullRecorder:
    """Records nothing (services built alone, in unit tests)."""

    def record(self, change: Change) -> None:
        return None


class JournalRecorder:
    """Writes changes to the events and (outside requests) the audit trail."""

    def __init__(self, events: EventService, audit: AuditTrail) -> None:
        self._events = events
        self._audit = audit

    def record(self, change: Change) -> None:
        if change.action.startswith(EVENT_PREFIXES):
            # An image, an engine are not a cuid.
            is_image = change.action.startswith(("image.", "engine."))
            self._events.append(
                Event(
                    type=change.action,
                    source="api" if change.component == "api" else "dockyard",
                    cuid=None if is_image else change.resource,
                    owner=change.owner,
                    actor=change.actor,
                    details=dict(change.details),
                )
            )
        scope = request_scope.get()
        if scope is not None:
            if scope.resource is None and change.resource is not None:
                scope.resource = change.resource
            return
        self._audit.record(
            AuditEntry(
                username=change.actor,
                credential=SYSTEM,
                method="SYSTEM",
                route=change.component,
                action=change.action,
                resource=change.resource[:128] if change.resource else None,
                status=0,
            )
        )

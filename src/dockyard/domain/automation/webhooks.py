"""``/webhooks``: outgoing webhooks, per account (admins: all of them).

The secret is made here (32 random bytes, hex), shown once in the create answer, and
sealed by a ``SecretBox`` bound to its row before it reaches the store; it is opened only
to sign a delivery. ``on_events`` is the events journal's listener: it runs after a batch
of events is committed, without I/O, and queues one delivery per matching webhook into a
``BatchWriter`` (rows inserted in batches, never on a request's path). A webhook of an
account sees the events of that account's resources; one of an admin, every event. An
event about a webhook's own deliveries never goes to that webhook (no loops).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import structlog

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.automation.hooks import (
    FAILED_TYPE,
    PENDING,
    TEST_TYPE,
    Delivery,
    Outcome,
    Webhook,
    WebhookSender,
    check_patterns,
    event_body,
    from_micros,
    matches,
    micros,
)
from dockyard.domain.batching import BatchWriter
from dockyard.domain.containers.provision import public_url
from dockyard.domain.images.registries import SecretBox
from dockyard.domain.models import utcnow
from dockyard.domain.observe.events import Event
from dockyard.domain.paging import Page, before, check_limit, page_of
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import StorageIOError

log = structlog.get_logger("dockyard.webhooks")

MAX_PENDING = 50_000  # deliveries queued for insertion
MAX_PAGE = 500
URL_FIELD = "url"


class WebhookRepository(Protocol):
    async def insert(self, hook: Webhook) -> None: ...
    async def get(self, webhook_id: str) -> Webhook | None: ...
    async def all(self) -> list[Webhook]: ...
    async def save(self, hook: Webhook) -> None: ...
    async def delete(self, webhook_id: str) -> None:
        """The webhook and its deliveries."""
        ...

    async def insert_deliveries(self, batch: list[Delivery]) -> int: ...
    async def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None: ...
    async def deliveries(
        self, webhook_id: str, *, before: datetime | None, limit: int
    ) -> list[Delivery]:
        """Newest first, made before ``before``."""
        ...

    async def due(self, webhook_id: str, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries of the webhook whose next attempt is due, soonest first."""
        ...

    async def next_due(self) -> datetime | None: ...
    async def settle(self, outcomes: list[Outcome]) -> int: ...


class Stamps:
    """Creation times, unique per service to the microsecond (they are the cursors)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> datetime:
        self._last = max(micros(utcnow()), self._last + 1)
        return from_micros(self._last)


@dataclass(frozen=True)
class Created:
    hook: Webhook
    secret: str  # shown once


class WebhookService:
    """The webhooks, their deliveries, and the journal's listener."""

    def __init__(
        self,
        repo: WebhookRepository,
        box: SecretBox,
        sender: WebhookSender,
        *,
        sees_all: Callable[[str], Awaitable[bool]],
        recorder: Recorder | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._repo = repo
        self._box = box
        self._sender = sender
        self._sees_all = sees_all
        self._recorder = recorder or NullRecorder()
        self._hooks: dict[str, tuple[Webhook, bool]] = {}  # id -> (hook, owner sees all)
        self._stamps = Stamps()
        self._changes = 0  # counts changes of ``_hooks`` (a refresh must not undo one)
        self.writer: BatchWriter[Delivery, int] = BatchWriter(
            "webhook-deliveries", repo.insert_deliveries, max_pending=max_pending,
            on_written=self._inserted,
        )  # fmt: skip
        self.wake: Callable[[], None] = lambda: None  # the deliverer's, once it exists

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.refresh()
        self.writer.start()

    async def stop(self, deadline: float) -> int:
        """Insert what is queued within ``deadline``; how many were lost."""
        return await self.writer.close(deadline)

    async def refresh(self) -> None:
        """Reload the webhooks and whether each owner sees every event (roles change)."""
        for _ in range(3):  # a create or delete meanwhile: read again
            changes = self._changes
            hooks = await self._repo.all()
            owners = {h.owner: await self._sees_all(h.owner) for h in hooks}
            if changes == self._changes:
                self._hooks = {h.id: (h, owners[h.owner]) for h in hooks}
                return

    async def _remember(self, hook: Webhook) -> None:
        self._hooks[hook.id] = (hook, await self._sees_all(hook.owner))
        self._changes += 1

    # -- /webhooks -------------------------------------------------------------------------

    async def visible(self, principal: Principal) -> list[Webhook]:
        principal.require(Permission.WEBHOOKS_MANAGE)
        hooks = [h for h, _ in self._hooks.values() if principal.sees(h.owner)]
        return sorted(hooks, key=lambda h: (h.created_at, h.id))

    async def get(self, principal: Principal, webhook_id: str) -> Webhook:
        principal.require(Permission.WEBHOOKS_MANAGE)
        hook = await self._repo.get(webhook_id)
        if hook is None or not principal.sees(hook.owner):
            raise not_found("webhook", webhook_id)
        return hook

    async def create(
        self, principal: Principal, *, url: str, events: list[str], active: bool
    ) -> Created:
        principal.require(Permission.WEBHOOKS_MANAGE)
        patterns = check_patterns(events)
        await self._sender.check(url, URL_FIELD)
        secret = secrets.token_hex(32)
        draft = Webhook(
            id="wh" + uuid.uuid4().hex,
            owner=principal.username,
            url=url,
            events=patterns,
            secret=b"",
            active=active,
            created_at=utcnow(),
        )
        hook = replace(draft, secret=self._box.seal(secret.encode(), draft.context))
        await self._repo.insert(hook)
        await self._remember(hook)
        self._record("webhook.created", hook, principal.username)
        return Created(hook, secret)

    async def update(
        self,
        principal: Principal,
        webhook_id: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        active: bool | None = None,
    ) -> Webhook:
        hook = await self.get(principal, webhook_id)
        if url is not None and url != hook.url:
            await self._sender.check(url, URL_FIELD)
            hook = replace(hook, url=url)
        if events is not None:
            hook = replace(hook, events=check_patterns(events))
        if active is not None:
            hook = replace(hook, active=active)
        await self._repo.save(hook)
        await self._remember(hook)
        self._record("webhook.updated", hook, principal.username)
        if hook.active:
            self.wake()
        return hook

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        hook = await self.get(principal, webhook_id)
        self._hooks.pop(hook.id, None)
        self._changes += 1
        await self._repo.delete(hook.id)
        self._record("webhook.deleted", hook, principal.username)

    # -- deliveries ---------------------------------------------------------------------

    async def deliveries(
        self, principal: Principal, webhook_id: str, *, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        check_limit(limit, MAX_PAGE)
        hook = await self.get(principal, webhook_id)
        start = before(cursor)
        await self.writer.flush(2.0)  # a client sees the deliveries of what it just did
        rows = await self._repo.deliveries(
            hook.id, before=None if start is None else from_micros(start), limit=limit + 1
        )
        return page_of(rows, limit)

    async def redeliver(self, principal: Principal, webhook_id: str, delivery_id: str) -> Delivery:
        """A new attempt now, under the same delivery id."""
        hook = await self.get(principal, webhook_id)
        found = await self._repo.delivery(hook.id, delivery_id)
        if found is None:
            raise not_found("delivery", delivery_id)
        now = utcnow()
        await self._repo.settle(
            [
                Outcome(
                    found.id,
                    PENDING,
                    found.attempts,
                    now,
                    found.last_status_code,
                    found.last_error,
                    found.delivered_at,
                )
            ]
        )
        self.wake()
        return replace(found, status=PENDING, next_attempt_at=now)

    async def test(self, principal: Principal, webhook_id: str) -> Delivery:
        """A ``webhook.test`` event, delivered to this webhook only."""
        hook = await self.get(principal, webhook_id)
        event = Event(
            type=TEST_TYPE,
            source="api",
            cuid=None,
            owner=hook.owner,
            actor=principal.username,
            details={"webhook_id": hook.id},
        )
        delivery = self._delivery(hook, event)
        if not await self.writer.put_waiting(delivery):
            raise StorageIOError("the test delivery could not be stored; try again")
        return delivery

    # -- for the deliverer --------------------------------------------------------------

    def active(self) -> list[Webhook]:
        return [h for h, _ in self._hooks.values() if h.active]

    def hook(self, webhook_id: str) -> Webhook | None:
        known = self._hooks.get(webhook_id)
        return known[0] if known else None

    def secret(self, hook: Webhook) -> bytes:
        return self._box.open(hook.secret, hook.context)

    def recorder(self) -> Recorder:
        return self._recorder

    # -- the journal's listener -----------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        """Committed events in; one queued delivery per matching webhook. No I/O."""
        hooks = [known for known in self._hooks.values() if known[0].active]
        if not hooks:
            return
        for event in events:
            body: str | None = None
            for hook, sees_all in hooks:
                if not self._wants(hook, sees_all, event):
                    continue
                body = body or event_body(event)
                self.writer.put(self._delivery(hook, event, body))

    def wants(self, event: Event) -> bool:
        """Some active webhook wants ``event`` (the journal then commits it at once)."""
        return any(
            self._wants(hook, sees_all, event)
            for hook, sees_all in self._hooks.values()
            if hook.active
        )

    @staticmethod
    def _wants(hook: Webhook, sees_all: bool, event: Event) -> bool:
        if not (sees_all or event.owner == hook.owner):
            return False
        if event.type == FAILED_TYPE and event.details.get("webhook_id") == hook.id:
            return False  # its own failures: never back to it
        return matches(hook.events, event.type)

    def _delivery(self, hook: Webhook, event: Event, body: str | None = None) -> Delivery:
        created = self._stamps.next()
        return Delivery(
            id="wd" + uuid.uuid4().hex,
            webhook_id=hook.id,
            event_seq=event.seq or None,
            event_type=event.type,
            body=body or event_body(event),
            created_at=created,
            next_attempt_at=created,
        )

    def _inserted(self, _count: int) -> None:
        self.wake()

    def _record(self, action: str, hook: Webhook, actor: str) -> None:
        details = {"url": public_url(hook.url), "events": list(hook.events), "active": hook.active}
        self._recorder.record(
            Change(action=action, resource=hook.id, owner=hook.owner, actor=actor, details=details)
        )

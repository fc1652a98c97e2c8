"""The deliverer: POSTs pending deliveries, records each outcome, retries with backoff.

The queue is the ``webhook_deliveries`` table, so it survives restarts: one task looks
up what is due, per active webhook, and starts an attempt for each while there is room
(``max_in_flight`` in all, ``per_webhook`` for each webhook, so one slow receiver cannot
starve the others). It is woken when deliveries are inserted, when an attempt ends, and
at the next due time. Outcomes are written in batches (group commit through a
``BatchWriter``); a delivery stays claimed until its outcome is committed, so it is never
sent twice at once. Stopping lets attempts in flight finish within the deadline; one cut
short stays pending and is sent again after the restart (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from datetime import datetime

import structlog

from dockyard.domain.automation.hooks import (
    DELIVERED,
    FAILED,
    Attempt,
    Delivery,
    DeliveryLimits,
    Outcome,
    Webhook,
    WebhookSender,
    after_failure,
    signature,
)
from dockyard.domain.automation.webhooks import WebhookRepository, WebhookService
from dockyard.domain.batching import BatchWriter
from dockyard.domain.containers.provision import public_url
from dockyard.domain.models import utcnow
from dockyard.domain.recording import SYSTEM, Change
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.webhooks")

IDLE = 30.0  # seconds between looks at the queue when nothing is known to be due
REFRESH = 60.0  # seconds between reloads of the webhooks (an owner's role may change)


class Deliverer:
    """Sends the deliveries of ``hooks`` through ``sender``, within ``limits``."""

    def __init__(
        self,
        repo: WebhookRepository,
        hooks: WebhookService,
        sender: WebhookSender,
        limits: DeliveryLimits,
    ) -> None:
        self._repo = repo
        self._hooks = hooks
        self._sender = sender
        self._limits = limits
        self._outcomes: BatchWriter[Outcome, int] = BatchWriter(
            "webhook-outcomes", repo.settle, max_pending=max(1000, limits.max_in_flight * 4)
        )
        self._wake = asyncio.Event()
        self._claimed: dict[str, str] = {}  # delivery id -> webhook id, until settled
        self._running: dict[str, int] = {}  # webhook id -> attempts in flight
        self._attempts: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._turn = itertools.count()
        hooks.wake = self.wake

    @property
    def in_flight(self) -> int:
        return len(self._attempts)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._loop is None:
            self._outcomes.start()
            self._loop = asyncio.create_task(self._run(), name="webhooks:deliver")

    async def stop(self, deadline: float, *, final: bool = True) -> None:
        """Start nothing new; let attempts in flight end (within ``deadline``), write
        their outcomes; what is cut short is sent again after a restart. ``final=False``
        (another process takes the deliveries over): the writer of outcomes stays open,
        and ``start`` may run the loop again later."""
        started = time.monotonic()
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._attempts:
            _, late = await asyncio.wait(set(self._attempts), timeout=deadline * 0.7)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("webhooks.attempts_cut", count=len(late))
        if final:
            await self._outcomes.close(max(0.1, deadline - (time.monotonic() - started)))

    # -- the loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        refreshed = time.monotonic()
        while True:
            self._wake.clear()
            try:
                if time.monotonic() - refreshed > REFRESH:
                    refreshed = time.monotonic()
                    await self._hooks.refresh()
                now = utcnow()
                await self._dispatch_due(now)
                wait = await self._next_wait(now)
            except Exception as exc:  # the store is down: look again a little later
                log.warning("webhooks.queue_failed", exc_type=type(exc).__name__)
                wait = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _dispatch_due(self, now: datetime) -> None:
        hooks = self._hooks.active()
        if not hooks:
            return
        first = next(self._turn) % len(hooks)  # who goes first rotates: fair under the cap
        for hook in hooks[first:] + hooks[:first]:
            free = min(
                self._limits.per_webhook - self._running.get(hook.id, 0),
                self._limits.max_in_flight - len(self._attempts),
            )
            if free <= 0:
                continue
            held = sum(1 for owner in self._claimed.values() if owner == hook.id)
            for delivery in await self._repo.due(hook.id, now, free + held):
                if delivery.id in self._claimed:
                    continue
                if free <= 0:
                    break
                free -= 1
                self._dispatch(delivery, hook)

    async def _next_wait(self, now: datetime) -> float:
        """How long to sleep, measured from ``now``, the time the dispatch looked: a
        delivery that fell due after that look (while the store was read) is waited for,
        not mistaken for one already in flight."""
        due = await self._repo.next_due()
        if due is None:
            return IDLE
        seconds = (due - now).total_seconds()
        # Due at the look: it is in flight, capped or paused; an ending wakes us.
        return IDLE if seconds <= 0 else min(seconds, IDLE)

    def _dispatch(self, delivery: Delivery, hook: Webhook) -> None:
        self._claimed[delivery.id] = hook.id
        self._running[hook.id] = self._running.get(hook.id, 0) + 1
        task = asyncio.create_task(self._attempt(delivery, hook), name="webhooks:attempt")
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    # -- one attempt ------------------------------------------------------------------

    async def _attempt(self, delivery: Delivery, hook: Webhook) -> None:
        try:
            try:
                outcome = await self._send(delivery, hook)
            finally:
                self._running[hook.id] -= 1
                self._wake.set()
            await self._outcomes.put_waiting(outcome)
        except Exception as exc:  # never lose the loop's bookkeeping; retried later
            log.error("webhooks.attempt_failed", exc_type=type(exc).__name__)
        finally:
            self._claimed.pop(delivery.id, None)
            self._wake.set()

    async def _send(self, delivery: Delivery, hook: Webhook) -> Outcome:
        body = delivery.body.encode()
        try:
            secret = self._hooks.secret(hook)
        except DockyardError:  # the key file was replaced: it cannot be signed
            attempt = Attempt(None, "secret_unreadable")
        else:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self._limits.user_agent,
                "X-Dockyard-Event": delivery.event_type,
                "X-Dockyard-Delivery": delivery.id,
                "X-Dockyard-Signature": signature(secret, int(time.time()), body),
            }
            attempt = await self._sender.post(hook.url, body, headers)
        now = utcnow()
        if attempt.ok:
            return Outcome(
                delivery.id, DELIVERED, delivery.attempts + 1, None, attempt.status_code, None, now
            )
        outcome = after_failure(delivery, attempt, now, self._limits)
        if outcome.status == FAILED:
            self._gave_up(delivery, hook, outcome, now)
        return outcome

    def _gave_up(self, delivery: Delivery, hook: Webhook, outcome: Outcome, now: datetime) -> None:
        log.warning(
            "webhooks.delivery_failed",
            webhook=hook.id,
            url=public_url(hook.url),
            delivery=delivery.id,
            attempts=outcome.attempts,
            error=outcome.last_error,
            status_code=outcome.last_status_code,
        )
        if delivery.event_type.startswith("webhook."):
            return  # a failure to deliver news of a failure is not news again (no loops)
        self._hooks.recorder().record(
            Change(
                action="webhook.delivery_failed",
                resource=hook.id,
                owner=hook.owner,
                actor=SYSTEM,
                component="webhooks",
                details={
                    "webhook_id": hook.id,
                    "delivery_id": delivery.id,
                    "event_type": delivery.event_type,
                    "attempts": outcome.attempts,
                    "last_status_code": outcome.last_status_code,
                    "last_error": outcome.last_error,
                    "created_at": delivery.created_at.isoformat(),
                    "failed_at": now.isoformat(),
                },
            )
        )

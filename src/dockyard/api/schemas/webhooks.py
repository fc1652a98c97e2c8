"""Webhook bodies: the secret goes out once (on create), never in."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso, iso_or_none
from dockyard.domain.automation.hooks import Delivery, Webhook

_URL = Field(min_length=1, max_length=2048, description="http(s) URL, public addresses only")
_EVENTS = Field(
    max_length=64,
    description='event type patterns: "build.failed", "container.*", "*"; empty = all',
)


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = _URL
    events: list[str] = Field(default_factory=list, max_length=64, description=_EVENTS.description)
    active: bool = True


class UpdateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, max_length=64)
    active: bool | None = None


class WebhookOut(Out):
    id: str
    owner: str
    url: str
    events: list[str]
    active: bool
    created_at: Instant

    @classmethod
    def from_hook(cls, hook: Webhook) -> WebhookOut:
        return cls(
            id=hook.id,
            owner=hook.owner,
            url=hook.url,
            events=list(hook.events),
            active=hook.active,
            created_at=iso(hook.created_at),
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="signs every delivery; shown this once only")


class WebhookList(Out):
    webhooks: list[WebhookOut]


class DeliveryOut(Out):
    id: str = Field(description="X-Dockyard-Delivery: the same on every attempt")
    event_type: str
    event_seq: int | None
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None = Field(
        description="timeout, connect, transport, status, redirect, url_refused, dns"
    )
    created_at: Instant
    delivered_at: Instant | None
    next_attempt_at: Instant | None

    @classmethod
    def from_delivery(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            event_type=d.event_type,
            event_seq=d.event_seq,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=iso(d.created_at),
            delivered_at=iso_or_none(d.delivered_at),
            next_attempt_at=iso_or_none(d.next_attempt_at),
        )


class DeliveryPage(Out):
    deliveries: list[DeliveryOut]
    next_cursor: NextCursor

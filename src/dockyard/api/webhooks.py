"""``/webhooks``: outgoing webhooks and their deliveries (the secret is shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from dockyard.api.deps import PageParams, PrincipalDep, ServicesDep, paged
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.webhooks import (
    CreateWebhook,
    DeliveryOut,
    DeliveryPage,
    UpdateWebhook,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from dockyard.domain.automation.webhooks import MAX_PAGE

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("")
async def list_webhooks(principal: PrincipalDep, services: ServicesDep) -> WebhookList:
    """The caller's webhooks (admins: everyone's)."""
    hooks = await services.webhooks.visible(principal)
    return WebhookList(webhooks=[WebhookOut.from_hook(h) for h in hooks])


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_webhook(
    body: CreateWebhook, principal: PrincipalDep, services: ServicesDep
) -> WebhookCreated:
    """Add a webhook; the answer carries its signing secret, this once only."""
    created = await services.webhooks.create(
        principal, url=body.url, events=body.events, active=body.active
    )
    shown = WebhookOut.from_hook(created.hook)
    return WebhookCreated(**shown.model_dump(), secret=created.secret)


@router.get("/{webhook_id}")
async def get_webhook(
    webhook_id: str, principal: PrincipalDep, services: ServicesDep
) -> WebhookOut:
    """One webhook (never its secret)."""
    return WebhookOut.from_hook(await services.webhooks.get(principal, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: str, body: UpdateWebhook, principal: PrincipalDep, services: ServicesDep
) -> WebhookOut:
    """Change a webhook's url, events or active flag."""
    hook = await services.webhooks.update(
        principal, webhook_id, url=body.url, events=body.events, active=body.active
    )
    return WebhookOut.from_hook(hook)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Remove a webhook and its deliveries not yet made."""
    await services.webhooks.delete(principal, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=50, maximum=MAX_PAGE)],
) -> DeliveryPage:
    """The webhook's deliveries, newest first (never a response body)."""
    page = await services.webhooks.deliveries(
        principal, webhook_id, limit=paging.limit, cursor=paging.cursor
    )
    return DeliveryPage(
        deliveries=[DeliveryOut.from_delivery(d) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(
    webhook_id: str, delivery_id: str, principal: PrincipalDep, services: ServicesDep
) -> DeliveryOut:
    """Send a delivery again now, with the same delivery id."""
    found = await services.webhooks.redeliver(principal, webhook_id, delivery_id)
    return DeliveryOut.from_delivery(found)


@router.post("/{webhook_id}/test", status_code=202)
async def test_webhook(
    webhook_id: str, principal: PrincipalDep, services: ServicesDep
) -> DeliveryOut:
    """Deliver a ``webhook.test`` event to this webhook only."""
    return DeliveryOut.from_delivery(await services.webhooks.test(principal, webhook_id))

"""``/webhookkeys`` and ``POST /hub/webhook/{key}``: redeploy on push (issue 11).

The hub route takes no credentials but its key: an unknown key is answered exactly like
a path that does not exist (the same 404 body), so a guess learns nothing. The body is
read here, raw, because the delivery's fingerprint is taken of its bytes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from dockyard.api.deps import PrincipalDep, ServicesDep, client_address
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.hub import (
    CreateWebhookKey,
    HubAccepted,
    WebhookKeyCreated,
    WebhookKeyList,
    WebhookKeyOut,
)
from dockyard.domain.automation.hub import UnknownHubKey
from dockyard.domain.images.refs import check_pull_ref

router = APIRouter(tags=["webhooks"])

_HUB_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": 'Docker Hub\'s payload, or {"image": "repo:tag"}',
                    "properties": {
                        "image": {"type": "string", "example": "me/app:v2"},
                        "repository": {
                            "type": "object",
                            "properties": {"repo_name": {"type": "string"}},
                        },
                        "push_data": {
                            "type": "object",
                            "properties": {
                                "tag": {"type": "string"},
                                "pushed_at": {"type": "integer"},
                            },
                        },
                    },
                }
            }
        },
        "required": True,
    }
}


@router.get("/webhookkeys")
async def list_webhook_keys(
    principal: PrincipalDep, services: ServicesDep, owner: str | None = None
) -> WebhookKeyList:
    """The caller's webhook keys (admins: everyone's, or ``owner``'s); never the keys."""
    keys = await services.webhookkeys.visible(principal, owner)
    return WebhookKeyList(webhookkeys=[WebhookKeyOut.from_key(k) for k in keys])


@router.post("/webhookkeys", status_code=201, dependencies=[IDEMPOTENT])
async def create_webhook_key(
    body: CreateWebhookKey, principal: PrincipalDep, services: ServicesDep
) -> WebhookKeyCreated:
    """A key that redeploys ``image``; ``key`` and ``url`` are in this answer only."""
    build = None
    if body.build is not None:
        body.build.to_request(check_pull_ref(body.image))  # 400 now, not at a delivery
        build = body.build.model_dump(exclude_defaults=True)
    secret, key = await services.webhookkeys.create(principal, body.image, build)
    shown = WebhookKeyOut.from_key(key)
    return WebhookKeyCreated(**shown.model_dump(), key=secret, url=services.webhookkeys.url(secret))


@router.delete("/webhookkeys/{key_id}", status_code=204)
async def delete_webhook_key(
    key_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Remove a key: its URL answers 404 from now on."""
    await services.webhookkeys.delete(principal, key_id)
    return Response(status_code=204)


@router.post(
    "/hub/webhook/{key}",
    status_code=202,
    openapi_extra=_HUB_BODY,
    responses={
        429: {
            "description": "rate_limited: too many unknown keys from this address, or"
            " deliveries to this key",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
)
async def hub_webhook(key: str, request: Request, services: ServicesDep) -> HubAccepted:
    """A push: pull (or build) the key's image and recreate the containers using it
    (202 with the job; a replayed delivery: 202 with the job it queued before)."""
    body = await request.body()
    delivery_id = request.headers.get("x-hub-delivery") or request.headers.get("idempotency-key")
    try:
        accepted = await services.hub.deliver(
            key, body, delivery_id=delivery_id, source=client_address(request)
        )
    except UnknownHubKey:
        raise HTTPException(status_code=404) from None
    request.state.user = accepted.job.owner  # the audit: on the key owner's behalf
    request.state.credential = "hubkey"
    return HubAccepted.of(accepted.job, accepted.replay)

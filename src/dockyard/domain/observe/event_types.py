"""The event types ``GET /events`` knows (``?type=`` is checked against them), by where
they come from."""

from __future__ import annotations

ENGINE_TYPES = (
    "create",
    "start",
    "restart",
    "pause",
    "unpause",
    "kill",
    "stop",
    "die",
    "destroy",
    "oom",
    "health_status",
)
API_TYPES = (
    "container.created",
    "container.updated",
    "container.deleted",
    "container.action",
    "container.adopted",
    "container.missing",
    "container.failed",
    "container.idle_stopped",  # by the timers (domain/automation/timers.py), actor system
    "container.expired",
    "container.scaled",  # POST /containers/{cuid}/scale (domain/containers/scaling.py)
    "container.redeployed",  # by a hub webhook's job (domain/automation/hub.py), actor system
    "image.deleted",
)
JOB_TYPES = (  # builds and pulls (domain/images/jobs.py); the event's cuid is the job id
    "build.queued",
    "build.started",
    "build.succeeded",
    "build.failed",
    "build.cancelled",
    "image.pulled",  # cuid null: the image's reference is in the details
)
WEBHOOK_TYPES = (  # outgoing webhooks (domain/automation/); the event's cuid is the webhook id
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.delivery_failed",
)
HUB_TYPES = ("hub.delivery",)  # a hub webhook delivery; the event's cuid is the job id
REGISTRY_TYPES = (  # the registry of engines (domain/engines/); admins' events, cuid null
    "engine.added",
    "engine.updated",
    "engine.drained",
    "engine.undrained",
    "engine.host_access_on",
    "engine.host_access_off",
    "engine.removed",
    "engine.healthy",
    "engine.unreachable",
)
EVENT_TYPES = frozenset(
    ENGINE_TYPES + API_TYPES + JOB_TYPES + WEBHOOK_TYPES + HUB_TYPES + REGISTRY_TYPES
)

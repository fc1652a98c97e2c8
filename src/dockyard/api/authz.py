"""The one authorization check every route and WebSocket goes through (deny by default).

Each route template names the permission it needs. ``PrincipalDep`` (and
``get_ws_principal``) authenticate the caller and then look the matched route up here: a
route that is not listed is refused to everybody, so a new route is closed until someone
decides who may use it. ``tests/unit/test_accounts_authz.py`` proves the table and the
application's routes are the same set, and that each route refuses a role without its
permission. The domain checks the permission again (and ownership: another account's
resource answers 404), so a caller that bypasses HTTP is held to the same rules.
"""

from __future__ import annotations

from typing import Final

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.errors import ForbiddenError

log = structlog.get_logger("dockyard.authz")

P = Permission
AUTHENTICATED: Final = None  # any authenticated principal; the route acts on its own account

# The hub webhook's key is its credential (api/hub.py): an unknown one is a 404. The web
# UI's shell and static files are the same for everybody (api/ui.py); the UI itself calls
# the API with a bearer token.
OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/livez"),
        ("POST", "/hub/webhook/{key}"),
        ("GET", "/"),
        ("GET", "/ui"),
        ("GET", "/ui/{page:path}"),
        ("GET", "/ui/assets/{version}/{path:path}"),
    }
)

ROUTE_PERMISSIONS: dict[tuple[str, str], Permission | None] = {
    # system
    ("GET", "/healthz"): P.SYSTEM_READ,
    ("GET", "/metrics"): P.SYSTEM_READ,
    ("GET", "/openapi.json"): AUTHENTICATED,
    ("GET", "/docs"): AUTHENTICATED,
    # credentials of the caller itself
    ("GET", "/auth/whoami"): AUTHENTICATED,
    ("POST", "/auth/token"): AUTHENTICATED,
    ("POST", "/auth/ws-ticket"): AUTHENTICATED,
    ("GET", "/auth/tokens"): AUTHENTICATED,
    ("DELETE", "/auth/tokens/{token_id}"): AUTHENTICATED,
    ("GET", "/accounts/me"): AUTHENTICATED,
    ("PUT", "/accounts/me/password"): AUTHENTICATED,
    # containers
    ("POST", "/containers"): P.CONTAINERS_CREATE,
    ("GET", "/containers"): P.CONTAINERS_READ,
    ("GET", "/containers/{cuid}"): P.CONTAINERS_READ,
    ("GET", "/containers/{cuid}/status"): P.CONTAINERS_READ,
    ("GET", "/containers/{cuid}/logs"): P.CONTAINERS_READ,
    ("GET", "/containers/{cuid}/metrics"): P.CONTAINERS_READ,
    ("GET", "/events"): P.CONTAINERS_READ,
    ("PATCH", "/containers/{cuid}"): P.CONTAINERS_UPDATE,
    ("PATCH", "/containers/{cuid}/ports"): P.CONTAINERS_UPDATE,
    ("DELETE", "/containers/{cuid}"): P.CONTAINERS_DELETE,
    **{
        ("POST", f"/containers/{{cuid}}/{verb}"): P.CONTAINERS_CONTROL
        for verb in ("start", "stop", "restart", "pause", "unpause", "kill", "scale")
    },
    # the owner's check-in; the workload's own token is checked by the route itself
    # (api/checkin.py) and is accepted nowhere else
    ("POST", "/containers/{cuid}/check-in"): P.CONTAINERS_CONTROL,
    # files
    ("POST", "/containers/{cuid}/upload-zip"): P.FILES_WRITE,
    ("GET", "/containers/{cuid}/download"): P.FILES_READ,
    ("GET", "/containers/{cuid}/download-zip"): P.FILES_READ,
    ("GET", "/containers/{cuid}/files"): P.FILES_READ,
    ("GET", "/containers/{cuid}/changes"): P.FILES_READ,
    ("GET", "/containers/{cuid}/changes/archive"): P.FILES_READ,
    # the terminal
    ("WS", "/ws/{cuid}"): P.CONTAINERS_EXEC,
    # accounts, roles, keys, audit
    ("GET", "/accounts"): P.ACCOUNTS_MANAGE,
    ("POST", "/accounts"): P.ACCOUNTS_MANAGE,
    ("GET", "/accounts/{username}"): P.ACCOUNTS_MANAGE,
    ("PATCH", "/accounts/{username}"): P.ACCOUNTS_MANAGE,
    ("DELETE", "/accounts/{username}"): P.ACCOUNTS_MANAGE,
    ("GET", "/roles"): AUTHENTICATED,
    ("GET", "/roles/{name}"): AUTHENTICATED,
    ("POST", "/roles"): P.ACCOUNTS_MANAGE,
    ("PATCH", "/roles/{name}"): P.ACCOUNTS_MANAGE,
    ("DELETE", "/roles/{name}"): P.ACCOUNTS_MANAGE,
    ("GET", "/servicekeys"): P.KEYS_MANAGE,
    ("POST", "/servicekeys"): P.KEYS_MANAGE,
    ("DELETE", "/servicekeys"): P.KEYS_MANAGE,
    ("DELETE", "/servicekeys/{key_id}"): P.KEYS_MANAGE,
    ("GET", "/audit"): P.AUDIT_READ,
    # images and registry credentials
    ("GET", "/images"): P.IMAGES_READ,
    ("GET", "/images/{ref:path}"): P.IMAGES_READ,
    ("DELETE", "/images/{ref:path}"): P.IMAGES_DELETE,
    ("GET", "/registries"): P.REGISTRIES_READ,
    ("POST", "/registries"): P.REGISTRIES_MANAGE,
    ("DELETE", "/registries/{registry_id}"): P.REGISTRIES_MANAGE,
    # builds and pulls (jobs)
    ("POST", "/builds"): P.IMAGES_BUILD,
    ("GET", "/builds"): P.IMAGES_READ,
    ("GET", "/builds/{job_id}"): P.IMAGES_READ,
    ("GET", "/builds/{job_id}/logs"): P.IMAGES_READ,
    ("POST", "/builds/{job_id}/cancel"): P.IMAGES_BUILD,
    ("POST", "/images/pull"): P.IMAGES_PULL,
    # engines and the cluster (SPEC §8)
    ("GET", "/engines"): P.ENGINES_READ,
    ("GET", "/engines/{engine_id}"): P.ENGINES_READ,
    ("GET", "/cluster/info"): P.ENGINES_READ,
    ("POST", "/engines"): P.ENGINES_MANAGE,
    ("PATCH", "/engines/{engine_id}"): P.ENGINES_MANAGE,
    ("DELETE", "/engines/{engine_id}"): P.ENGINES_MANAGE,
    ("POST", "/engines/{engine_id}/drain"): P.ENGINES_MANAGE,
    ("POST", "/engines/{engine_id}/undrain"): P.ENGINES_MANAGE,
    # outgoing webhooks (one's own; admins all)
    **{
        (method, f"/webhooks{path}"): P.WEBHOOKS_MANAGE
        for method, path in (
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{webhook_id}"),
            ("PATCH", "/{webhook_id}"),
            ("DELETE", "/{webhook_id}"),
            ("GET", "/{webhook_id}/deliveries"),
            ("POST", "/{webhook_id}/deliveries/{delivery_id}/redeliver"),
            ("POST", "/{webhook_id}/test"),
        )
    },
    # webhook keys: incoming deliveries that redeploy (one's own; admins all)
    ("GET", "/webhookkeys"): P.WEBHOOKS_MANAGE,
    ("POST", "/webhookkeys"): P.WEBHOOKS_MANAGE,
    ("DELETE", "/webhookkeys/{key_id}"): P.WEBHOOKS_MANAGE,
}


def authorize(principal: Principal, method: str, route: str | None) -> None:
    """Refuse unless the route is declared and the principal holds its permission."""
    key = ("GET" if method == "HEAD" else method, route or "")
    try:
        permission = ROUTE_PERMISSIONS[key]
    except KeyError:
        log.warning("authz.undeclared_route", method=key[0], route=key[1])
        raise ForbiddenError(
            "this route declares no permission, so nobody may use it",
            code="PERMISSION_UNDECLARED",
            details={"method": key[0], "route": key[1]},
        ) from None
    if permission is not AUTHENTICATED:
        principal.require(permission)

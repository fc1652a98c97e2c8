"""The OpenAPI contract: FastAPI's schema, plus what FastAPI cannot know (issue 9).

FastAPI documents each route's success and a 422 ``HTTPValidationError`` that Dockyard
never sends (a request that fails validation is 400 ``validation_error``, SPEC §9). Here
that 422 is dropped and each operation documents the errors it can answer, all with the
one ``Error`` body, by what the operation has: credentials (401, 403, 429), parameters
or a body (400), a path parameter or a DELETE (404), a body (413, 415), a change (409, 422, 507),
the engine below (502). Every operation may answer 408 (a slow client), 500 and 503.
The credentials are declared as security schemes, and the operations that create link
to the ones that use what they made (stateful clients and schemathesis follow them).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from dockyard.api.authz import OPEN_ROUTES
from dockyard.api.schemas.builds import BuildIn
from dockyard.api.schemas.common import ErrorOut

_REF_TEMPLATE = "#/components/schemas/{model}"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "validation_error: the request is malformed or breaks a rule",
    401: "auth_error: no, bad, expired or revoked credentials",
    403: "forbidden: the role does not allow this",
    404: "not_found: no such resource, or another user's",
    408: "timeout: the request's headers or body came too slowly",
    409: "conflict: the change clashes with what exists",
    413: "payload_too_large: the body is over its limit",
    415: "unsupported_media_type: the body is not of a type the route takes",
    422: "state_error: not possible in the resource's state, or a reused Idempotency-Key",
    429: "rate_limited: too many failed logins, or too many open streams",
    500: "Dockyard, Compose or the disk failed (the request id is quoted)",
    502: "engine_error: the Docker engine failed",
    503: "unavailable: the engine or the database is down or timing out (Retry-After)",
    507: "insufficient_storage: the disk is full",
}
_ALWAYS = (408, 500, 503)
_CHANGES = frozenset({"post", "put", "patch", "delete"})
# Paths whose operations reach the Docker engine (the others: the database only).
_ENGINE_PREFIXES = ("/containers", "/healthz", "/events", "/images", "/builds")
# Bodies that a route reads itself (several media types) and so names only through
# ``openapi_extra``: FastAPI would not put them in the components.
_REFERENCED_MODELS: tuple[type[BaseModel], ...] = (BuildIn,)

# POST path -> (path prefix of the operations that use what it made, path parameter,
# field of the 201 body that fills it).
_CREATES: dict[str, tuple[str, str, str]] = {
    "/containers": ("/containers/{cuid}", "cuid", "cuid"),
    "/accounts": ("/accounts/{username}", "username", "username"),
    "/roles": ("/roles/{name}", "name", "name"),
    "/servicekeys": ("/servicekeys/{key_id}", "key_id", "id"),
    "/auth/token": ("/auth/tokens/{token_id}", "token_id", "id"),
    "/registries": ("/registries/{registry_id}", "registry_id", "id"),
    "/builds": ("/builds/{job_id}", "job_id", "job_id"),
    "/images/pull": ("/builds/{job_id}", "job_id", "job_id"),
}

SECURITY_SCHEMES = {
    "basic": {"type": "http", "scheme": "basic"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "from POST /auth/token"},
    "serviceKey": {"type": "apiKey", "in": "header", "name": "X-Service-Key"},
}


def contract(app: FastAPI) -> dict[str, Any]:
    """The application's OpenAPI document, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        _document(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ErrorOut.model_json_schema(ref_template=_REF_TEMPLATE)
    for model in _REFERENCED_MODELS:
        found = model.model_json_schema(ref_template=_REF_TEMPLATE)
        for name, definition in found.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, found)
    components["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            is_open = (method.upper(), path) in OPEN_ROUTES
            if is_open:
                operation["security"] = []
            for parameter in operation.get("parameters", []):
                _absent_not_null(parameter)
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in sorted(_errors(path, method, operation, is_open=is_open)):
                responses.setdefault(
                    str(status),
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    },
                )
    for path, (target, parameter, field) in _CREATES.items():
        responses = paths.get(path, {}).get("post", {}).get("responses", {})
        created = responses.get("201") or responses.get("202")  # 202: a job was queued
        if created is not None:
            created["links"] = _links(paths, target, parameter, field)


def _absent_not_null(parameter: dict[str, Any]) -> None:
    """``str | None`` is documented as ``anyOf: [string, null]``; but a query, path or
    header parameter is a string or absent, never null. Schemathesis sent ``?tag=138`` as
    the "not a string" case of that anyOf and expected a 400 for a valid string."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == 1 and len(kept) < len(branches):
        del schema["anyOf"]
        schema.update({**kept[0], **schema})


def _errors(path: str, method: str, operation: dict[str, Any], *, is_open: bool) -> set[int]:
    statuses = set(_ALWAYS)
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if not is_open:
        statuses |= {401, 403, 429}
    if parameters or has_body:
        statuses.add(400)
    if method == "delete" or any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if has_body:
        statuses |= {413, 415}
    if method in _CHANGES:
        statuses |= {409, 422, 507}
    if path.startswith(_ENGINE_PREFIXES):
        statuses |= {409, 422, 502}
    return statuses


def _links(
    paths: dict[str, dict[str, Any]], target: str, parameter: str, field: str
) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for path, operations in paths.items():
        if path != target and not path.startswith(f"{target}/"):
            continue
        for operation in operations.values():
            links[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {parameter: f"$response.body#/{field}"},
            }
    return links

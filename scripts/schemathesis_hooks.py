"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Generated image references are never on the engine (and are never pulled: nothing here
needs the internet), so every create would be a 400/404 and the stateful links
(create -> get, patch, act, delete) would never run. In every other positive case, the
create names the local test image instead.

A follow stream (`GET /containers/{cuid}/logs?follow=true`, `GET /events?follow=true`)
is endless by design: it is asked for without follow (the e2e tests follow them), else
the case ends in a read timeout, not an answer.

A build context sent as the body (``application/x-tar``, ``gzip``, ``zip``) is bytes
like ``application/octet-stream``: schemathesis knows no serializer for those types, so
the generated value is sent as its bytes (mostly not an archive: a 400 is the answer).

The run's own admin account is not changed or deleted: a PATCH that sets its password
(which the API rightly allows an admin) would lock the rest of the run out (every
later case a 401), and proves nothing the battery in tests/e2e does not.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

TEST_IMAGE = "dockyard-test/busybox:latest"
RUN_ADMIN = os.environ.get("ST_ADMIN_USER", "admin")
_turn = 0
_STREAMS = frozenset({"/containers/{cuid}/logs", "/events"})
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})


@schemathesis.serializer("application/x-tar", "application/gzip", "application/zip")
def archive_bytes(context: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    data = getattr(value, "data", None)  # schemathesis' Binary
    if isinstance(data, bytes):
        return data
    return json.dumps(value, default=str).encode() if not isinstance(value, str) else value.encode()


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    global _turn
    meta = getattr(case, "meta", None)
    negative = meta is None or meta.generation.mode.is_negative
    operation = case.operation
    query = case.query if isinstance(case.query, dict) else None
    if operation.path in _STREAMS and query and str(query.get("follow")).lower() in _TRUE:
        query["follow"] = "false"  # as valid as the value it replaces
    if (
        negative
        or operation.method.upper() != "POST"
        or operation.path != "/containers"
        or not isinstance(case.body, dict)
    ):
        return case
    _turn += 1
    if _turn % 2:
        case.body["image"] = TEST_IMAGE
        case.body.pop("start", None)  # created, not started: quick, and enough for links
    return case


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    operation = case.operation
    on_run_admin = (
        operation.path == "/accounts/{username}"
        and operation.method.upper() in ("PATCH", "DELETE")
        and (case.path_parameters or {}).get("username") == RUN_ADMIN
    )
    return not on_run_admin

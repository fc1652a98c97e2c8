"""``/openapi.json`` and ``/docs`` behind credentials (SPEC §3: only /livez is open)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from dockyard.api.deps import PrincipalDep
from dockyard.api.openapi import contract

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    return contract(request.app)


@router.get("/docs")
async def docs(principal: PrincipalDep) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Dockyard API")

"""``/registries``: registry credentials for pulls and pushes (the password never leaves)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.registries import CreateRegistry, RegistryList, RegistryOut

router = APIRouter(prefix="/registries", tags=["images"])


@router.get("")
async def list_registries(principal: PrincipalDep, services: ServicesDep) -> RegistryList:
    """The caller's registry credentials and the shared ones (admins: everyone's)."""
    found = await services.registries.list(principal)
    return RegistryList(registries=[RegistryOut.from_stored(r) for r in found])


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_registry(
    body: CreateRegistry, principal: PrincipalDep, services: ServicesDep
) -> RegistryOut:
    """Save credentials for a registry (stored encrypted; the password is never shown)."""
    stored = await services.registries.create(
        principal,
        server=body.server,
        username=body.username,
        password=body.password,
        shared=body.shared,
    )
    return RegistryOut.from_stored(stored)


@router.delete("/{registry_id}", status_code=204)
async def delete_registry(
    registry_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Forget a registry's credentials."""
    await services.registries.delete(principal, registry_id)
    return Response(status_code=204)

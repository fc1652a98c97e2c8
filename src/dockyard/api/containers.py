"""Container routes (SPEC §4; files and terminal live in their own modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response

from dockyard.api.deps import PageParams, PrincipalDep, Services, ServicesDep, paged
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.containers import (
    ContainerOut,
    ContainerPage,
    ContainerStatusOut,
    CreateContainer,
    PortsBody,
    ScaleBody,
    UpdateContainer,
)
from dockyard.domain.access.permissions import Permission
from dockyard.domain.automation.lifetime import FIELDS as TIMER_FIELDS
from dockyard.domain.containers.lifecycle import Action
from dockyard.domain.containers.provision import FIELDS as PROVISION_FIELDS
from dockyard.domain.containers.provision import Provision
from dockyard.domain.containers.service import MAX_PAGE
from dockyard.domain.containers.specs import iter_statuses
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.models import ContainerRecord, ContainerSpec

router = APIRouter(prefix="/containers", tags=["containers"])


async def _out(record: ContainerRecord, services: Services) -> ContainerOut:
    return (await _page_out([record], services))[0]


async def _page_out(records: Sequence[ContainerRecord], services: Services) -> list[ContainerOut]:
    """A page of containers: one engine call for the replicas of all the scaled ones; on
    an engine that cannot be reached they read ``unknown`` (with when it last answered)."""
    containers = services.containers
    replicas = await containers.replica_states_of(records)
    outs = []
    for record in records:
        health = services.engines.watcher.health(record.engine)
        unreachable = record.engine != LOCAL and health.reachable is False
        outs.append(
            ContainerOut.from_record(
                containers.with_activity(record),
                containers.public_host,
                replicas[record.cuid],
                unreachable=unreachable,
                last_seen=health.last_seen,
            )
        )
    return outs


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
async def create_container(
    body: CreateContainer, principal: PrincipalDep, services: ServicesDep
) -> ContainerOut:
    """Create a container (and start it with "start": true)."""
    wanted = Provision.parse(
        script=body.script,
        script_url=body.script_url,
        data_url=body.data_url,
        data_path=body.data_path,
    )
    fields = body.model_dump(
        exclude={"start", "owner", "engine", "constraints", *PROVISION_FIELDS, *TIMER_FIELDS}
    )
    timers = body.model_dump(include=set(TIMER_FIELDS), exclude_unset=True)
    spec = ContainerSpec.model_validate(fields)
    provision = None
    if wanted is not None:
        principal.require(Permission.FILES_WRITE)

        async def provision(record: ContainerRecord) -> None:
            await services.files.provision(record, wanted)

    record = await services.containers.create(
        principal,
        spec,
        start=body.start,
        provision=provision,
        owner=body.owner,
        timers=timers,
        placement=body.placement,
    )
    return await _out(record, services)


@router.get("")
async def list_containers(
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=50, maximum=MAX_PAGE)],
    status: str | None = Query(default=None, description="comma list, e.g. running,paused"),
    tag: str | None = None,
    image: str | None = None,
    owner: str | None = Query(
        default=None, description="one account's containers (admins; others: their own only)"
    ),
) -> ContainerPage:
    """List containers, newest first, with cursor pagination."""
    page = await services.containers.page(
        principal,
        statuses=list(iter_statuses(status)),
        tag=tag,
        image=image,
        limit=paging.limit,
        cursor=paging.cursor,
        owner=owner,
    )
    return ContainerPage(
        containers=await _page_out(page.items, services),
        next_cursor=page.next_cursor,
    )


@router.get("/{cuid}")
async def get_container(cuid: str, principal: PrincipalDep, services: ServicesDep) -> ContainerOut:
    """One container, with its live state."""
    return await _out(await services.containers.get(principal, cuid), services)


@router.patch("/{cuid}")
async def update_container(
    cuid: str, body: UpdateContainer, principal: PrincipalDep, services: ServicesDep
) -> ContainerOut:
    """Change env, tags, resources or image (a running container is recreated); or
    {"status": "stopped" | "running"} alone, to stop or start it."""
    patch = body.model_dump(exclude_unset=True)
    record = await services.containers.update(principal, cuid, patch)
    return await _out(record, services)


@router.delete("/{cuid}", status_code=204)
async def delete_container(cuid: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Stop and remove the container, its project and its folder."""
    principal.require(Permission.CONTAINERS_DELETE)
    await services.containers.delete(principal, cuid)
    return Response(status_code=204)


@router.patch("/{cuid}/ports")
async def update_ports(
    cuid: str, body: PortsBody, principal: PrincipalDep, services: ServicesDep
) -> ContainerOut:
    """Replace the port bindings."""
    record = await services.containers.set_ports(principal, cuid, body.ports)
    return await _out(record, services)


@router.post("/{cuid}/scale")
async def scale_container(
    cuid: str,
    principal: PrincipalDep,
    services: ServicesDep,
    body: ScaleBody | None = None,
    count: int | None = Query(default=None, description="seed 004's form of replicas"),
) -> ContainerOut:
    """Run N replicas of the container ({"replicas": N} or ?count=N)."""
    replicas = body.replicas if body is not None else None
    record = await services.containers.scale(principal, cuid, replicas, count=count)
    return await _out(record, services)


@router.get("/{cuid}/status")
async def container_status(
    cuid: str, principal: PrincipalDep, services: ServicesDep
) -> ContainerStatusOut:
    """Status, exit code, OOM kill, times, restart count, health."""
    record, state = await services.containers.live(principal, cuid)
    # The engine's flag, or exit 137 after an `oom` event seen since the last start.
    oom_killed = state.oom_killed or (
        record.exit_code == 137
        and await services.events.oom_seen(record.cuid, state.started_at, state.finished_at)
    )
    return ContainerStatusOut.from_state(record, state, oom_killed=oom_killed)


def _action_route(action: Action) -> None:
    async def endpoint(cuid: str, principal: PrincipalDep, services: ServicesDep) -> ContainerOut:
        record = await services.containers.act(principal, cuid, action)
        return await _out(record, services)

    endpoint.__name__ = f"{action.value}_container"
    router.add_api_route(
        f"/{{cuid}}/{action.value}",
        endpoint,
        methods=["POST"],
        response_model=ContainerOut,
        summary=f"{action.value.capitalize()} the container",
        name=f"{action.value}_container",
    )


for _action in Action:
    _action_route(_action)

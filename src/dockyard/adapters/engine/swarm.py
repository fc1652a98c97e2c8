"""An engine of kind ``swarm``: containers as Swarm stacks (issue 12, docs/engines.md "Swarm").

``SwarmEngine`` is the ``DockerEngine`` of a Swarm manager whose containers are the tasks
of the service ``<cuid>_app``: every per-container call (inspect, exec, attach, logs,
archives, stats) goes to the container of the task in that slot (``com.docker.swarm.
service.name``, single node: on this same engine); while no task has a container, the
archive calls reach ``/app`` through a helper container that is created, never started,
with the volume mounted (``dockyard-<cuid>-files``). Status comes from the tasks.

``SwarmStack`` is its ``ComposeRunner``: ``write`` turns the Compose document into the
stack document and checks it (``domain/containers/swarm_doc.py``), then ``docker stack
deploy`` runs it with the wanted replicas (0 for create and stop, N for up and start;
argv lists, no shell, the engine's ``DOCKER_HOST``). ``down`` is ``docker stack rm``, then
the helper and the volume go once the tasks' containers are gone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from dockyard.adapters.compose import CliComposeRunner
from dockyard.adapters.compose.runner import COMPOSE_FILE
from dockyard.adapters.engine.client import MANAGED, DockerEngine
from dockyard.adapters.engine.swarm_tasks import (
    EPOCH,
    PENDING,
    Service,
    Task,
    published_of,
    reach_task,
    service_row,
    state_of_service,
    status_of_tasks,
    task_events,
    task_of,
    unschedulable,
)
from dockyard.domain.containers.compose_doc import APP_MOUNT, SERVICE, app_volume_name
from dockyard.domain.containers.swarm_doc import (
    check_stack,
    constraints_of,
    replicas_of,
    stack_document,
)
from dockyard.domain.models import LiveState, Status
from dockyard.domain.ports import EngineEvent, ManagedContainer, ReplicaState
from dockyard.errors import EngineError, EngineUnavailableError, StateError

_POLL = 0.1  # between two looks at the tasks while waiting for a state
FOLLOW_INTERVAL = 1.0  # between two looks of the follower at the tasks of all services


def service_of(cuid: str) -> str:
    return f"{cuid}_{SERVICE}"


def files_name(cuid: str) -> str:
    """The helper container through which a volume's ``/app`` is reached with no task."""
    return f"dockyard-{cuid}-files"


class SwarmEngine(DockerEngine):
    """``Engine`` of a Swarm manager: a container is the tasks of its service."""

    # Swarm node id -> the registered engine that is that node (none known yet).
    node_engines: Mapping[str, str] = MappingProxyType({})
    _own_node: str | None = None

    async def own_node(self) -> str:
        """The manager's own swarm node id (``/info``, asked once)."""
        if self._own_node is None:
            info = await self._http().call("GET", "info")
            self._own_node = str(((info or {}).get("Swarm") or {}).get("NodeID") or "")
        return self._own_node

    async def tasks(self, cuid: str) -> list[Task]:
        filters = json.dumps({"service": [service_of(cuid)]})
        rows = await self._http().call("GET", "tasks", params={"filters": filters}, missing_ok=True)
        return [task_of(row) for row in rows or []]

    async def service(self, cuid: str) -> dict[str, Any] | None:
        found = await self._http().call("GET", f"services/{service_of(cuid)}", missing_ok=True)
        return found if isinstance(found, dict) else None

    async def _target(self, cuid: str, replica: int = 1) -> str:
        tasks = [t for t in await self.tasks(cuid) if t.container_id]
        ranked = sorted(
            tasks,
            key=lambda t: (t.state == "running", t.slot == replica, t.at or EPOCH),
            reverse=True,
        )
        mine = [t for t in ranked if t.slot == replica] or (ranked if replica == 1 else [])
        running = [t for t in mine if t.state == "running"]
        for chosen in running or mine:
            if chosen.container_id:
                # Another node's container is not this engine's (409 unless an engine
                # of that node is known; none is yet: docs/engines.md "Swarm").
                if reach_task(chosen.node, await self.own_node(), self.node_engines):
                    raise StateError(
                        f"the task runs on swarm node {chosen.node}, reached through"
                        " another engine: not supported yet",
                        code="SWARM_NODE_UNREACHABLE",
                        details={"node": chosen.node},
                    )
                return chosen.container_id
        return files_name(cuid)  # /app with no task: the helper (archives only)

    async def inspect(self, cuid: str) -> LiveState | None:
        service = await self.service(cuid)
        if service is None:
            return None
        return state_of_service(service, await self.tasks(cuid))

    # -- the follower and the reconcile (swarm_tasks.py) ------------------------------

    async def managed(self) -> tuple[dict[str, Service], list[dict[str, Any]], list[Task]]:
        """Dockyard's services (by id; and as listed), and their tasks: two calls."""
        filters = json.dumps({"label": [MANAGED]})
        rows = await self._http().call("GET", "services", params={"filters": filters})
        services: dict[str, Service] = {}
        for row in rows or []:
            found = service_row(row)
            if found is not None:
                services[found.id] = found
        tasks = await self._http().call("GET", "tasks") if services else []
        mine = [t for t in map(task_of, tasks or []) if t.service in services]
        return services, list(rows or []), mine

    async def list_managed(self) -> list[ManagedContainer]:
        """One per service of Dockyard's (its status from its tasks), not the task
        containers: those on other nodes are not this engine's to list."""
        services, rows, tasks = await self.managed()
        out = []
        for row in rows:
            found = services.get(str(row.get("ID", "")))
            if found is None:
                continue
            state = state_of_service(row, [t for t in tasks if t.service == found.id])
            labels = ((row.get("Spec") or {}).get("Labels")) or {}
            out.append(ManagedContainer(found.cuid, dict(labels), state.status))
        return out

    async def stream_events(self) -> AsyncIterator[EngineEvent]:
        """The tasks' changes as container events, polled every ``FOLLOW_INTERVAL``
        (each look within the engine's deadline; an engine error ends the stream and the
        follower reconnects, as for an event stream)."""
        seen = {t.id: t for t in (await self.managed())[2]}
        yield EngineEvent(cuid="", action="connected")
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)  # the poll's period, not a synchronisation
            services, _, tasks = await self.managed()
            for event in task_events(seen, tasks, services):
                yield event
            seen = {t.id: t for t in tasks}

    async def list_replicas(self, cuid: str) -> list[ReplicaState]:
        """One state per slot wanted running; every replica shares the mesh's ports."""
        service = await self.service(cuid)
        if service is None:
            return []
        ports = published_of(service)
        by_slot: dict[int, list[Task]] = {}
        for task in await self.tasks(cuid):
            if task.desired == "running":
                by_slot.setdefault(task.slot, []).append(task)
        return [
            ReplicaState(slot, status_of_tasks(1, tasks).status, ports)
            for slot, tasks in sorted(by_slot.items())
        ]

    async def replicas_of_many(self, cuids: Collection[str]) -> dict[str, list[ReplicaState]]:
        return {cuid: await self.list_replicas(cuid) for cuid in cuids}

    # -- what a stack needs around it ---------------------------------------------

    async def ensure_overlay(self, name: str) -> None:
        """Dockyard's attachable overlay network on this swarm (made once)."""
        await self.make_network(name, "overlay", Attachable=True)

    async def ensure_volume(self, cuid: str, image: str, owner: bytes) -> None:
        """The ``/app`` volume, given to the containers' user through the helper."""
        labels = {"dockyard.managed": "true", "dockyard.cuid": cuid}
        volume = {"Name": app_volume_name(cuid), "Labels": labels}
        await self._http().call("POST", "volumes/create", body=volume)
        helper = {
            "Image": image,
            "Cmd": ["true"],
            "Labels": labels,
            "NetworkDisabled": True,
            "HostConfig": {
                "Mounts": [
                    {"Type": "volume", "Source": app_volume_name(cuid), "Target": APP_MOUNT}
                ],
                "NetworkMode": "none",
            },
        }
        name = files_name(cuid)
        if await self._http().call("GET", f"containers/{name}/json", missing_ok=True) is None:
            try:
                await self._http().call(
                    "POST", "containers/create", params={"name": name}, body=helper
                )
            except EngineError as exc:
                if exc.details.get("engine_status") != 409:  # made meanwhile
                    raise
            await self.put_archive(cuid, "/", owner)  # no task yet: the helper's

    async def task_containers(self, cuid: str) -> list[str]:
        label = f"com.docker.swarm.service.name={service_of(cuid)}"
        rows = await self._http().call(
            "GET",
            "containers/json",
            params={"all": "1", "filters": json.dumps({"label": [label, MANAGED]})},
        )
        return [str(row["Id"]) for row in rows or []]

    async def remove_volume(self, cuid: str) -> None:
        """The helper, then the volume (once no task's container holds it)."""
        params = {"force": "1", "v": "0"}
        await self._http().call(
            "DELETE", f"containers/{files_name(cuid)}", params=params, missing_ok=True
        )
        for container_id in await self.task_containers(cuid):
            await self._http().call(
                "DELETE", f"containers/{container_id}", params=params, missing_ok=True
            )
        await self._http().call("DELETE", f"volumes/{app_volume_name(cuid)}", missing_ok=True)


class SwarmStack:
    """``ComposeRunner`` of a swarm engine: each project is a stack."""

    def __init__(
        self,
        cli: CliComposeRunner,
        engine: SwarmEngine,
        *,
        docker: str,
        network: str,
        owner: bytes,
        timeout: float,
    ) -> None:
        """``cli``: a runner with this engine's environment, ``docker`` the CLI it runs;
        ``network``: the overlay network's name; ``owner``: the tar that chowns /app."""
        self._cli = cli
        self._docker_bin = docker
        self._engine = engine
        self._network = network
        self._owner = owner
        self._timeout = timeout
        self._replicas: dict[str, int] = {}  # cuid -> the document's replicas
        self._constraints: dict[str, dict[str, str]] = {}  # cuid -> the record's
        self._ready: set[str] = set()  # stacks whose network and volume exist

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None:
        """The stack document, checked (nothing reaches the engine if it is refused)."""
        cuid = str(document["name"])
        replicas = replicas_of(document)
        constraints = constraints_of(document)  # the record's (400 INVALID_CONSTRAINT)
        stack = stack_document(
            document, network=self._network, replicas=replicas, constraints=constraints
        )
        check_stack(stack, cuid, self._network, constraints)
        self._replicas[cuid] = replicas
        self._constraints[cuid] = constraints
        await self._cli.write(project_dir, stack)

    async def create(self, project: str, project_dir: Path) -> None:
        await self._deploy(project, project_dir, 0)

    async def up(self, project: str, project_dir: Path) -> None:
        before = {t.id for t in await self._engine.tasks(project)}
        wanted = await self._deploy(project, project_dir, None)
        await self._settle(project, before, wanted)

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        if verb in ("start", "recreate"):
            await self.up(project, project_dir)
        elif verb in ("stop", "kill", "recreate-stopped"):
            await self._deploy(project, project_dir, 0)
            await self._until(project, lambda s: s is not Status.RUNNING)
        elif verb == "restart":
            wanted = await self._deploy(project, project_dir, None)
            before = {t.id for t in await self._engine.tasks(project)}
            argv = ["service", "update", "--force", "--detach", service_of(project)]
            await self._docker(argv, "service.update", project)
            await self._settle(project, before, wanted, fresh=True)
        else:
            raise StateError(
                f"{verb} is not possible for a container on a swarm engine",
                code="SWARM_UNSUPPORTED",
                details={"action": verb},
            )

    async def down(self, project: str, project_dir: Path) -> None:
        if await self._engine.service(project) is not None:
            await self._docker(["stack", "rm", project], "stack.rm", project)
        deadline = time.monotonic() + self._timeout
        while await self._engine.service(project) is not None:
            if time.monotonic() > deadline:
                raise EngineUnavailableError(
                    f"stack {project} was not removed in time", code="SWARM_TIMEOUT"
                )
            await asyncio.sleep(_POLL)  # polling the engine's state, with a deadline
        await self._engine.remove_volume(project)
        self._ready.discard(project)
        self._replicas.pop(project, None)
        self._constraints.pop(project, None)

    async def version(self) -> str:
        return await self._engine.version()

    async def _deploy(self, project: str, project_dir: Path, replicas: int | None) -> int:
        """``docker stack deploy`` of the written document with ``replicas`` (None: the
        document's own count); the replicas deployed."""
        path = project_dir / COMPOSE_FILE
        stack: dict[str, Any] = await asyncio.to_thread(_load, path)
        if project not in self._ready:
            await self._engine.ensure_overlay(self._network)
            image = str(stack["services"][SERVICE]["image"])
            await self._engine.ensure_volume(project, image, self._owner)
            self._ready.add(project)
        wanted = self._replicas.get(project, stack["services"][SERVICE]["deploy"]["replicas"])
        if replicas is None:
            replicas = wanted
        stack["services"][SERVICE]["deploy"]["replicas"] = replicas
        if replicas:
            await self._reaped(project)
        check_stack(stack, project, self._network, self._constraints.get(project))
        await self._cli.write(project_dir, stack)
        self._replicas[project] = wanted
        argv = ["stack", "deploy", "--prune", "--resolve-image", "never", "-c", str(path)]
        await self._docker([*argv, project], "stack.deploy", project)
        return replicas

    async def _docker(self, args: list[str], verb: str, project: str) -> None:
        await self._cli.run_argv([self._docker_bin, *args], verb=verb, project=project)

    async def _settle(
        self, project: str, before: set[str], wanted: int, *, fresh: bool = False
    ) -> None:
        """Wait (polling the tasks, within the deadline) until the tasks made since
        ``before`` have all started or ended, or (unless ``fresh``: new ones are due)
        ``wanted`` tasks run with none pending."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            tasks = await self._engine.tasks(project)
            new = [t for t in tasks if t.id not in before]
            if new and all(t.state not in PENDING or unschedulable(t) for t in new):
                return  # started, ended, or no node for them (the status says so)
            live = [t for t in tasks if t.desired == "running"]
            running = sum(1 for t in live if t.state == "running")
            pending = any(t.state in PENDING for t in live)
            if not fresh and running >= wanted and not pending:
                return
            await asyncio.sleep(_POLL)  # polling the engine's state, with a deadline

    async def _reaped(self, project: str) -> None:
        """Wait until the tasks a scale-down removes are gone: a scale-up while one is
        still being reaped makes no new task on engine 20.10 (seen here: the service
        then runs nothing; docs/engines.md "Swarm")."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if not any(t.desired == "remove" for t in await self._engine.tasks(project)):
                return
            await asyncio.sleep(_POLL)  # polling the engine's state, with a deadline

    async def _until(self, project: str, done: Any) -> None:
        """Wait (polling the tasks, within the deadline) until the status satisfies ``done``."""
        deadline = time.monotonic() + self._timeout
        while True:
            state = await self._engine.inspect(project)
            if state is None or done(state.status) or time.monotonic() > deadline:
                return
            await asyncio.sleep(_POLL)  # polling the engine's state, with a deadline


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}

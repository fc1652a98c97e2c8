"""The swarm follower's view of tasks (adapters/engine/swarm_tasks.py): each task that
changed between two looks is the event a container's would be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.adapters.engine.swarm_tasks import (
    Service,
    Task,
    reach_task,
    service_row,
    task_events,
)
from dockyard.domain.observe.events import from_engine
from dockyard.errors import StateError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SERVICES = {"s1": Service("s1", "c-one", "alice")}


def task(
    tid: str, state: str, *, desired: str = "running", code: int | None = None, err: str = ""
) -> Task:
    at = T0 + timedelta(seconds=len(state))
    return Task(tid, 1, desired, state, "cid", code, at, err, service="s1", node="n1")


def test_a_task_that_starts_then_fails_is_start_then_die_with_its_code() -> None:
    before = {"t1": task("t1", "starting")}
    (started,) = task_events(before, [task("t1", "running")], SERVICES)
    assert (started.cuid, started.action) == ("c-one", "start")
    assert started.attributes["dockyard.owner"] == "alice"
    (died,) = task_events({"t1": task("t1", "running")}, [task("t1", "failed", code=3)], SERVICES)
    assert died.action == "die" and died.attributes["exitCode"] == "3"
    recorded = from_engine(died)
    assert recorded is not None and recorded.type == "die" and recorded.details == {"exit_code": 3}


def test_the_swarm_restarting_a_task_is_a_new_start() -> None:
    before = {"t1": task("t1", "running")}
    now = [task("t1", "failed", desired="shutdown", code=1), task("t2", "running")]
    assert [e.action for e in task_events(before, now, SERVICES)] == ["die", "start"]


def test_nothing_changed_nothing_said_and_other_services_are_not_ours() -> None:
    same = task("t1", "running")
    assert task_events({"t1": same}, [same], SERVICES) == []
    stranger = Task("t9", 1, "running", "running", "x", None, T0, service="other")
    assert task_events({}, [stranger], SERVICES) == []
    # Ended before the first look: old news, not a new death.
    assert task_events({}, [task("t0", "complete", desired="shutdown")], SERVICES) == []


def test_a_task_no_node_can_take_is_heard_but_not_recorded() -> None:
    stuck = task("t1", "pending", err="no suitable node (scheduling constraints not satisfied)")
    (event,) = task_events({"t1": task("t1", "pending")}, [stuck], SERVICES)
    assert event.action == "task:pending" and "no suitable node" in event.attributes["swarm.error"]
    assert from_engine(event) is None


def test_services_without_dockyards_label_are_not_ours() -> None:
    assert service_row({"ID": "x", "Spec": {"Labels": {}}}) is None
    row = {"ID": "s1", "Spec": {"Labels": {"dockyard.cuid": "c1", "dockyard.owner": "bob"}}}
    assert service_row(row) == Service("s1", "c1", "bob")


def test_a_task_on_the_managers_own_node_is_reached_through_it() -> None:
    assert reach_task("n1", "n1", {}) is None
    assert reach_task("", "n1", {}) is None  # not placed yet: no container anywhere


def test_a_task_on_another_node_goes_to_that_nodes_engine_or_is_a_clear_409() -> None:
    assert reach_task("n2", "n1", {"n2": "worker-2"}) == "worker-2"
    with pytest.raises(StateError) as caught:
        reach_task("n3", "n1", {"n2": "worker-2"})
    assert caught.value.code == "SWARM_NODE_UNREACHABLE"
    assert caught.value.details["node"] == "n3" and "n3" in caught.value.message

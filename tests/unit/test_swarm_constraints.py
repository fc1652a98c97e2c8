"""A create's constraints as the swarm's node constraints (swarm_doc.py): carried from
the record through the Compose document, refused when they could be another expression,
and on the stack exactly those."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain.containers.compose_doc import Placement, compose_document
from dockyard.domain.containers.swarm_doc import (
    CONSTRAINTS_LABEL,
    check_stack,
    node_constraints,
    stack_document,
)
from dockyard.domain.models import ContainerSpec
from dockyard.errors import ValidationError

CUID = "c12345678-1234-1234-1234-123456789abc"
NET = "dockyard-swarm"


def compose(constraints: dict[str, str] | None = None) -> dict[str, Any]:
    doc = compose_document(
        CUID,
        "alice",
        ContainerSpec(image="dockyard-test/busybox:latest", command="sleep 1"),
        Path("/unused"),
        Placement("dockyard", "1000:1000", 10),
        boot_py=False,
        volume=True,
    )
    if constraints:  # as reads.document writes them
        doc["services"]["app"]["labels"][CONSTRAINTS_LABEL] = json.dumps(constraints)
    return doc


def test_the_documents_constraints_reach_the_stack_and_pass_its_check() -> None:
    stack = stack_document(compose({"region": "eu", "disk": "ssd"}), network=NET, replicas=1)
    assert stack["services"]["app"]["deploy"]["placement"] == {
        "constraints": ["node.labels.disk == ssd", "node.labels.region == eu"]
    }
    check_stack(stack, CUID, NET)  # the label's constraints
    check_stack(stack, CUID, NET, {"region": "eu", "disk": "ssd"})


def test_no_constraints_no_placement() -> None:
    stack = stack_document(compose(), network=NET, replicas=1)
    assert "placement" not in stack["services"]["app"]["deploy"]
    check_stack(stack, CUID, NET)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("region", "eu == x"),
        ("region", "eu,node.role==manager"),
        ("region", "eu\nnode.role == manager"),
        ("region", "eu != x"),
        ("region", "e u"),
        ("region", "*"),
        ("region", ""),  # a bare engine label: no node constraint can say it
        ("region == eu,node.role", "manager"),
        ("a:b", "x"),
        ("1abc", "x"),
    ],
)
def test_a_constraint_that_could_be_another_expression_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        stack_document(compose({key: value}), network=NET, replicas=1)
    assert caught.value.code == "INVALID_CONSTRAINT"  # a ValidationError: 400
    with pytest.raises(ValidationError):
        node_constraints({key: value})


@pytest.mark.parametrize(
    "constraints",
    [
        ["node.labels.region == eu", "node.role == manager"],
        ["node.labels.region == us"],
        ["node.labels.region != eu"],
        [],
    ],
)
def test_the_stack_carries_exactly_the_records_constraints(constraints: list[str]) -> None:
    stack = copy.deepcopy(stack_document(compose({"region": "eu"}), network=NET, replicas=1))
    stack["services"]["app"]["deploy"]["placement"] = {"constraints": constraints}
    with pytest.raises(ValidationError) as caught:
        check_stack(stack, CUID, NET, {"region": "eu"})
    assert caught.value.code == "HOST_ACCESS_DENIED"


def test_constraints_not_asked_are_refused_on_the_stack() -> None:
    stack = stack_document(compose(), network=NET, replicas=1)
    stack["services"]["app"]["deploy"]["placement"] = {"constraints": ["node.labels.region == eu"]}
    with pytest.raises(ValidationError):
        check_stack(stack, CUID, NET)

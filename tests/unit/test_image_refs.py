"""Image references: parsed, spelled one way, and their registry."""

from __future__ import annotations

import pytest

from dockyard.domain.images.refs import (
    canonical,
    is_image_id,
    parse_ref,
    registry_of,
    same_server,
)
from dockyard.errors import ValidationError


@pytest.mark.parametrize(
    ("ref", "registry", "name", "spelled"),
    [
        ("busybox", "docker.io", "busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io", "busybox", "docker.io/library/busybox:1.36"),
        (
            "dockyard-test/busybox:latest",
            "docker.io",
            "dockyard-test/busybox",
            "docker.io/dockyard-test/busybox:latest",
        ),
        ("docker.io/library/busybox", "docker.io", "busybox", "docker.io/library/busybox:latest"),
        (
            "127.0.0.1:5000/team/app:v1",
            "127.0.0.1:5000",
            "127.0.0.1:5000/team/app",
            "127.0.0.1:5000/team/app:v1",
        ),
        ("localhost/app", "localhost", "localhost/app", "localhost/app:latest"),
        (
            "ghcr.io/o/r@sha256:" + "a" * 64,
            "ghcr.io",
            "ghcr.io/o/r",
            "ghcr.io/o/r@sha256:" + "a" * 64,
        ),
    ],
)
def test_references(ref: str, registry: str, name: str, spelled: str) -> None:
    parsed = parse_ref(ref)
    assert (parsed.registry, parsed.name, parsed.canonical) == (registry, name, spelled)
    assert registry_of(ref) == registry


@pytest.mark.parametrize(
    "ref", ["", "UPPER/case", "a b", "-x", "x:", "x:-tag", "x@sha256:short", "../x", "a" * 600]
)
def test_what_is_not_a_reference(ref: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_ref(ref)
    assert refused.value.code == "INVALID_IMAGE_REF"


def test_ids_and_servers() -> None:
    assert is_image_id("sha256:" + "b" * 64) and is_image_id("93f2f0816c3e")
    assert not is_image_id("busybox")
    assert canonical("sha256:" + "b" * 64) is None
    assert canonical("busybox") == canonical("docker.io/library/busybox:latest")
    assert same_server("https://Index.Docker.io/v1/", "docker.io")
    assert same_server("127.0.0.1:5000", "http://127.0.0.1:5000")
    assert not same_server("127.0.0.1:5000", "127.0.0.1:5001")

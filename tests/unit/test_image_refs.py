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
    ("ref", "registry", "repository", "tag", "digest"),
    [
        # Only a registry may have capitals, and only one that looks like a host.
        ("Registry.Example.com/team/app", "Registry.Example.com", "team/app", None, None),
        ("LOCAL.host:5000/app:V1", "LOCAL.host:5000", "app", "V1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        # No dot, colon or localhost: the first part is a Docker Hub path component.
        ("team-x/app", "docker.io", "team-x/app", None, None),
        ("a--b/c__d/e.f_g", "docker.io", "a--b/c__d/e.f_g", None, None),
        ("index.docker.io/me/app", "docker.io", "me/app", None, None),
        ("app:Tag_1.0-rc", "docker.io", "library/app", "Tag_1.0-rc", None),
        ("app@sha256:" + "0" * 64, "docker.io", "library/app", None, "sha256:" + "0" * 64),
        (
            "app@sha256+b64u.x:" + "A" * 32,
            "docker.io",
            "library/app",
            None,
            "sha256+b64u.x:" + "A" * 32,
        ),
        ("a" * 64 + ":tag", "docker.io", "library/" + "a" * 64, "tag", None),
    ],
)
def test_grammar(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_ref(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "UPPER/case",  # no dot, colon or localhost: a path component, and those are lowercase
        "Upper/case:tag",
        "LOCALHOST/app",  # only the lowercase spelling is the local host
        "team/App",
        "registry.io/Team/app",
        "registry.io:5000/app/UPPER",
        "a b",
        "-x",
        "x-",
        "a._b",
        "a___b",
        "x:",
        "x:-tag",
        "x:" + "t" * 129,
        "x:t\u00e9st",  # Python's \w would take any letter; the grammar's is ASCII
        "busybox\n",  # ``$`` would have let a trailing newline through
        "x@sha256:short",
        "x@1sha:" + "a" * 32,
        "x@sha256:" + "g" * 64,
        "-registry.io/app",
        "registry.io:port/app",
        "../x",
        "/x",
        "x/",
        "a" * 64,  # an image id, never a repository name
        "x/" + "a" * 254,  # a name of more than 255 characters
        "a" * 600,
    ],
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

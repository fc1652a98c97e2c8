"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker_helpers import PYTHON, docker, image_present


@pytest.fixture
def seed_image() -> Iterator[str]:
    """The seed's examples name python:3.12-slim; nothing is pulled here, so the local
    python test image stands in under that name (only when it is not there already)."""
    name = "python:3.12-slim"
    existed = image_present(name)
    if not existed:
        docker("tag", PYTHON, name)
    try:
        yield name
    finally:
        if not existed:
            docker("rmi", name, check=False)

"""Request and response bodies that are not domain models themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dockyard.domain.models import ContainerSpec, Port


class CreateContainer(ContainerSpec):
    start: bool = Field(default=False, description="start it right away")
    # Create-time inputs, put into /app before the first start; not part of the spec.
    script: str | None = Field(
        default=None,
        max_length=16 * 1024 * 1024,
        description="base64 text written to /app/boot.py",
    )
    script_url: str | None = Field(
        default=None, max_length=4096, description="fetched and written to /app/boot.py"
    )
    data_url: str | None = Field(
        default=None,
        max_length=4096,
        description="fetched into data_path; a ZIP or tar (.gz, .bz2, .xz) is unpacked",
    )
    data_path: str | None = Field(
        default=None, description="folder under /app for data_url (default /app)"
    )


class UpdateContainer(BaseModel):
    """PATCH body: env merged (null removes a key), tags replaced, resources merged,
    image replaced."""

    model_config = ConfigDict(extra="forbid")

    env: dict[str, str | None] | None = None
    tags: list[str] | None = None
    resources: dict[str, Any] | None = None
    image: str | None = None
    labels: dict[str, str] | None = None
    restart: str | None = None
    command: str | list[str] | None = None
    name: str | None = None


class PortsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ports: list[Port] = Field(max_length=64)


class ContainerOut(BaseModel):
    """The container object of SPEC §4."""

    model_config = ConfigDict(extra="allow")
    cuid: str
    status: str


class ContainerPage(BaseModel):
    containers: list[dict[str, Any]]
    next_cursor: str | None

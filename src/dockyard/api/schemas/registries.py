"""Registry credential bodies: the password goes in, never out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dockyard.api.schemas.common import Instant, Out, iso
from dockyard.domain.images.registries import StoredRegistry


class CreateRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: str = Field(
        min_length=1, max_length=255, description="host[:port], e.g. registry.example.com:5000"
    )
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(
        min_length=1, max_length=4096, description="password or token; never returned"
    )
    shared: StrictBool = Field(default=False, description="usable by every account (admins only)")


class RegistryOut(Out):
    id: str
    server: str
    username: str
    shared: bool
    owner: str
    created_at: Instant

    @classmethod
    def from_stored(cls, stored: StoredRegistry) -> RegistryOut:
        return cls(
            id=stored.id,
            server=stored.server,
            username=stored.username,
            shared=stored.shared,
            owner=stored.owner,
            created_at=iso(stored.created_at),
        )


class RegistryList(Out):
    registries: list[RegistryOut]

"""Pieces shared by the response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _iso(value: datetime) -> str:
    return value.isoformat()


# ``datetime.isoformat()`` ("+00:00"), as the API has always sent, not pydantic's "Z".
Instant = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

# A timestamp the domain hands over already rendered (file listings, metrics).
InstantText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

NextCursor = Annotated[
    str | None, Field(description="pass as cursor= for the next page; null on the last")
]


class Out(BaseModel):
    """A response body: exactly the declared fields."""

    model_config = ConfigDict(extra="forbid")

"""Pieces shared by the response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# A timestamp as the API has always sent it: ``datetime.isoformat()`` ("+00:00", not
# pydantic's "Z"). Rendered by ``iso`` when the model is built, so that serialising it
# stays in pydantic-core (a Python serializer per field costs ~2 µs a container).
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

NextCursor = Annotated[
    str | None, Field(description="pass as cursor= for the next page; null on the last")
]


def iso(value: datetime) -> str:
    return value.isoformat()


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Out(BaseModel):
    """A response body: exactly the declared fields."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Out):
    """SPEC §9's error body: every 4xx and 5xx answer has this shape."""

    error: str = Field(description="the kind, e.g. validation_error, not_found, conflict")
    code: str = Field(description="what exactly, e.g. MISSING_IMAGE")
    message: str
    status: int = Field(description="the HTTP status, repeated")
    request_id: str | None
    timestamp: Instant
    details: dict[str, Any]
    stacktrace: str | None = Field(default=None, description="only with DEV_MODE")

"""The engine's failures, translated once (httpx's ``map_httpcore_exceptions`` is the model).

Every engine call and every read of an engine stream runs inside ``map_engine_errors``;
nothing else in ``adapters/engine`` catches aiodocker's, aiohttp's or the socket's errors.

    raised inside                                comes out as
    ───────────────────────────────────────────  ─────────────────────────────────────────
    EngineStatusError, aiodocker.DockerError
      404, when the caller says what it means    that error (NotFoundError, ...)
      900 (aiodocker's made-up "cannot connect") EngineUnavailableError ENGINE_UNAVAILABLE
      any other status                           EngineError ENGINE_FAILED, engine_status
    aiohttp.ClientError (read timeouts too)      EngineUnavailableError ENGINE_UNAVAILABLE
    TimeoutError (our deadline)                  EngineUnavailableError ENGINE_TIMEOUT
    OSError (the socket: refused, reset)         EngineUnavailableError ENGINE_UNAVAILABLE
    ValueError (a body that is not JSON)         EngineError ENGINE_FAILED

On a stream (``stream="log"``) the unavailable ones read "the engine's log stream broke".

``DockyardError``s raised inside (a size limit while streaming) pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import aiodocker
import aiohttp

from dockyard.errors import (
    DockyardError,
    EngineError,
    EngineUnavailableError,
)

# aiodocker reports "cannot connect" as a made-up HTTP status.
AIODOCKER_CONNECT_FAILED = 900
UNREACHABLE = "the Docker engine cannot be reached"


class EngineStatusError(aiodocker.DockerError):
    """The engine answered one of our own requests with an error status.

    A ``DockerError`` so that answers to our requests and to aiodocker's are one kind."""


@contextmanager
def map_engine_errors(
    what: str,
    *,
    not_found: Callable[[], DockyardError] | None = None,
    stream: str | None = None,
) -> Iterator[None]:
    """Translate what fails inside into a ``DockyardError``, chained.

    ``what`` names the request in messages ("GET containers/x/json", "the exec session");
    ``not_found`` makes the error a 404 means to the caller; ``stream`` names a stream
    being read ("log"), whose connection failures read "the engine's log stream broke"."""
    try:
        yield
    except DockyardError:
        raise
    except aiodocker.DockerError as exc:
        if exc.status == 404 and not_found is not None:
            raise not_found() from exc
        if exc.status == AIODOCKER_CONNECT_FAILED:
            raise EngineUnavailableError(UNREACHABLE) from exc
        raise EngineError(
            f"the engine refused {what}: {exc.message}", details={"engine_status": exc.status}
        ) from exc
    except aiohttp.ClientError as exc:
        # First: aiohttp's read timeouts are TimeoutErrors too, and a stalled stream is a
        # broken one (as it always was here).
        raise EngineUnavailableError(_broken(stream)) from exc
    except TimeoutError as exc:
        # A frozen or overloaded engine: as unavailable as a dead one (issue 9 #4).
        raise EngineUnavailableError(
            f"the engine did not answer {what} in time", code="ENGINE_TIMEOUT"
        ) from exc
    except OSError as exc:  # the socket itself (refused, reset, gone)
        raise EngineUnavailableError(_broken(stream)) from exc
    except ValueError as exc:  # JSON that does not parse
        raise EngineError(f"the engine's answer to {what} is malformed") from exc


def _broken(stream: str | None) -> str:
    return UNREACHABLE if stream is None else f"the engine's {stream} stream broke"

"""The composition root: the one place where adapters are built and wired.

``build_services(settings, **overrides)`` builds every adapter and service once and
returns a ``Runtime``; tests pass fakes for the engine, Compose, the hasher and the URL
fetcher. ``Runtime.start()`` brings the service up in order (database, accounts,
engine network, reconcile, background tasks); ``Runtime.stop(deadline)`` takes it down
in uvicorn's order: the server has stopped accepting and closed its connections by
then, so it ends terminal sessions, drains the journals (audit, events) within the
deadline, cancels what is left, and closes the adapters.
"""

from dockyard.runtime.lifecycle import STOP_DEADLINE, Runtime
from dockyard.runtime.wiring import build_services

__all__ = ["STOP_DEADLINE", "Runtime", "build_services"]

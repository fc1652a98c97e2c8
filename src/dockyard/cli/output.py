"""How answers are shown: aligned tables for people, JSON for scripts, one line per
error; progress bars and spinners (rich, imported only when one is drawn) on a TTY."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.client.progress import JobLine

Row = Sequence[Any]


def is_tty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_on(stream: IO[Any]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set."""
    return is_tty(stream) and not os.environ.get("NO_COLOR")


def as_data(value: Any) -> Any:
    """A model (or list of them) as plain JSON data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def print_json(value: Any, out: IO[str] | None = None) -> None:
    print(json.dumps(as_data(value), indent=2), file=out or sys.stdout)


def table(headers: Sequence[str], rows: Sequence[Row], out: IO[str] | None = None) -> None:
    """Columns padded to their widest cell, the header first (bold on a terminal)."""
    stream = out or sys.stdout
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    head = "   ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    if colour_on(stream):
        head = f"\033[1m{head}\033[0m"
    print(head, file=stream)
    for row in cells:
        print(
            "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=stream
        )


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(cell_text(v) for v in value)
    return str(value)


def ago(stamp: str | None, now: datetime | None = None) -> str:
    """``2 minutes ago`` for an ISO 8601 instant (as docker ps shows times)."""
    if not stamp:
        return ""
    then = datetime.fromisoformat(stamp)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now" if seconds < 2 else f"{seconds} seconds ago"


def size_text(n: int | float | None) -> str:
    """``1.5MiB``: bytes as people read them."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"  # pragma: no cover - the loop returns


def error_line(err: Any) -> str:
    """``dockyard: <message> (<code>, request <id>)`` for an API error."""
    extra = [str(part) for part in (getattr(err, "code", None),) if part]
    request_id = getattr(err, "request_id", None)
    if request_id:
        extra.append(f"request {request_id}")
    message = getattr(err, "message", None) or str(err)
    return f"dockyard: {message}" + (f" ({', '.join(extra)})" if extra else "")


Progress = Callable[[int, int | None], None]


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    """A byte progress bar on stderr while the block runs (nothing when stderr is not a
    terminal); yields the SDK's ``progress(done, total)`` callback."""
    if not is_tty(sys.stderr):
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@contextmanager
def job_log(label: str) -> Iterator[Callable[[JobLine], None]]:
    """A job's live log (``builds.follow``'s lines): each line printed as it comes; on a
    terminal, below it a bar of the build's steps or a spinner. Yields ``show(line)``."""
    if not is_tty(sys.stderr):

        def plain(line: JobLine) -> None:
            print(line.text, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn

    console = Console(stderr=True, highlight=False)
    columns = (SpinnerColumn(), "{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def show(line: JobLine) -> None:
            bar.console.print(line.text, markup=False)
            if line.starts_step and line.step is not None:
                bar.update(task, completed=line.step - 1, total=line.total_steps)

        yield show


@contextmanager
def spinner(label: str) -> Iterator[None]:
    """A spinner on stderr while the block waits (a terminal only)."""
    if not is_tty(sys.stderr):
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(label):
        yield

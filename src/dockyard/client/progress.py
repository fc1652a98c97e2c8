"""What following a job yields (``builds.follow``): each log line with the build step it
belongs to. Stdlib only.

    job = dy.builds.create(dockerfile="FROM busybox\\nRUN make\\n", tags=["app:1"])
    for line in dy.builds.follow(job.job_id):
        print(f"[{line.step}/{line.total_steps}] {line.text}")
    job = dy.builds.wait(job.job_id)

A pull (``images.pull``) is a job too: its log says what is pulled; its per-layer bytes
are in the job's ``progress`` (``builds.watch`` yields the job as it changes).
"""

from __future__ import annotations

import re
from typing import NamedTuple

STEP = re.compile(r"^Step (\d+)/(\d+)\b")


class JobLine(NamedTuple):
    """One line of a job's log; ``step``/``total_steps`` are those of the last ``Step N/M``
    line so far (None before the first, and for pulls)."""

    text: str
    step: int | None = None
    total_steps: int | None = None
    starts_step: bool = False  # this line is a ``Step N/M : …`` line


def build_step(line: str) -> tuple[int, int] | None:
    """``Step 2/5 : RUN …`` (a build log's step lines) as ``(2, 5)``."""
    found = STEP.match(line)
    return (int(found.group(1)), int(found.group(2))) if found else None


class StepTracker:
    """Turns a job's log lines into ``JobLine``s, remembering the step they are in."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.total: int | None = None

    def line(self, text: str) -> JobLine:
        found = build_step(text)
        if found is not None:
            self.step, self.total = found
        return JobLine(text, self.step, self.total, found is not None)

"""The scripts' tables: columns padded to their widest cell, a rule under the header."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def yes(ok: Any) -> str:
    return "yes" if ok else "NO"


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A blank line, the header, a rule of dashes, then the rows."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for n, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))

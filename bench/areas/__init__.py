"""The areas bench/run.py measures, one module each, numbered as in its table:

1. ``create_delete``: create+start+delete through the API vs raw ``compose up``/``down``
2. ``get``: ``GET /containers/{cuid}`` vs the engine's inspect
3. ``listing``: ``GET /containers?limit=50`` at 1,000 and 10,000 records vs the engine's list
4. ``auth``: an authenticated request vs an open one
5. ``concurrent``: concurrent creates vs as many raw ``compose up`` at once

Each ``bench_*`` returns a dict of figures with its ``target`` and whether it was ``met``.

bench/terminal_bench.py's areas, against a raw exec on the same container:

- ``terminal_sides``: the two sides (``/ws/{cuid}`` and a raw exec) and the CPU accounting;
- ``terminal_keystrokes``: 1. the keystroke round trip;
- ``terminal_throughput``: 2. stdout throughput of ``cat``;
- ``terminal_costs``: 3. each step of a chunk's way, timed in-process, and the breakdown.
"""

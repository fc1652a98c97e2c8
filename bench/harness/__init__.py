"""What the benchmark scripts share: the run's context, its server, timing and statistics,
containers made through the API and through raw Compose, the machine, and the clean-up.

- ``base``: paths, the image, deadlines, ``BenchError``, ``log`` and the small helpers;
- ``stats``: percentiles, summaries, ratios, timed and interleaved request loops, tags;
- ``context``: ``Ctx`` (everything a run makes, so that it can be removed) and ``new_ctx``;
- ``server``: the run's own ``dockyard serve`` and its CPU time;
- ``serverlog``: what the server's logs say (its Compose calls, its own request times);
- ``containers``: a container through the API and the same compose file through Compose;
- ``machine``: what the figures were measured on;
- ``session``: one run from start to clean-up, whatever happens in between;
- ``table``: the scripts' tables, padded to their widest cell.

The scripts run as ``python bench/<script>.py``, so ``bench/`` is first on ``sys.path``
and this package imports as ``harness``.
"""

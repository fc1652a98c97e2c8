"""What must hold after any fault (issue 9), checked by one helper every fault test calls.

I1  every 2xx is kept: a created container is there and usable, a deleted one is gone
I2  no orphan: every container Dockyard labelled on the engine has a record
I3  no ghost: every record that claims a container has one on the engine
I4  /app holds the old or the new upload, never a mix (when an upload was involved)
I5  one audit entry per accepted change, also after a SIGKILL (committed before its 2xx)
I7  no compose process left behind
    and ``PRAGMA integrity_check`` is ok.

I2 and I3 are judged after the records have settled: the reconcile runs every
``RECONCILE_INTERVAL`` here, so a few of its rounds are waited for, not more.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.faults.faults import Accepted, FaultServer, wait_until

SETTLE_TIMEOUT = 30.0
# A record in one of these claims no container on the engine.
CLAIMS_NOTHING = frozenset({"missing", "failed"})
UNSETTLED = frozenset({"creating", "removing"})


def check_invariants(
    server: FaultServer,
    *,
    app: dict[str, list[set[str]]] | None = None,
    unanswered: int = 0,
) -> None:
    """Assert I1-I7 for what ``server`` accepted; ``app`` maps a cuid to the file sets
    its /app may hold (the old and the new upload). A container whose create was not
    answered 201 must not exist, but for at most ``unanswered`` creates cut off before
    their answer (the client cannot tell those from a success)."""
    with server.client() as client:
        records = _settled(server, client)
        _kept(server, client, records)
        strangers = set(records) - set(server.ledger.created)
        assert len(strangers) <= unanswered, f"I1: containers no 201 announced: {strangers}"
        _audited(client, server.ledger.accepted)
    if app:
        for cuid, allowed in app.items():
            held = _files(server.data_dir / "containers" / cuid / "app")
            assert held in allowed, f"I4: /app of {cuid} holds {sorted(held)}"
    left = server.compose_processes()
    assert not left, f"I7: compose processes left: {left}"
    _integrity(server.database)


def _records(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/containers", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {r["cuid"]: r for r in response.json()["containers"]}


def _settled(server: FaultServer, client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Records and engine agree (I2, I3), after at most a few reconcile rounds."""
    seen: dict[str, Any] = {}

    def agree() -> bool:
        records = _records(client)
        on_engine = server.engine.managed()
        seen.update(records=records, engine=on_engine)
        if any(r["status"] in UNSETTLED for r in records.values()):
            return False
        claimed = {c for c, r in records.items() if r["status"] not in CLAIMS_NOTHING}
        return set(on_engine) <= set(records) and claimed <= set(on_engine)

    try:
        wait_until(agree, SETTLE_TIMEOUT, "records and engine to agree")
    except AssertionError:
        records, on_engine = seen.get("records", {}), seen.get("engine", {})
        orphans = set(on_engine) - set(records)
        ghosts = {c for c, r in records.items() if r["status"] not in CLAIMS_NOTHING} - set(
            on_engine
        )
        unsettled = {c: r["status"] for c, r in records.items() if r["status"] in UNSETTLED}
        raise AssertionError(
            f"I2 orphans {sorted(orphans)}, I3 ghosts {sorted(ghosts)}, unsettled {unsettled}"
        ) from None
    records: dict[str, dict[str, Any]] = seen["records"]
    return records


def _kept(server: FaultServer, client: httpx.Client, records: dict[str, dict[str, Any]]) -> None:
    ledger = server.ledger
    for cuid in ledger.created:
        if cuid in ledger.deleted:
            continue
        assert cuid in records, f"I1: the 201 for {cuid} was lost"
        status = records[cuid]["status"]
        assert status not in CLAIMS_NOTHING, f"I1: {cuid} answered 201 but is {status}"
    for cuid in ledger.deleted:
        assert client.get(f"/containers/{cuid}").status_code == 404, f"I1: {cuid} is back"


def _audited(client: httpx.Client, accepted: list[Accepted]) -> None:
    """Exactly one audit entry with a 2xx per accepted change, at once: the entry is
    committed before the 2xx leaves, so not even a SIGKILL after the answer loses it.
    Requests cut off before their answer may or may not have one (not in ``accepted``)."""
    wanted = Counter((a.action, a.resource) for a in accepted)
    if not wanted:
        return
    response = client.get("/audit", params={"limit": 500})
    assert response.status_code == 200, response.text
    found: Counter[tuple[str, str]] = Counter()
    for entry in response.json()["entries"]:
        if 200 <= entry["status"] < 300:
            found[(entry["action"], entry["resource"])] += 1
    wrong = {key: found[key] for key, count in wanted.items() if found[key] != count}
    assert not wrong, f"I5: audited {wrong} times, accepted {dict(wanted)}"


def _files(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _integrity(database: Path) -> None:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    assert result == "ok", f"PRAGMA integrity_check: {result}"

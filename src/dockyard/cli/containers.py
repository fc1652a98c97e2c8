"""Container commands: ps, run, create, inspect, start/stop/…, rm, logs, stats, events."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any

from dockyard.cli.output import ago, print_json, size_text, spinner
from dockyard.cli.parsing import CommandError, parse_command, parse_env, parse_filters, parse_port

if TYPE_CHECKING:
    from dockyard.cli.session import Session
    from dockyard.client import Dockyard
    from dockyard.client.models import Container

RUNNING = ("running", "restarting", "creating")


def ps(args: argparse.Namespace, session: Session) -> int:
    """The containers as the server sent them (no model is built, and over plain http
    no HTTP stack is loaded: ``ps`` starts in well under 200 ms)."""
    filters = parse_filters(args.filter)
    status: list[str] | None = filters.get("status") or (None if args.all else ["running"])
    tag = filters.get("tag", [None])[0]
    image = filters.get("image", [None])[0]
    params = {"status": status, "tag": tag, "image": image}
    boxes = list(session.pages("/containers", "containers", params))
    if args.quiet:
        for box in boxes:
            print(box["cuid"])
        return 0
    headers = ["cuid", "image", "command", "created", "status", "ports", "name"]
    rows = [
        [
            b["cuid"],
            b["image"],
            short_command(b.get("command")),
            ago(b.get("created_at")),
            b["status"],
            ports(b.get("ports") or []),
            b.get("name"),
        ]
        for b in boxes
    ]
    session.show(boxes, headers, rows)
    return 0


def short_command(command: str | list[str] | None, width: int = 24) -> str:
    text = shlex.join(command) if isinstance(command, list) else (command or "")
    return text if len(text) <= width else text[: width - 1] + "…"


def ports(mapped: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p.get('host')}->{p['container']}/{p['protocol']}" for p in mapped)


def create_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The create body of ``run``/``create``'s options (SPEC §4 fields)."""
    fields: dict[str, Any] = {}
    env = parse_env(args.env, dict(os.environ))
    if env:
        fields["env"] = env
    if args.publish:
        fields["ports"] = [parse_port(p) for p in args.publish]
    resources = {"cpus": args.cpus, "memory": args.memory}
    resources = {k: v for k, v in resources.items() if v is not None}
    if resources:
        fields["resources"] = resources
    if args.tag:
        fields["tags"] = args.tag
    if args.name:
        fields["name"] = args.name
    command = parse_command(args.cmd)
    if command is not None:
        fields["command"] = command
    return fields


def create(args: argparse.Namespace, session: Session) -> int:
    fields = create_fields(args)
    with session.client() as dy, spinner("creating"):
        box = dy.containers.create(args.image, **fields)
    _show_one(session, box)
    return 0


def _show_one(session: Session, box: Container) -> None:
    if session.json:
        print_json(box)
    else:
        print(box.cuid)


def run(args: argparse.Namespace, session: Session) -> int:
    fields = create_fields(args)
    if args.interactive or args.tty:
        from dockyard.cli.terminal import run_interactive

        return run_interactive(session, args.image, fields, tty=args.tty, remove=args.rm)
    if args.rm:
        # The server removes it once it has ended (like docker's AutoRemove): the exit
        # code is returned as soon as it is known, without waiting for the removal.
        fields["auto_remove"] = True
    with session.client() as dy:
        if args.detach:
            with spinner("starting"):
                box = dy.containers.create(args.image, start=True, **fields)
            _show_one(session, box)
            return 0
        with spinner("starting"):
            cuid = _started(dy, args.image, fields)
        try:
            for line in dy.logs(cuid, follow=True):
                print(line, flush=True)
            return exit_code(dy, cuid)
        except BaseException:
            if args.rm:  # interrupted while it runs: it is not left behind
                dy.containers.delete(cuid)
            raise


def _started(dy: Dockyard, image: str, fields: dict[str, Any]) -> str:
    """``create(start=True)``'s cuid from the JSON: the SDK's models are not loaded (a
    third of a second on a quiet machine, the largest part of the CLI's own time)."""
    from dockyard.client._sync_transport import new_idempotency_key

    body = {"image": image, "start": True, **fields}
    headers = {"Idempotency-Key": new_idempotency_key()}
    resp = dy.http.request("POST", "/containers", json=body, headers=headers)
    return str(resp.json()["cuid"])


def exit_code(dy: Dockyard, cuid: str, patience: float = 10.0) -> int:
    """The exit code of a container whose output has ended (its state may lag a moment
    behind the end of the log stream); for one removed already (auto_remove), its
    ``die`` event's."""
    from dockyard.client.errors import NotFound

    deadline = time.monotonic() + patience
    while True:
        try:  # the JSON, not the model (see _started)
            state = dy.http.request("GET", f"/containers/{cuid}/status").json()
        except NotFound:
            return _died_with(dy, cuid)
        if state["status"] not in RUNNING or time.monotonic() > deadline:
            code = state.get("exit_code")
            return code if isinstance(code, int) else 0
        time.sleep(0.05)


def _died_with(dy: Dockyard, cuid: str) -> int:
    for event in dy.events(cuid=cuid, type="die"):  # newest first
        code = event.details.get("exit_code")
        if isinstance(code, int):
            return code
    return 0


def inspect(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        print_json([dy.containers.get(cuid) for cuid in args.cuids])
    return 0


def act(args: argparse.Namespace, session: Session) -> int:
    """start, stop, restart, pause, unpause or kill each CUID (its id printed back)."""
    with session.client() as dy:
        action = getattr(dy.containers, args.command)
        for cuid in args.cuids:
            with spinner(f"{args.command} {cuid}"):
                action(cuid)
            print(cuid)
    return 0


def rm(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        for cuid in args.cuids:
            if not args.force and dy.containers.get(cuid).status in ("running", "paused"):
                raise CommandError(f"{cuid} is running: stop it first, or use rm -f")
            with spinner(f"removing {cuid}"):
                dy.containers.delete(cuid)
            print(cuid)
    return 0


def logs(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        for line in dy.logs(args.cuid, follow=args.follow, tail=args.tail):
            print(line, flush=args.follow)
    return 0


def stats(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        cuids = args.cuids or [b.cuid for b in dy.containers.list(status="running")]
        samples = [dy.metrics(cuid) for cuid in cuids]
    headers = ["cuid", "cpu %", "mem usage / limit", "mem %", "net i/o", "block i/o", "pids"]
    rows = [
        [
            m.cuid,
            _pct(m.cpu_percent),
            f"{size_text(m.memory.used_bytes)} / {size_text(m.memory.limit_bytes)}",
            _pct(m.memory.percent),
            f"{size_text(m.network.rx_bytes)} / {size_text(m.network.tx_bytes)}",
            f"{size_text(m.block_io.read_bytes)} / {size_text(m.block_io.write_bytes)}",
            m.pids,
        ]
        for m in samples
    ]
    session.show(samples, headers, rows)
    return 0


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}%"


def events(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        stream = dy.events(follow=args.follow, since=args.since, cuid=args.cuid)
        if not args.follow:
            found = list(stream)
            rows = [[e.time, e.type, e.cuid, e.actor or e.source] for e in found]
            session.show(found, ["time", "type", "cuid", "actor"], rows)
            return 0
        for event in stream:
            if session.json:
                print_json(event)
            else:
                print(event.time, event.type, event.cuid or "", event.actor or event.source)
            sys.stdout.flush()
    return 0

"""Command line. The service: ``dockyard serve`` and ``dockyard migrate`` (``server.py``,
whose stack loads only for them). A client of a running service, like docker's:
``dockyard login URL``, ``ps``, ``run``, ``exec -it``, ``cp``, ``logs``, … (docs/cli.md),
built on the SDK (``dockyard.client``) and never importing the server's stack."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from dockyard.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    if args.command in ("serve", "migrate"):
        from dockyard.cli.server import run_server

        run_server(args.command)
        return
    from dockyard.cli.session import run

    raise SystemExit(run(args))

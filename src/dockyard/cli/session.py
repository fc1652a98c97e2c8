"""What every client command shares: where to go (the config's context, the environment),
the SDK client, the output format, and the one place errors become exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from functools import cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any

from dockyard.cli.config import Config, ConfigError, Target
from dockyard.cli.output import error_line, print_json, table
from dockyard.cli.parsing import CommandError, UsageError

if TYPE_CHECKING:
    from dockyard.client import AsyncDockyard, Dockyard

Handler = Callable[[argparse.Namespace, "Session"], int | None]


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = getattr(args, "format", "table") == "json"

    @cached_property
    def config(self) -> Config:
        return Config.load()

    @cached_property
    def target(self) -> Target:
        return self.config.target(getattr(self.args, "context", None))

    def client(self) -> Dockyard:
        import httpx

        from dockyard.client import Dockyard

        target = self.target
        auth = target.token or None  # a dyt.… token, or a dyk_… service key
        # Plain http needs no TLS context: httpx's default one loads the CA bundle, ~100 ms
        # of a `ps` that should take less than 200 ms in all.
        plain = httpx.HTTPTransport(verify=False) if _plain(target.url) else None
        return Dockyard(target.url, auth=auth, transport=plain)

    def pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged list as the server sent it. Over plain http this loads no
        HTTP stack (``dockyard.client.quick``: ``ps`` starts in well under 200 ms);
        otherwise the SDK's client reads the pages."""
        import os

        from dockyard.client import quick

        target = self.target
        if quick.usable(target.url, os.environ):
            from dockyard.client.auth import auth_headers

            headers = auth_headers(target.token or None)
            yield from quick.get_pages(target.url, path, key, params=params, headers=headers)
            return
        from dockyard.client._sync_resources import paginate_data

        with self.client() as dy:
            yield from paginate_data(dy.http, path, key, params)

    def async_client(self) -> AsyncDockyard:
        import httpx

        from dockyard.client import AsyncDockyard

        target = self.target
        auth = target.token or None
        plain = httpx.AsyncHTTPTransport(verify=False) if _plain(target.url) else None
        return AsyncDockyard(target.url, auth=auth, transport=plain)

    def show(self, value: Any, headers: list[str], rows: list[list[Any]]) -> None:
        """``value`` as JSON with ``--format json``, else the table."""
        if self.json:
            print_json(value)
        else:
            table(headers, rows)


def run(args: argparse.Namespace) -> int:
    """Run the command's handler (``module:function`` below ``dockyard.cli``); an API
    error is one line on stderr and status 1, a usage error status 2."""
    _skip_httpx_cli()
    from dockyard.client import ApiError, DockyardError

    module, _, name = args.handler.partition(":")
    handler: Handler = getattr(import_module(f"dockyard.cli.{module}"), name)
    try:
        return handler(args, Session(args)) or 0
    except UsageError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(error_line(exc), file=sys.stderr)
        return 1
    except (DockyardError, CommandError, ConfigError, OSError, ValueError) as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _plain(url: str) -> bool:
    return url.startswith("http://")


def _skip_httpx_cli() -> None:
    """httpx's ``__init__`` imports its own command line (``httpx._main``: rich, click,
    pygments; 150-400 ms) when it can, and falls back when that import fails. The CLI
    needs none of it: mark the module absent before httpx loads."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

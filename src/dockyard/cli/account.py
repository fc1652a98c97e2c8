"""``login``, ``logout`` and ``context ls/use``: which servers, and with what token."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dockyard.cli.admin import read_password
from dockyard.cli.config import ConfigError, context_name
from dockyard.cli.output import print_json, table

if TYPE_CHECKING:
    from dockyard.cli.session import Session


def login(args: argparse.Namespace, session: Session) -> int:
    """Trade a user name and password for a bearer token, kept in the config file (0600)
    as a context, which becomes the current one."""
    from dockyard.client import Dockyard

    url = args.url.rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    username = args.username
    if not username:
        if args.password_stdin:
            raise ConfigError("--password-stdin needs --username")
        username = input("Username: ").strip()
    password = read_password(args.password_stdin)
    with Dockyard(url, auth=(username, password)) as dy:
        issued = dy.issue_token(expires_in=args.expires_in)
    config = session.config
    name = args.name or context_name(url)
    config.contexts[name] = {
        "url": url,
        "username": username,
        "token": issued.token,
        "token_id": issued.id,
        "expires_at": issued.expires_at,
    }
    config.current = name
    config.save()
    print(f"logged in to {url} as {username} (context {name}, until {issued.expires_at})")
    return 0


def logout(args: argparse.Namespace, session: Session) -> int:
    """Revoke the context's token on its server (when it still answers) and forget it."""
    from dockyard.client import BearerToken, Dockyard, DockyardError

    config = session.config
    name = args.context or config.current
    entry = config.contexts.get(name or "")
    if name is None or entry is None:
        raise ConfigError("not logged in")
    if entry.get("token") and entry.get("token_id"):
        try:
            with Dockyard(entry["url"], auth=BearerToken(entry["token"])) as dy:
                dy.revoke_token(entry["token_id"])
        except DockyardError as exc:  # expired already, or the server is gone
            print(f"dockyard: the token was not revoked: {exc}", file=sys.stderr)
    del config.contexts[name]
    if config.current == name:
        config.current = next(iter(config.contexts), None)
    config.save()
    print(f"logged out of {entry['url']}")
    return 0


def context_ls(args: argparse.Namespace, session: Session) -> int:
    config = session.config
    if session.json:
        print_json(
            [
                {
                    "name": n,
                    "url": c.get("url"),
                    "username": c.get("username"),
                    "current": n == config.current,
                }
                for n, c in config.contexts.items()
            ]
        )
        return 0
    rows = [
        [("* " if n == config.current else "  ") + n, c.get("url"), c.get("username")]
        for n, c in config.contexts.items()
    ]
    table(["  name", "url", "username"], rows)
    return 0


def context_use(args: argparse.Namespace, session: Session) -> int:
    config = session.config
    if args.name not in config.contexts:
        raise ConfigError(f"no context named {args.name!r} (see `dockyard context ls`)")
    config.current = args.name
    config.save()
    print(args.name)
    return 0

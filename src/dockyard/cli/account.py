"""Who: ``login``, ``logout`` and ``context ls/use`` (which servers, with what token), and
the admin commands ``accounts ls/create/rm`` and ``keys ls/create/revoke``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from dockyard.cli.config import ConfigError, context_name
from dockyard.cli.output import ago, print_json, table

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


# -- accounts and service keys -----------------------------------------------------------


def read_password(from_stdin: bool, prompt: str = "Password: ") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt)


def accounts_ls(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        found = dy.accounts.list()
    rows = [[a.username, a.role, ago(a.created_at)] for a in found]
    session.show(found, ["username", "role", "created"], rows)
    return 0


def accounts_create(args: argparse.Namespace, session: Session) -> int:
    password = read_password(args.password_stdin, f"Password for {args.username}: ")
    with session.client() as dy:
        account = dy.accounts.create(args.username, password, role=args.role)
    if session.json:
        print_json(account)
    else:
        print(account.username)
    return 0


def accounts_rm(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        for name in args.usernames:
            dy.accounts.delete(name)
            print(name)
    return 0


def keys_ls(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        found = dy.keys.list()
    rows = [[k.id, k.owner, k.role, k.description, ago(k.created_at)] for k in found]
    session.show(found, ["id", "owner", "role", "description", "created"], rows)
    return 0


def keys_create(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        key = dy.keys.create(
            description=args.description, role=args.role, expires_in=args.expires_in
        )
    if session.json:
        print_json(key)
    else:
        print(key.key)
        print(f"(key {key.id}: shown this once)", file=sys.stderr)
    return 0


def keys_revoke(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        for key_id in args.key_ids:
            dy.keys.delete(key_id)
            print(key_id)
    return 0

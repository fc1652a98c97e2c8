"""Admin commands: accounts (ls, create, rm) and service keys (ls, create, revoke)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from dockyard.cli.output import ago, print_json

if TYPE_CHECKING:
    from dockyard.cli.session import Session


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

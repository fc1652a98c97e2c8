"""The command line's grammar (argparse): the server's commands and the client's, and the
shell completion derived from it. Only the grammar: each client command names its
handler as ``module:function``, imported when it runs, so that ``dockyard --help`` loads
nothing but this."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = """Dockyard: run the service (serve, migrate), or use one (login, ps, run,
exec, cp, logs, …) like docker's command line. `dockyard COMMAND --help` for each."""

Sub = Any  # argparse's private _SubParsersAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard", description=DESCRIPTION)
    parser.add_argument("--context", help="the configured server to use (default: current)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="run the HTTP + WebSocket service")
    sub.add_parser("migrate", help="bring the database schema up to date")
    _session_commands(sub)
    _container_commands(sub)
    _lifecycle_commands(sub)
    _terminal_commands(sub)
    _observe_commands(sub)
    _image_commands(sub)
    _admin_commands(sub)
    completion = _cmd(sub, "completion", "parser:completion", "print a shell completion")
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


def _cmd(sub: Sub, name: str, handler: str, text: str, fmt: bool = False) -> Any:
    cmd = sub.add_parser(name, help=text, description=text)
    cmd.set_defaults(handler=handler)
    if fmt:
        cmd.add_argument("--format", choices=["table", "json"], default="table")
    return cmd


def _session_commands(sub: Sub) -> None:
    login = _cmd(sub, "login", "account:login", "log in to a server and remember it")
    login.add_argument("url")
    login.add_argument("-u", "--username")
    login.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    login.add_argument("--name", help="the context's name (default: the server's host)")
    login.add_argument("--expires-in", type=int, help="token lifetime in seconds")
    _cmd(sub, "logout", "account:logout", "revoke the token and forget it")
    context = sub.add_parser("context", help="the configured servers")
    csub = context.add_subparsers(dest="action", required=True, metavar="ACTION")
    _cmd(csub, "ls", "account:context_ls", "list contexts", fmt=True)
    use = _cmd(csub, "use", "account:context_use", "make a context the current one")
    use.add_argument("name")


def _create_options(cmd: Any) -> None:
    cmd.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    cmd.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:CONT")
    cmd.add_argument("--cpus", type=float)
    cmd.add_argument("--memory", "-m", help="e.g. 512m, 2g")
    cmd.add_argument("--tag", action="append", default=[])
    cmd.add_argument("--name")
    cmd.add_argument("image")
    cmd.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")


def _container_commands(sub: Sub) -> None:
    ps = _cmd(sub, "ps", "containers:ps", "list containers", fmt=True)
    ps.add_argument("-a", "--all", action="store_true", help="stopped ones too")
    ps.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE")
    ps.add_argument("-q", "--quiet", action="store_true", help="only the ids")
    run = _cmd(sub, "run", "containers:run", "create and start a container", fmt=True)
    run.add_argument("-d", "--detach", action="store_true")
    run.add_argument("-i", "--interactive", action="store_true")
    run.add_argument("-t", "--tty", action="store_true")
    run.add_argument("--rm", action="store_true", help="remove it when it exits")
    _create_options(run)
    create = _cmd(sub, "create", "containers:create", "create a container", fmt=True)
    _create_options(create)
    inspect = _cmd(sub, "inspect", "containers:inspect", "a container as JSON")
    inspect.add_argument("cuids", nargs="+", metavar="CUID")


def _lifecycle_commands(sub: Sub) -> None:
    for action in ("start", "stop", "restart", "pause", "unpause", "kill"):
        cmd = _cmd(sub, action, "containers:act", f"{action} containers")
        cmd.add_argument("cuids", nargs="+", metavar="CUID")
    rm = _cmd(sub, "rm", "containers:rm", "remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="also running ones")
    rm.add_argument("cuids", nargs="+", metavar="CUID")


def _terminal_commands(sub: Sub) -> None:
    exe = _cmd(sub, "exec", "terminal:exec_", "run a command in a running container")
    exe.add_argument("-i", "--interactive", action="store_true")
    exe.add_argument("-t", "--tty", action="store_true")
    exe.add_argument("cuid", metavar="CUID")
    exe.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    attach = _cmd(sub, "attach", "terminal:attach", "attach to a container's main process")
    attach.add_argument("cuid", metavar="CUID")
    cp = _cmd(sub, "cp", "files:cp", "copy files: SRC DST, one side CUID:PATH")
    cp.add_argument("src")
    cp.add_argument("dst")


def _observe_commands(sub: Sub) -> None:
    logs = _cmd(sub, "logs", "containers:logs", "a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", help="the last N lines")
    logs.add_argument("cuid", metavar="CUID")
    stats = _cmd(sub, "stats", "containers:stats", "CPU, memory and I/O", fmt=True)
    stats.add_argument("cuids", nargs="*", metavar="CUID", help="default: the running ones")
    events = _cmd(sub, "events", "containers:events", "what happened", fmt=True)
    events.add_argument("-f", "--follow", action="store_true")
    events.add_argument("--since")
    events.add_argument("--cuid")


def _image_commands(sub: Sub) -> None:
    _cmd(sub, "images", "images:images", "list images", fmt=True)
    pull = _cmd(sub, "pull", "images:pull", "pull an image (a job)")
    pull.add_argument("image")
    pull.add_argument("--registry")
    build = _cmd(sub, "build", "images:build", "build an image from a folder or git URL")
    build.add_argument("-t", "--tag", action="append", default=[])
    build.add_argument("-f", "--file", dest="dockerfile", help="the Dockerfile's path")
    build.add_argument("source", metavar="PATH|URL")


def _admin_commands(sub: Sub) -> None:
    accounts = sub.add_parser("accounts", help="accounts (admins)")
    asub = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    _cmd(asub, "ls", "account:accounts_ls", "list accounts", fmt=True)
    create = _cmd(asub, "create", "account:accounts_create", "create an account", fmt=True)
    create.add_argument("username")
    create.add_argument("--role", default="user")
    create.add_argument("--password-stdin", action="store_true")
    rm = _cmd(asub, "rm", "account:accounts_rm", "delete accounts")
    rm.add_argument("usernames", nargs="+")
    keys = sub.add_parser("keys", help="service keys")
    ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    _cmd(ksub, "ls", "account:keys_ls", "list service keys", fmt=True)
    kcreate = _cmd(ksub, "create", "account:keys_create", "create a key (shown once)", fmt=True)
    kcreate.add_argument("--description")
    kcreate.add_argument("--role")
    kcreate.add_argument("--expires-in", type=int)
    revoke = _cmd(ksub, "revoke", "account:keys_revoke", "revoke keys")
    revoke.add_argument("key_ids", nargs="+", metavar="KEY_ID")


# -- shell completion (`dockyard completion bash|zsh`) ------------------------------------

BASH = """# dockyard completion for bash: eval "$(dockyard completion bash)"
_dockyard() {
    local cur words
    cur="${COMP_WORDS[COMP_CWORD]}"
    local cmd="${COMP_WORDS[1]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W "%(commands)s" -- "$cur") )
        return
    fi
    case "$cmd" in
%(cases)s
    esac
    COMPREPLY=( $(compgen -f -- "$cur") )
}
complete -o default -F _dockyard dockyard
"""

ZSH = """#compdef dockyard
# dockyard completion for zsh: eval "$(dockyard completion zsh)"
autoload -U +X bashcompinit && bashcompinit
"""


def words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each command's completions: its sub-actions and its options."""
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = _words_of(sub)
    return found


def _words_of(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices)
        else:
            out.extend(o for o in action.option_strings if o.startswith("--"))
    return out


def script(shell: str) -> str:
    table = words(build_parser())
    cases = "\n".join(
        f'        {name}) COMPREPLY=( $(compgen -W "{" ".join(ws)}" -- "$cur") ); '
        f'[ -n "$COMPREPLY" ] && return ;;'
        for name, ws in table.items()
        if ws
    )
    bash = BASH % {"commands": " ".join(table), "cases": cases}
    return bash if shell == "bash" else ZSH + bash


def completion(args: argparse.Namespace, session: Any) -> int:
    """``completion bash|zsh``: the script, derived from this parser."""
    print(script(args.shell), end="")
    return 0

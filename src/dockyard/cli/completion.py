"""``completion bash|zsh``: a completion script for the shell, derived from the parser
(commands, their options, and ``ACTION`` words), so it never falls behind it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.cli.session import Session

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
    from dockyard.cli.parser import build_parser

    table = words(build_parser())
    cases = "\n".join(
        f'        {name}) COMPREPLY=( $(compgen -W "{" ".join(ws)}" -- "$cur") ); '
        f'[ -n "$COMPREPLY" ] && return ;;'
        for name, ws in table.items()
        if ws
    )
    bash = BASH % {"commands": " ".join(table), "cases": cases}
    return bash if shell == "bash" else ZSH + bash


def completion(args: argparse.Namespace, session: Session | Any) -> int:
    print(script(args.shell), end="")
    return 0

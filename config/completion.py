"""`synthgate completion bash|zsh`: a shell completion script built from the commands' own parsers.

The script is static (no Python runs on a Tab): commands, their actions, each action's options,
and the choices of options that have them. zsh loads it through ``bashcompinit``. Install with
``synthgate completion bash > ~/.local/share/bash-completion/completions/synthgate`` or
``synthgate completion zsh > "${fpath[1]}/_synthgate"`` (or ``eval "$(synthgate completion bash)"``).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import django
from django.core.management import get_commands, load_command_class

SHELLS = ("bash", "zsh")
TOP_LEVEL = ("--help", "--version", "completion")


def command_tree(commands: list[str]) -> dict[str, dict[str, dict[str, list[str]]]]:
    """``{command: {action: {option: [choices]}}}``; a command without actions uses the action ``""``."""
    django.setup()
    apps = get_commands()
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    for name in commands:
        parser = load_command_class(apps[name], name).create_parser("synthgate", name)
        tree[name] = _actions(parser)
    return tree


def _actions(parser: argparse.ArgumentParser) -> dict[str, dict[str, list[str]]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: _options(sub) for name, sub in action.choices.items()}
    return {"": _options(parser)}


def _options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                options[option] = [str(choice) for choice in action.choices or []]
    return options


def bash_script(tree: dict[str, dict[str, dict[str, list[str]]]]) -> str:
    words = lambda items: shlex.quote(" ".join(items))  # noqa: E731
    lines = [
        "# synthgate completion (bash; zsh loads it through bashcompinit)",
        "_synthgate() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local command="${COMP_WORDS[1]}" action="${COMP_WORDS[2]}"',
        '    if [ "$COMP_CWORD" -eq 1 ]; then',
        f'        COMPREPLY=($(compgen -W {words([*tree, *TOP_LEVEL])} -- "$cur")); return',
        "    fi",
        '    case "$command" in',
        f'        completion) COMPREPLY=($(compgen -W {words(SHELLS)} -- "$cur")); return ;;',
    ]
    for command, actions in tree.items():
        lines.append(f"        {command})")
        named = [action for action in actions if action]
        if named:
            lines += [
                '            if [ "$COMP_CWORD" -eq 2 ]; then',
                f'                COMPREPLY=($(compgen -W {words(named)} -- "$cur")); return',
                "            fi",
            ]
        lines.append('            case "$action" in' if named else '            case "" in')
        for action, options in actions.items():
            lines.append(f"                {shlex.quote(action) if action else '*'})")
            for option, choices in options.items():
                if choices:
                    lines.append(
                        f'                    [ "$prev" = {option} ] && {{ COMPREPLY=($(compgen -W '
                        f'{words(choices)} -- "$cur")); return; }}'
                    )
            lines.append(f'                    COMPREPLY=($(compgen -W {words(options)} -- "$cur")) ;;')
        lines += ["            esac ;;"]
    lines += [
        "    esac",
        "}",
        "complete -o default -F _synthgate synthgate",
    ]
    return "\n".join(lines) + "\n"


def zsh_script(tree: dict[str, dict[str, dict[str, list[str]]]]) -> str:
    return "#compdef synthgate\nautoload -U +X bashcompinit && bashcompinit\n" + bash_script(tree)


def completion_main(args: list[str], *, commands: list[str]) -> int:
    if len(args) != 1 or args[0] not in SHELLS:
        print("usage: synthgate completion {bash,zsh}", file=sys.stderr)
        print("error: name one shell: bash or zsh", file=sys.stderr)
        return 2
    tree = command_tree(commands)
    print(bash_script(tree) if args[0] == "bash" else zsh_script(tree), end="")
    return 0

#!/usr/bin/env python3
"""Writes the bash completion of the ferry command from its own option tables.

Commands, roles and options come from `ferry --option-table`, so completion
offers exactly what the parser accepts. Values are completed where the table
says what they are: a set of choices ({iterative,thread,...}), a PATH (file
names), a HOST or ADDRESS (host names). The script needs bash alone, not the
bash-completion package's helpers. Run at build time:

    bash_completion.py --ferry build/ferry --output build/completion/ferry
"""

import argparse
import json
import pathlib
import subprocess
import sys

HELP_NAMES = ["-h", "--help"]
HOST_TYPES = {"HOST", "ADDRESS", "NAME_OR_ADDRESS", "GROUP"}


def shell_word(text):
    """`text` as one single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


def value_kind(option):
    """What completes an option's value: 'choices a b c', 'file', 'host', or 'any'."""
    base, _, check = option["type"].partition(":")
    if check.startswith("{"):
        return "choices " + " ".join(check.strip("{}").split(","))
    if base == "PATH" or check == "PATH":
        return "file"
    if base in HOST_TYPES or check in HOST_TYPES:
        return "host"
    return "any"


def walk(app, path, tables):
    """Fills tables[path] = (subcommands, option names, {option: value kind}) for every level."""
    names, values = [], {}
    for option in app["options"]:
        if option["positional"]:
            continue
        names += option["names"]
        if option["takes_value"]:
            for name in option["names"]:
                values[name] = value_kind(option)
    subcommands = [sub["name"] for sub in app["subcommands"]]
    tables[path] = (subcommands, names + HELP_NAMES, values)
    for sub in app["subcommands"]:
        walk(sub, f"{path}/{sub['name']}" if path else sub["name"], tables)


def script(tables):
    subcommand_cases, option_cases, value_cases = [], [], []
    for path, (subcommands, names, values) in tables.items():
        if subcommands:
            subcommand_cases.append(f"        {shell_word(path)}) echo {shell_word(' '.join(subcommands))} ;;")
        option_cases.append(f"        {shell_word(path)}) echo {shell_word(' '.join(names))} ;;")
        for name, kind in values.items():
            value_cases.append(f"        {shell_word(path + ' ' + name)}) echo {shell_word(kind)} ;;")
    return f"""# bash completion for ferry: commands, roles, options and the values the
# option tables name (choices, paths, hosts). Generated from `ferry --option-table`.

# The roles or commands under PATH ("" is the top, "echo/server" a role).
_ferry_subcommands() {{
    case $1 in
{chr(10).join(subcommand_cases)}
    esac
}}

# The options accepted at PATH.
_ferry_options() {{
    case $1 in
{chr(10).join(option_cases)}
    esac
}}

# What the value of option $2 at PATH $1 is; nothing for a flag.
_ferry_value_kind() {{
    case "$1 $2" in
{chr(10).join(value_cases)}
    esac
}}

_ferry() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} path="" word kind option i
    COMPREPLY=()
    # Which command and role the words so far chose; an option's value is skipped.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if [[ $word == -* ]]; then
            [[ $word != *=* && -n $(_ferry_value_kind "$path" "$word") ]] && ((i++))
            continue
        fi
        if [[ " $(_ferry_subcommands "$path") " == *" $word "* ]]; then
            path=${{path:+$path/}}$word
        fi
    done

    # The value of the option before: `--model ep`, or `--model=ep` (bash splits
    # words at =, so "=" is a word of its own).
    option=${{COMP_WORDS[COMP_CWORD-1]}}
    if [[ $option == "=" && $COMP_CWORD -ge 2 ]]; then
        option=${{COMP_WORDS[COMP_CWORD-2]}}
    fi
    if [[ $option == -* ]]; then
        kind=$(_ferry_value_kind "$path" "$option")
        case $kind in
            choices\\ *) mapfile -t COMPREPLY < <(compgen -W "${{kind#choices }}" -- "$cur"); return 0 ;;
            file)
                compopt -o filenames 2>/dev/null  # a directory gets its slash
                mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;
            host) mapfile -t COMPREPLY < <(compgen -A hostname -- "$cur"); return 0 ;;
            any) return 0 ;;
        esac
    fi

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_ferry_options "$path")" -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -W "$(_ferry_subcommands "$path")" -- "$cur")
    fi
    return 0
}}

complete -F _ferry ferry
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ferry", required=True, help="the ferry binary to ask for its tables")
    parser.add_argument("--output", required=True, type=pathlib.Path)
    args = parser.parse_args()

    table = subprocess.run([args.ferry, "--option-table"], check=True, capture_output=True,
                           text=True, timeout=60).stdout
    tables = {}
    walk(json.loads(table), "", tables)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(script(tables), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

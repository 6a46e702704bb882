#!/usr/bin/env python3
"""Writes the man pages of the ferry command from its own option tables.

ferry(1) lists the commands; ferry-COMMAND(1) documents one command, with a
section per role (server, client, ...) where the command has roles. Everything
comes from `ferry --option-table`, the tables the parser itself uses, so a page
cannot drift from --help. Run at build time:

    man_pages.py --ferry build/ferry --version 0.1.0 --output-dir build/man
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

EXIT_STATUS = [
    ("0", "success (a server stopped by SIGINT or SIGTERM included)"),
    ("1", "a run-time failure: unknown host, connection refused, port in use, "
          "reset by peer, a timeout; one line on standard error"),
    ("2", "bad usage: an unknown option, a value out of range, a bad combination; "
          "one line on standard error"),
]
HELP_OPTION = {
    "names": ["-h", "--help"], "positional": False, "takes_value": False,
    "values_max": 0, "type": "", "default": "", "required": False,
    "description": "Print the help message and exit",
}


def roff(text):
    """Text made safe for roff: backslashes, minus signs, leading dots and quotes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def split_examples(description):
    """(prose, [example lines]): CLI descriptions end with "Example:" or "Examples:"."""
    match = re.search(r"(^|(?<=[.)]) |\n)Examples?:", description)
    if not match:
        return description.strip(), []
    prose = description[:match.start()].strip()
    rest = description[match.end():]
    examples = [line.strip() for line in rest.split("\n") if line.strip()]
    return prose, examples


def outside_parentheses(text, separators):
    """Index of the first separator at parenthesis depth 0, or -1."""
    depth = 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and any(text.startswith(s, i) for s in separators):
            return i
    return -1


def summary(description):
    """The NAME line: the first sentence, cut at a colon or comma when it is long."""
    prose, _ = split_examples(description)
    first = prose.split("\n")[0]
    end = outside_parentheses(first, [". "])
    if end >= 0:
        first = first[:end]
    first = first.rstrip(".")
    for separators in ([": ", "; "], [", "]):
        if len(first) <= 90:
            break
        cut = outside_parentheses(first, separators)
        if cut >= 5:
            first = first[:cut]
    return first


def placeholder(option):
    """How the value is written (PORT, UINT, FLOAT) and what limits it, from CLI11's type name."""
    base, _, check = option["type"].partition(":")
    base = base or "VALUE"
    notes = []
    if check.startswith("{"):
        notes.append("One of: " + ", ".join(check.strip("{}").split(",")))
    elif " in [" in check:
        low, high = check.split(" in [", 1)[1].rstrip("]").split(" - ")
        notes.append(f"Range: {low} to {high}")
    elif check == "POSITIVE":
        notes.append("Above 0")
    elif check == "NONNEGATIVE":
        notes.append("0 or more")
    elif re.fullmatch(r"[A-Z_]+", check):
        base = check
    if option["values_max"] > 1:
        base += "..."
    return base, notes


def positional_name(option):
    return option["name"].upper()


def sentence(text):
    """Capitalised and ending with a full stop, as a man page's prose is."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def option_item(option):
    """One .TP entry: the names and value, then the description, limits and default."""
    notes = []
    if option["positional"]:
        head = f"\\fI{roff(positional_name(option))}\\fR"
        if option["values_max"] > 1:
            head += "..."
    else:
        head = ", ".join(f"\\fB{roff(name)}\\fR" for name in option["names"])
        if option["takes_value"]:
            value, notes = placeholder(option)
            head += f" \\fI{roff(value)}\\fR"
    if option["required"]:
        notes.append("Required")
    if option["default"] != "":
        notes.append(f"Default: {option['default']}")
    text = " ".join(sentence(part) for part in [option["description"]] + notes if part)
    return [".TP", head, roff(text)]


def synopsis(path, app):
    """`ferry echo server [OPTIONS] [HOST]`, as --help's usage line has it."""
    words = [f"\\fB{roff(' '.join(path))}\\fR"]
    if app["subcommands"]:
        words.append("\\fISUBCOMMAND\\fR")
    words.append("[\\fIOPTIONS\\fR]")
    for option in app["options"]:
        if option["positional"]:
            name = f"\\fI{roff(positional_name(option))}\\fR"
            if option["values_max"] > 1:
                name += "..."
            words.append(name if option["required"] else f"[{name}]")
    return " ".join(words)


def paragraphs(text):
    lines = []
    for paragraph in text.split("\n"):
        if paragraph.strip():
            lines += [".PP", roff(paragraph.strip())]
    return lines


def examples_block(examples):
    if not examples:
        return []
    lines = [".SH EXAMPLES"]
    for example in examples:
        lines += [".PP", ".nf", f"\\f(CW{roff(example)}\\fR", ".fi"]
    return lines


def options_block(app, heading):
    """The arguments, then the options of one command (heading .SH) or role (.SS)."""
    lines = []
    positionals = [o for o in app["options"] if o["positional"]]
    flags = [o for o in app["options"] if not o["positional"]] + [HELP_OPTION]
    if positionals:
        lines.append(f"{heading} " + ("ARGUMENTS" if heading == ".SH" else "Arguments"))
        for option in positionals:
            lines += option_item(option)
    lines.append(f"{heading} " + ("OPTIONS" if heading == ".SH" else "Options"))
    for option in flags:
        lines += option_item(option)
    return lines


def header(title, version):
    # Left-aligned and unhyphenated: option names and values must stay whole.
    return [f'.TH {roff(title.upper())} 1 "" "ferry {version}" "User Commands"', ".nh", ".ad l"]


def common_tail(see_also):
    lines = [".SH EXIT STATUS"]
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    lines += [".SH SEE ALSO", ",\n".join(f"\\fB{roff(page)}\\fR(1)" for page in see_also)]
    return lines


def command_page(command, version):
    """ferry-COMMAND(1): one command, and a section per role when it has roles."""
    name = command["name"]
    prose, examples = split_examples(command["description"])
    lines = header(f"ferry-{name}", version)
    lines += [".SH NAME", roff(f"ferry-{name} - {summary(command['description'])}")]
    lines.append(".SH SYNOPSIS")
    roles = command["subcommands"]
    if roles:
        for i, role in enumerate(roles):
            lines += ([".br"] if i else []) + [synopsis(["ferry", name, role["name"]], role)]
    else:
        lines.append(synopsis(["ferry", name], command))
    lines.append(".SH DESCRIPTION")
    lines += paragraphs(prose)
    # CLI11's footer (the text --help prints after the options), when the table carries it.
    lines += paragraphs(command.get("footer", ""))
    if roles:
        lines += [".PP", roff("Its roles, each in a section of its own below: " +
                              ", ".join(role["name"] for role in roles) + ".")]
        for role in roles:
            lines.append(f".SH {roff(role['name'].upper())}")
            lines.append(synopsis(["ferry", name, role["name"]], role))
            lines += paragraphs(sentence(role["description"]))
            lines += paragraphs(role.get("footer", ""))
            lines += options_block(role, ".SS")
    else:
        lines += options_block(command, ".SH")
    lines += examples_block(examples)
    lines += common_tail(["ferry"])
    return "\n".join(lines) + "\n"


def main_page(app, version):
    """ferry(1): what ferry is, and every command with its page."""
    description = re.sub(r"^ferry: ", "", app["description"])
    lines = header("ferry", version)
    lines += [".SH NAME", roff(f"ferry - {description}")]
    lines += [".SH SYNOPSIS", "\\fBferry\\fR \\fICOMMAND\\fR [\\fIARGS\\fR]",
              ".br", "\\fBferry\\fR \\fB\\-\\-version\\fR",
              ".br", "\\fBferry\\fR [\\fICOMMAND\\fR] \\fB\\-\\-help\\fR"]
    lines.append(".SH DESCRIPTION")
    lines += paragraphs(sentence(description))
    lines += paragraphs("Each command has its own page, ferry-COMMAND(1), and --help. "
                        "Servers print the address they actually bound, so port 0 works, "
                        "and stop on SIGINT or SIGTERM by closing their sockets.")
    lines.append(".SH COMMANDS")
    for command in app["subcommands"]:
        lines += [".TP", f"\\fBferry\\-{roff(command['name'])}\\fR(1)",
                  roff(summary(command["description"]))]
    lines.append(".SH OPTIONS")
    for option in app["options"] + [HELP_OPTION]:
        lines += option_item(option)
    lines += common_tail(f"ferry-{c['name']}" for c in app["subcommands"])
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ferry", required=True, help="the ferry binary to ask for its tables")
    parser.add_argument("--version", required=True, help="the version the pages name")
    parser.add_argument("--output-dir", required=True, type=pathlib.Path)
    args = parser.parse_args()

    table = subprocess.run([args.ferry, "--option-table"], check=True, capture_output=True,
                           text=True, timeout=60).stdout
    app = json.loads(table)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    # A command that no longer exists must not leave its page behind.
    for old in args.output_dir.glob("*.1"):
        old.unlink()
    pages = {"ferry.1": main_page(app, args.version)}
    for command in app["subcommands"]:
        pages[f"ferry-{command['name']}.1"] = command_page(command, args.version)
    for name, text in pages.items():
        (args.output_dir / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The generated man pages against the command they document.

    man_pages_test.py FERRY_BIN MAN_DIR

One page per top-level command plus ferry(1); each renders with groff without
a warning; each names every option and role that `ferry --option-table`
(what the parser accepts) lists, so a page cannot silently fall behind.
"""

import json
import pathlib
import subprocess
import sys
import unittest

FERRY = ""
MAN_DIR = pathlib.Path()


def render(page, *extra):
    """groff's text rendering of a page: (stdout, stderr)."""
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", *extra, str(page)],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout, done.stderr


def plain_text(page):
    # -P-cbou: no overstriking or escape sequences, only the characters.
    text, _ = render(page, "-P-cbou")
    return text


class ManPagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        table = subprocess.run([FERRY, "--option-table"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
        cls.app = json.loads(table)

    def test_one_page_per_command_and_one_for_ferry(self):
        expected = {"ferry.1"} | {f"ferry-{c['name']}.1" for c in self.app["subcommands"]}
        self.assertEqual({p.name for p in MAN_DIR.glob("*.1")}, expected)

    def test_every_page_renders_without_a_warning(self):
        for page in sorted(MAN_DIR.glob("*.1")):
            with self.subTest(page=page.name):
                _, warnings = render(page, "-z")
                self.assertEqual(warnings, "")

    def test_ferry_1_lists_every_command_page(self):
        text = plain_text(MAN_DIR / "ferry.1")
        for command in self.app["subcommands"]:
            self.assertIn(f"ferry-{command['name']}(1)", text)

    def test_every_option_and_role_is_on_its_commands_page(self):
        for command in self.app["subcommands"]:
            text = plain_text(MAN_DIR / f"ferry-{command['name']}.1")
            levels = command["subcommands"] or [command]
            for level in levels:
                if level is not command:
                    self.assertIn(f"ferry {command['name']} {level['name']}", text)
                for option in level["options"]:
                    names = option["names"] or [option["name"].upper()]
                    for name in names:
                        with self.subTest(command=command["name"], role=level["name"], name=name):
                            self.assertIn(name, text)

    def test_the_default_and_the_choices_of_an_option_are_shown(self):
        text = " ".join(plain_text(MAN_DIR / "ferry-echo.1").split())
        self.assertIn("--model TEXT", text)
        self.assertIn("One of: iterative, thread, pool, fork, select, poll, epoll, uring.", text)
        self.assertIn("Default: epoll.", text)


if __name__ == "__main__":
    FERRY, MAN_DIR = sys.argv[1], pathlib.Path(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=2)

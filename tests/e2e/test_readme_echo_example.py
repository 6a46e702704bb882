"""README's session for `ferry echo server|client` runs as written.

The session is read from README.md itself (the first code block of the
section "### `ferry echo server|client`"), so the README cannot drift from
what the programs do: every `$ ` line is run, and what follows it up to the
next `$ ` line is what it must print.  Two things differ from a person's
terminal: the server gets `-p 0` and each client `-p PORT` (a test never
takes a fixed port; 1060 in the text stands for the port the kernel picked),
and `kill %1` is SIGTERM to that server.
"""

import os
import re
import shlex
import signal
import subprocess
import unittest

from ferrytest import FERRY, TestCase, ferry, server_port

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'README.md')
SECTION = '### `ferry echo server|client`'
DEFAULT_PORT = '1060'


def session(heading):
    """[(command, [expected lines])] of the first code block after ``heading``."""
    with open(README, encoding='utf-8') as f:
        text = f.read()
    after = text[text.index(heading):]
    block = re.search(r'^```[^\n]*\n(.*?)^```', after, re.S | re.M).group(1)
    steps = []
    for line in block.splitlines():
        if line.startswith('$ '):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


class ReadmeEchoSession(TestCase):

    def test_the_session_as_written(self):
        steps = session(SECTION)
        self.assertTrue(steps[0][0].endswith(' &'), 'the session starts a server: %r' % steps)
        server_line, server_output = steps[0]
        argv = shlex.split(server_line[:-2])
        self.assertEqual(argv[:3], ['ferry', 'echo', 'server'])
        server = self.spawn(ferry(*argv[1:], '-p', 0))
        port = str(server_port(server))
        self.assertEqual(server.lines(), [line.replace(DEFAULT_PORT, port)
                                          for line in server_output])

        for command, expected in steps[1:]:
            with self.subTest(command=command):
                if command == 'kill %1':
                    self.assertEqual(server.stop(sig=signal.SIGTERM), 0, server.describe())
                    self.assertEqual(server.lines()[len(server_output):], expected)
                    continue
                # The command line as the shell runs it, `ferry` being the
                # binary under test with the server's port added.
                shell = 'ferry() { "$FERRY" "$@" -p "$PORT"; }\n' + command
                result = subprocess.run(['sh', '-c', shell], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                        env=dict(os.environ, FERRY=FERRY, PORT=port),
                                        encoding='utf-8', errors='replace', timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout.splitlines(), expected, result.stderr)
        self.assertIsNotNone(server.returncode, 'the session ends with kill %1')


if __name__ == '__main__':
    unittest.main()

"""A file named on the command line that cannot be used: one line on stderr
that names the file and says why, exit 1, at once and in bounded memory;
never an abort, a hang, or a file read whole into memory.

The options that read a file are found in the command line's own option
table (`ferry --option-table`: type FILE), so an option added later is
tested here too.  Each gets a directory, a missing file, a file it may not
read (as an unprivileged user: root reads any file whatever its mode), a
1 GB sparse file, /dev/zero (endless) and /proc/self/mem (a read error).
Then what is inside: a file that is not JSON reads as a sentence, exit 2
(bad input, as a bad --toxic is).  And standard input that cannot be read
(a directory) is an error, not an empty input.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from ferrytest import FERRY, TestCase, ferry, run, server_port

# A run that refuses its file ends this fast, ASan start-up included.
PROMPT = 5.0
# Memory: a refused 1 GB file must cost no more than this over a tiny one.
MEMORY_SLACK_KB = 64 * 1024
NOBODY = 65534
SETPRIV = shutil.which('setpriv')


def file_options():
    """(command path, option name) of every option whose type is FILE."""
    table = json.loads(subprocess.run(ferry('--option-table'), stdout=subprocess.PIPE,
                                      check=True, timeout=30).stdout)
    found = []

    def walk(command, path):
        for option in command['options']:
            if option['type'].split(':')[0] == 'FILE':
                found.append((path, option['names'][-1] if option['names'] else option['name']))
        for sub in command['subcommands']:
            walk(sub, path + [sub['name']])

    walk(table, [])
    return found


def run_measured(argv, timeout=30):
    """Runs argv to its end; returns (exit code, stdout, stderr, seconds)."""
    started = time.monotonic()
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=timeout, start_new_session=True,
                                encoding='utf-8', errors='replace')
    except subprocess.TimeoutExpired:
        raise AssertionError('%s did not finish within %gs' % (' '.join(argv), timeout)) from None
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def max_rss_kb(argv, timeout=30):
    """Runs argv to its end and returns its peak resident memory in KiB
    (wait4's rusage: this child's alone).  Killed at the deadline."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode < 0:
        raise AssertionError('%s was killed (signal %d)' % (' '.join(argv), -proc.returncode))
    return usage.ru_maxrss


class InputFiles(TestCase):

    @classmethod
    def setUpClass(cls):
        cls.options = file_options()
        cls.dir = tempfile.mkdtemp(prefix='ferry-input-files-')
        os.chmod(cls.dir, 0o755)            # the unprivileged user must reach the files
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.sparse = cls.path('sparse.json')
        with open(cls.sparse, 'wb') as f:
            f.truncate(1 << 30)             # 1 GB of holes: no disk used
        cls.unreadable = cls.path('unreadable.json')
        with open(cls.unreadable, 'w') as f:
            f.write('[]')
        os.chmod(cls.unreadable, 0)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def argv(self, command, option, path):
        return ferry(*command, option, path)

    def check_refused(self, argv, path, reason, code=1):
        rc, out, err, took = run_measured(argv)
        with self.subTest(argv=argv):
            self.assertEqual(rc, code, err)
            lines = err.splitlines()
            self.assertEqual(len(lines), 1, 'not one line:\n' + err)
            self.assertIn(path, lines[0])
            self.assertRegex(lines[0], reason)
            self.assertNotIn('exception', lines[0])
            self.assertEqual(out, '')
            self.assertLess(took, PROMPT)

    def test_there_are_file_options(self):
        self.assertIn((['proxy'], '--config'), self.options)

    def test_directory_missing_endless_and_unreadable_kinds(self):
        cases = [(self.dir, 'Is a directory'),
                 (self.path('missing.json'), 'No such file or directory'),
                 ('/proc/self/mem', 'Input/output error'),
                 ('/dev/zero', r'larger than the \d+ MiB allowed'),
                 (self.sparse, r'^ferry: --config \S+: 1073741824 bytes, larger than the 16 MiB')]
        for command, option in self.options:
            for path, reason in cases:
                self.check_refused(self.argv(command, option, path), path, reason)

    def test_a_huge_file_is_refused_by_its_size(self):
        small = self.path('small.json')
        with open(small, 'w') as f:
            f.write('[')                     # refused too, after reading 1 byte
        for command, option in self.options:
            with self.subTest(command=command):
                baseline = max_rss_kb(self.argv(command, option, small))
                huge = max_rss_kb(self.argv(command, option, self.sparse))
                self.assertLess(huge, baseline + MEMORY_SLACK_KB,
                                'reading a 1 GB file took %d KiB, a tiny one %d KiB'
                                % (huge, baseline))

    def nobody_can_run(self):
        """argv prefix running as an unprivileged user, and a ferry binary
        that user can execute (the build's own, or a copy)."""
        if SETPRIV is None:
            self.skipTest('setpriv (util-linux) is not installed')
        if os.geteuid() != 0:
            return [], FERRY                 # already unprivileged
        prefix = [SETPRIV, '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY, '--clear-groups']
        binary = FERRY
        if subprocess.run(prefix + [binary, '--version'], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=30).returncode != 0:
            # The build tree is not reachable for that user: a copy is.
            binary = self.path('ferry')
            if not os.path.exists(binary):
                shutil.copy(FERRY, binary)
                os.chmod(binary, 0o755)
        return prefix, binary

    def test_a_file_it_may_not_read(self):
        prefix, binary = self.nobody_can_run()
        for command, option in self.options:
            argv = prefix + [binary] + list(command) + [option, self.unreadable]
            self.check_refused(argv, self.unreadable, 'Permission denied')

    def test_contents_that_are_not_json(self):
        cases = {'not-json.json': ('{"listen": ', r'not JSON: at line 1, column \d+: '),
                 'empty.json': ('', r'the file is empty'),
                 'binary.json': ('\x01\x02\xff\xfe', r'not JSON: at line 1, column \d+: '),
                 'list-of-numbers.json': ('[1, 2]', r'route 1')}
        for name, (text, reason) in cases.items():
            path = self.path(name)
            with open(path, 'w', encoding='latin-1') as f:
                f.write(text)
            for command, option in self.options:
                argv = self.argv(command, option, path)
                self.check_refused(argv, path, reason, code=2)
                rc, out, err, took = run_measured(argv)
                self.assertNotIn('[json.exception', err)

    def test_a_readable_config_through_a_pipe(self):
        # /dev/stdin and <(...) are pipes: read to their end like a file.
        result = run(ferry('proxy', '--config', '/dev/stdin'), input='[{"listen": ', timeout=30)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn('not JSON', result.stderr)


class StandardInput(TestCase):
    """Clients that read lines of standard input: a read error is reported."""

    def test_standard_input_a_directory(self):
        echo = self.spawn(ferry('echo', 'server', '-p', 0))
        port = server_port(echo)
        stamp = self.spawn(ferry('timestamp', 'server', '127.0.0.1', '-p', 0))
        stamp_port = server_port(stamp)
        cases = [['echo', 'client', '-p', port],
                 ['echo', 'client', '-p', port, '--framing', 'line'],
                 ['timestamp', 'client', '127.0.0.1', '-p', stamp_port],
                 ['connect', '127.0.0.1', port]]
        for args in cases:
            with self.subTest(args=args):
                directory = os.open(tempfile.gettempdir(), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    result = subprocess.run(ferry(*args), stdin=directory,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            timeout=30, encoding='utf-8', errors='replace')
                finally:
                    os.close(directory)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertEqual(result.stderr.splitlines(),
                                 ['ferry: read from standard input: Is a directory'])


if __name__ == '__main__':
    unittest.main()

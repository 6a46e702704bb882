"""Every numeric option of every command refuses what is not a number in its
range: the walk reads the options from ``ferry --option-table``, so an option
added later is walked too, and none can be forgotten.

For each option whose type is one of the numeric kinds of cli/common/numbers
(SECONDS, COUNT, SIZE, ...), the command runs with that option set to each of
``nan``, ``inf``, ``-1``, ``1e400``, ``abc`` and an empty string, plus what the
command needs to reach its parsing (the subcommand path, the required
positionals).  Each run must end within 2 s (less the time it waited for a
CPU: the machine may be busy with other work) with exit 2, nothing on standard
output and exactly one line on standard error that names the option and says
either "is not a ..." (not a number) or "is out of range" (a number): never a
crash, never a sanitizer report, never a run that starts working.

The table itself must show that every numeric option was converted: no
option keeps one of CLI11's raw numeric type names (FLOAT, INT, UINT,
NUMBER), and every option whose name says it holds a number has a numeric kind.
"""

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from ferrytest import ferry, run

NUMERIC_KINDS = {'SECONDS', 'MILLISECONDS', 'RATE', 'PROBABILITY', 'FRACTION',
                 'FACTOR', 'SIZE', 'COUNT', 'INTEGER'}
RAW_NUMERIC_TYPES = {'FLOAT', 'INT', 'UINT', 'NUMBER'}

BAD_VALUES = {
    'nan': 'is not',
    'inf': 'is not',
    '-1': 'is out of range',
    '1e400': 'is out of range',
    'abc': 'is not',
    '': 'is not',
}

# Parts of an option's name that say it holds a number.
NUMBER_WORDS = ('timeout', 'wait', 'interval', 'delay', 'idle', 'duration',
                'warmup', 'rate', 'count', 'size', 'bytes', 'frame', 'water',
                'conns', 'connections', 'threads', 'tries', 'seed', 'ttl',
                'jitter', 'factor', 'drop', 'cap', 'budget', 'requests',
                'pipeline', 'pid', 'late')

PER_RUN_LIMIT = 2.0     # seconds for one refusal, start of the process to its exit
WORKERS = 3             # concurrent runs: the machine may have two cores


def time_off_the_run_queue(proc, start, limit):
    """Seconds from `start` to the exit of `proc`, less the time it was ready
    to run but waited for a CPU (the kernel's run_delay in /proc/PID/schedstat,
    read from the exited process before it is reaped); None if it has not
    exited within `limit` seconds. What is left is the process's own time,
    running or blocked: a command waiting on the network counts in full, a
    machine busy with other work does not."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        readable, _, _ = select.select([pidfd], [], [], limit)
        if not readable:
            return None
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        elapsed = time.monotonic() - start
        with open('/proc/%d/schedstat' % proc.pid) as f:
            run_delay_ns = int(f.read().split()[1])
        proc.wait()
        return elapsed - run_delay_ns / 1e9
    finally:
        os.close(pidfd)


def option_table():
    result = run(ferry('--option-table'), timeout=20)
    if result.returncode != 0:
        raise AssertionError('ferry --option-table failed: %r' % (result,))
    return json.loads(result.stdout)


def commands(table, path=()):
    """(path, command) for every command and subcommand below the root."""
    for sub in table['subcommands']:
        here = path + (sub['name'],)
        yield here, sub
        yield from commands(sub, here)


def kind(option):
    """The type name without what a validator appends (TEXT:PORT -> TEXT)."""
    return option['type'].split(':')[0]


def option_flag(option):
    """The long name when there is one: --timeout rather than -W."""
    return max(option['names'], key=len)


class OptionWalk(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.table = option_table()
        # A port nobody listens on, held bound for the whole walk so that
        # nothing else takes it: a command that got past its parsing would
        # find no server there instead of someone's.
        cls.held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.held.bind(('127.0.0.1', 0))
        cls.port = cls.held.getsockname()[1]

    @classmethod
    def tearDownClass(cls):
        cls.held.close()

    def positional_value(self, name, path):
        values = {
            'host': '127.0.0.1', 'interface': '127.0.0.1',
            'network': '127.255.255.255', 'group': '239.255.0.1',
            'port': str(self.port), 'bytecount': '16',
        }
        if name not in values:
            self.fail('the walk has no value for the required positional %s of '
                      'ferry %s: add one' % (name, ' '.join(path)))
        return values[name]

    def argv(self, path, command, option, value):
        """The command line that sets ``option`` to ``value``."""
        positionals = [o for o in command['options'] if o['positional']]
        args = list(path)
        if option['positional']:
            # Every positional up to this one, in order.
            for p in positionals:
                if p is option:
                    args.append(value)
                    break
                args.append(self.positional_value(p['name'], path))
            return args
        for p in positionals:
            if p['required']:
                args.append(self.positional_value(p['name'], path))
        return args + [option_flag(option), value]

    def numeric_options(self):
        return [(path, command, option)
                for path, command in commands(self.table)
                for option in command['options'] if kind(option) in NUMERIC_KINDS]

    def test_no_raw_numeric_type_is_left(self):
        for path, command in commands(self.table):
            for option in command['options']:
                with self.subTest(command=' '.join(path), option=option['name']):
                    self.assertNotIn(kind(option), RAW_NUMERIC_TYPES,
                                     'declare it with add_number (cli/common/numbers.hpp)')

    def test_options_named_for_numbers_are_numeric(self):
        for path, command in commands(self.table):
            for option in command['options']:
                name = option['name'].lstrip('-')
                if not option['takes_value']:
                    continue
                if any(word in name for word in NUMBER_WORDS):
                    with self.subTest(command=' '.join(path), option=option['name']):
                        self.assertIn(kind(option), NUMERIC_KINDS)

    def test_the_walk_is_not_empty(self):
        found = self.numeric_options()
        self.assertGreater(len(found), 40, 'the walk found too few numeric options')
        kinds = {kind(option) for _, _, option in found}
        self.assertGreaterEqual(kinds, {'SECONDS', 'COUNT', 'SIZE'})

    def test_every_numeric_option_refuses_bad_values(self):
        cases = []
        for path, command, option in self.numeric_options():
            for value, says in BAD_VALUES.items():
                cases.append((path, option, value, says,
                              self.argv(path, command, option, value)))

        def attempt(case):
            argv = case[-1]
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                start = time.monotonic()
                proc = subprocess.Popen(ferry(*argv), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, start_new_session=True)
                took = time_off_the_run_queue(proc, start, PER_RUN_LIMIT * 5)
                if took is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return None, PER_RUN_LIMIT * 5, 'timeout'
                out.seek(0)
                err.seek(0)
                result = subprocess.CompletedProcess(
                    argv, proc.returncode,
                    out.read().decode(errors='backslashreplace'),
                    err.read().decode(errors='backslashreplace'))
            return result, took, None

        # A few at a time, each bounded: the whole walk is a few hundred runs.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(pool.map(attempt, cases))

        for (path, option, value, says, argv), (result, took, timeout) in zip(cases, outcomes):
            with self.subTest(argv=' '.join(argv)):
                self.assertIsNone(timeout, 'still running after %g s' % (PER_RUN_LIMIT * 5))
                self.assertLess(took, PER_RUN_LIMIT, 'took %.2f s (not waiting for a CPU)' % took)
                self.assertEqual(result.returncode, 2, result)
                self.assertEqual(result.stdout, '')
                lines = result.stderr.splitlines()
                self.assertEqual(len(lines), 1, result.stderr)
                line = lines[0]
                self.assertTrue(line.startswith('ferry: '), line)
                self.assertIn(option_flag(option) if not option['positional']
                              else option['name'], line)
                self.assertIn(says, line)
                self.assertNotIn('Sanitizer', line)


if __name__ == '__main__':
    unittest.main()

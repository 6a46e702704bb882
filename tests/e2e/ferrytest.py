"""ferrytest: the harness every end-to-end test imports.

The e2e tests are plain unittest modules run by ctest as
``python3 -m unittest -v test_xxx`` with the working directory tests/e2e and
FERRY_BIN set to the ferry binary under test.  Python standard library only.

What is here:

* ``FERRY``, ``TEXTBOOK``, ``PY`` and the argv builders ``ferry(...)`` and
  ``textbook(...)``.
* ``Proc``: a running program whose standard output is read line by line by
  a background thread, so that ``expect(regex, timeout)`` waits for a line
  without ever blocking for ever.  Always use it as a context manager (or via
  ``TestCase.spawn``): the process is killed and reaped however the test ends.
* ``run(...)``: run a program to completion, with a time limit.
* ``server_port`` / ``server_address``: wait for a server's first line and
  read its bound address from it (ferry's ``Listening at 127.0.0.1:1060`` /
  ``[::1]:1060`` and the textbook renditions' ``Listening at ('127.0.0.1',
  1060)`` alike).
* ``TwoHosts``: two network namespaces joined by a veth pair, for tests that
  need a real link (an MTU, a broadcast domain) and not loopback.

No helper sleeps to synchronise: a test waits for a line or for an exit, each
with a deadline.
"""

import atexit
import itertools
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

try:
    FERRY = os.environ['FERRY_BIN']
except KeyError:
    raise RuntimeError(
        'FERRY_BIN is not set: run the e2e tests through ctest, or set '
        'FERRY_BIN to the path of the ferry binary') from None

HERE = os.path.dirname(os.path.abspath(__file__))
TEXTBOOK = os.path.normpath(os.path.join(HERE, '..', 'interop', 'textbook'))
PY = sys.executable

DEFAULT_TIMEOUT = 10.0
ENCODING = 'utf-8'
ERRORS = 'backslashreplace'

# Children die with the test process even if it is killed outright (ctest's
# time limit): setpriv sets PR_SET_PDEATHSIG, and it and `ip netns exec` both
# exec, so the pid we hold is the program's own.
_SETPRIV = shutil.which('setpriv')


def ferry(*args):
    """argv for the ferry binary under test: ferry('udp-local', 'server')."""
    return [FERRY] + [str(a) for a in args]


def textbook(script, *args):
    """argv for a textbook rendition: textbook('udp_local.py', 'server')."""
    return [PY, os.path.join(TEXTBOOK, script)] + [str(a) for a in args]


def _argv(args, netns):
    args = [str(a) for a in args]
    prefix = []
    if _SETPRIV and threading.current_thread() is threading.main_thread():
        # The death signal fires when the *thread* that forked exits, so it
        # is only armed for children of the main thread.
        prefix = [_SETPRIV, '--pdeathsig', 'KILL', '--']
    if netns:
        prefix += ['ip', 'netns', 'exec', str(netns)]
    return prefix + args


def _text(data):
    if data is None:
        return ''
    if isinstance(data, bytes):
        return data.decode(ENCODING, ERRORS)
    return data


def _show(args):
    return ' '.join(str(a) for a in args)


_EOF = object()
_live = set()          # Procs not yet closed: killed at interpreter exit
_live_hosts = set()    # TwoHosts not yet closed: removed at interpreter exit


@atexit.register
def _clean_up_leftovers():
    for proc in list(_live):
        proc.close()
    for hosts in list(_live_hosts):
        hosts.close()


class Proc:
    """A program running under test.

    ``Proc(args, netns=None, text=True, env=None, cwd=None, stdin=PIPE)``
    starts ``args`` (under ``ip netns exec NETNS`` when netns is given) in its
    own process group with stdin, stdout and stderr as pipes.  In text mode
    (the default) lines are str, decoded as UTF-8, with universal newlines
    (so a progress count printed after '\\r' arrives as a line of its own);
    with ``text=False`` they are bytes.

    Use it as a context manager: on exit the process group is killed and the
    process reaped, whatever happened in the test.
    """

    def __init__(self, args, *, netns=None, text=True, env=None, cwd=None,
                 stdin=subprocess.PIPE):
        self.args = [str(a) for a in args]
        self.netns = netns
        self.text = text
        self._lock = threading.Lock()
        self._out = []          # every stdout line read so far (with endings)
        self._err = []          # every stderr chunk read so far
        self._lines = queue.Queue()
        self._err_lines = queue.Queue()
        self._closed = False
        kwargs = dict(encoding=ENCODING, errors=ERRORS) if text else {}
        self.popen = subprocess.Popen(
            _argv(self.args, netns), stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True,
            **kwargs)
        _live.add(self)
        self._readers = [
            threading.Thread(target=self._pump_stdout, daemon=True,
                             name='stdout of %d' % self.popen.pid),
            threading.Thread(target=self._pump_stderr, daemon=True,
                             name='stderr of %d' % self.popen.pid),
        ]
        for reader in self._readers:
            reader.start()

    # -- background readers ---------------------------------------------

    def _pump_stdout(self):
        try:
            for line in iter(self.popen.stdout.readline, '' if self.text
                             else b''):
                with self._lock:
                    self._out.append(line)
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(_EOF)

    def _pump_stderr(self):
        try:
            for chunk in iter(self.popen.stderr.readline, '' if self.text
                              else b''):
                with self._lock:
                    self._err.append(chunk)
                self._err_lines.put(chunk)
        except (OSError, ValueError):
            pass
        finally:
            self._err_lines.put(_EOF)

    # -- information ----------------------------------------------------

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        """The exit code if the process has ended, else None."""
        return self.popen.poll()

    def __repr__(self):
        where = ' in netns %s' % self.netns if self.netns else ''
        return '<Proc %d: %s%s>' % (self.pid, _show(self.args), where)

    def output(self):
        """All of standard output read so far (everything, once exited)."""
        self._settle()
        with self._lock:
            return ('' if self.text else b'').join(self._out)

    def stderr_text(self):
        """All of standard error read so far, as str."""
        self._settle()
        with self._lock:
            return _text(('' if self.text else b'').join(self._err))

    def lines(self):
        """Standard output read so far, as a list of lines without endings."""
        return self.output().splitlines()

    def _settle(self):
        # Once the process has ended, let the readers reach end of file so
        # that output() is complete (bounded: a grandchild may hold a pipe).
        if self.popen.poll() is not None:
            for reader in self._readers:
                reader.join(timeout=5)

    def describe(self):
        """Everything known about the process, for failure messages."""
        rc = self.popen.poll()
        state = 'still running' if rc is None else 'exit code %s' % rc
        return ('%r (%s)\n--- stdout so far ---\n%s\n--- stderr so far ---\n%s'
                % (self, state, _text(self.output()), self.stderr_text()))

    # -- waiting for output ---------------------------------------------

    def expect(self, regex, timeout=DEFAULT_TIMEOUT, stderr=False):
        """Read stdout lines until one matches ``regex`` (re.search, line
        without its ending) and return the match.  Lines read past are
        consumed.  Fails with everything read so far if no line matches
        within ``timeout`` seconds, or if stdout ends first.  With
        ``stderr=True`` the lines are standard error's (stderr_text() still
        has them all)."""
        lines = self._err_lines if stderr else self._lines
        stream = 'stderr' if stderr else 'stdout'
        if isinstance(regex, (str, bytes)):
            if self.text and isinstance(regex, bytes):
                regex = regex.decode(ENCODING)
            elif not self.text and isinstance(regex, str):
                regex = regex.encode(ENCODING)
            pattern = re.compile(regex)
        else:
            pattern = regex
        ending = '\r\n' if self.text else b'\r\n'
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                raise AssertionError(
                    'no line matching %r within %gs from %s'
                    % (pattern.pattern, timeout, self.describe())) from None
            if line is _EOF:
                lines.put(_EOF)           # later calls fail at once too
                try:
                    self.popen.wait(timeout=max(remaining, 0.5))
                except subprocess.TimeoutExpired:
                    pass
                raise AssertionError(
                    '%s ended with no line matching %r: %s'
                    % (stream, pattern.pattern, self.describe()))
            match = pattern.search(line.rstrip(ending))
            if match:
                return match

    # -- standard input -------------------------------------------------

    def send(self, data):
        """Write to the program's stdin and flush."""
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def sendline(self, line):
        self.send(line + ('\n' if self.text else b'\n'))

    def close_stdin(self):
        if self.popen.stdin and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass

    # -- ending ---------------------------------------------------------

    def wait(self, timeout=DEFAULT_TIMEOUT):
        """Wait for the process to exit and return its exit code (negative:
        killed by that signal).  If it does not exit within ``timeout``
        seconds, kill it and fail."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('%s did not exit within %gs'
                                 % (self.describe(), timeout)) from None
        self._settle()
        return rc

    def send_signal(self, sig):
        """Send ``sig`` to the process (not its group) if it is running."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, timeout=DEFAULT_TIMEOUT, sig=signal.SIGTERM):
        """Send SIGTERM (or ``sig``) and wait(timeout); returns the exit
        code.  A process that has already exited is simply reaped."""
        self.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL the process and its process group, and reap it."""
        # The group id is certainly ours only until the leader is reaped
        # (returncode is set by the reaping), so the group is killed first.
        if self.popen.returncode is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.popen.wait()

    def close(self):
        """Kill whatever is left, reap it, close the pipes.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        self.kill()
        self.close_stdin()
        for reader in self._readers:
            reader.join(timeout=5)
        if not any(r.is_alive() for r in self._readers):
            for stream in (self.popen.stdout, self.popen.stderr):
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def run(args, timeout=20, input=None, netns=None, text=True, env=None,
        cwd=None):
    """Run ``args`` to completion and return a CompletedProcess (stdout and
    stderr captured; str unless ``text=False``).  stdin is ``input`` or
    /dev/null.  If it runs longer than ``timeout`` seconds it is killed and
    the test fails with whatever it printed."""
    kwargs = dict(encoding=ENCODING, errors=ERRORS) if text else {}
    if input is None:
        kwargs['stdin'] = subprocess.DEVNULL
    else:
        kwargs['input'] = input
    argv = _argv(args, netns)
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              env=env, cwd=cwd, start_new_session=True,
                              **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            '%s did not finish within %gs\n--- stdout ---\n%s\n'
            '--- stderr ---\n%s' % (_show(args), timeout, _text(exc.stdout),
                                    _text(exc.stderr))) from None


# -- bound addresses ------------------------------------------------------

LISTENING_RE = r'^Listening\b'

_ADDRESS_FORMS = (
    re.compile(r"\(\s*'([^']*)',\s*(\d+)"),          # ('127.0.0.1', 1060[, ...])
    re.compile(r'\[([^\]]*)\]:(\d+)\b'),               # [::1]:1060
    re.compile(r"([^\s\[\]()',]+):(\d+)\b"),           # 127.0.0.1:1060
)


def parse_address(text):
    """(host, port) from the first address in ``text``, in any of the forms
    the servers print: ``HOST:PORT``, ``[V6]:PORT``, ``('HOST', PORT...)``.
    None if there is none."""
    for form in _ADDRESS_FORMS:
        match = form.search(text)
        if match:
            return match.group(1), int(match.group(2))
    return None


def server_address(proc, regex=LISTENING_RE, timeout=DEFAULT_TIMEOUT,
                   stderr=False):
    """Wait for the line matching ``regex`` (by default the first line of a
    ferry server or textbook rendition, ``Listening ...``) and return the
    bound address as (host, port).  If the regex has named groups ``port``
    (and ``host``) they are used; otherwise the address is parsed from the
    matched line.  ``stderr=True``: the line is on standard error (ferry
    listen, and any command run with --json)."""
    match = proc.expect(regex, timeout=timeout, stderr=stderr)
    groups = match.re.groupindex
    if 'port' in groups and match.group('port') is not None:
        host = match.group('host') if 'host' in groups else None
        return host, int(match.group('port'))
    line = match.string
    if isinstance(line, bytes):
        line = line.decode(ENCODING, ERRORS)
    address = parse_address(line)
    if address is None:
        raise AssertionError('no HOST:PORT in the line %r from %s'
                             % (line, proc.describe()))
    return address


def server_port(proc, regex=LISTENING_RE, timeout=DEFAULT_TIMEOUT,
                stderr=False):
    """The port of server_address(proc, regex, timeout, stderr), as an int."""
    return server_address(proc, regex, timeout, stderr)[1]


# -- names that must not be looked up on the real network -----------------

def offline(argv):
    """``argv`` run in a network namespace of its own (nothing in it but a
    loopback that is down), via unshare(1).  A test of an unknown host name
    must run this way: looking a name up otherwise sends a DNS query to the
    machine's nameserver, which is not an address our tests may send to.
    There the resolver fails at once, locally, and the program under test
    still reports its lookup error.  Needs root (CI runs as root)."""
    return ['unshare', '--net', '--'] + [str(a) for a in argv]


def offline_unavailable():
    """Why offline() cannot work here, or None."""
    if os.geteuid() != 0:
        return 'a private network namespace needs root (running as uid %d)' % os.geteuid()
    if shutil.which('unshare') is None:
        return 'unshare(1) is not installed'
    return None


# -- unittest conveniences ------------------------------------------------

class TestCase(unittest.TestCase):
    """unittest.TestCase with spawn(): a Proc killed when the test ends."""

    def spawn(self, args, **kwargs):
        proc = Proc(args, **kwargs)
        self.addCleanup(proc.close)
        return proc

    def check_clean_exit(self, proc):
        """A ferry process still running at the end of a test must stop on
        SIGTERM with exit 0 and nothing from the sanitizers (leaks included).
        Register it with addCleanup."""
        if proc.returncode is None:
            self.assertEqual(proc.stop(), 0, proc.describe())
        err = proc.stderr_text()
        self.assertNotIn('Sanitizer', err)
        self.assertNotIn('runtime error', err)


# -- two hosts in network namespaces --------------------------------------

def _ip(*args, timeout=10):
    return subprocess.run(['ip'] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, encoding=ENCODING,
                          errors=ERRORS, timeout=timeout)


class Host:
    """One side of TwoHosts: its namespace, address and interface."""

    def __init__(self, ns, ip, ifname):
        self.ns, self.ip, self.ifname = ns, ip, ifname

    def proc(self, args, **kwargs):
        """A Proc running inside this host's namespace."""
        return Proc(args, netns=self.ns, **kwargs)

    def run(self, args, **kwargs):
        """run() inside this host's namespace."""
        return run(args, netns=self.ns, **kwargs)

    def __repr__(self):
        return '<Host %s %s dev %s>' % (self.ns, self.ip, self.ifname)


class TwoHosts:
    """Two network namespaces, a and b, joined by a veth pair.

    ``TwoHosts(mtu=1400)``: namespaces ``ferry-<pid>-<k>-a`` / ``-b`` (k
    counts instances in this process), interfaces of that MTU carrying
    10.77.N.1/24 (a) and 10.77.N.2/24 (b) with broadcast 10.77.N.255, where
    N comes from the pid; both links and both loopbacks up.  Nothing else is
    connected to them: traffic between a and b never leaves the pair.

    Use as a context manager, or for a whole class:

        @classmethod
        def setUpClass(cls):
            cls.hosts = TwoHosts.for_class(cls, mtu=1400)

    Creation raises unittest.SkipTest (with the reason) when not root, when
    ``ip`` is missing, or when the kernel refuses namespaces or veth.  The
    namespaces are removed on exit, also after failures and after a failed
    set-up.
    """

    _instances = itertools.count()

    def __init__(self, mtu=1400):
        k = next(self._instances)
        pid = os.getpid()
        self.mtu = int(mtu)
        self.subnet = (pid + k) % 250 + 1
        prefix = '10.77.%d.' % self.subnet
        self.a = Host('ferry-%d-%d-a' % (pid, k), prefix + '1',
                      'fy%dx%da' % (pid, k))
        self.b = Host('ferry-%d-%d-b' % (pid, k), prefix + '2',
                      'fy%dx%db' % (pid, k))
        self.broadcast = prefix + '255'
        self.prefixlen = 24
        self._created = []
        self._started = False

    # Flat aliases.
    ns_a = property(lambda self: self.a.ns)
    ns_b = property(lambda self: self.b.ns)
    ip_a = property(lambda self: self.a.ip)
    ip_b = property(lambda self: self.b.ip)
    if_a = property(lambda self: self.a.ifname)
    if_b = property(lambda self: self.b.ifname)

    @staticmethod
    def unavailable():
        """Why namespaces cannot be used here, or None if they can."""
        if os.geteuid() != 0:
            return 'network namespaces need root (running as uid %d)' % (
                os.geteuid())
        if shutil.which('ip') is None:
            return "the 'ip' command (iproute2) is not installed"
        try:
            result = _ip('netns', 'list')
        except (OSError, subprocess.SubprocessError) as exc:
            return "'ip netns list' failed: %s" % exc
        if result.returncode != 0:
            return "'ip netns' is unavailable: %s" % result.stderr.strip()
        return None

    def _sweep(self):
        # Namespaces left by a test process that was killed outright (a
        # ctest time-out): their names carry the pid of a process that no
        # longer exists.  Of this process's own names only this instance's
        # can be stale (left by a dead process that had the same pid).
        mine = (self.a.ns, self.b.ns)
        for match in re.finditer(r'^(ferry-(\d+)-\d+-[ab])\b',
                                 _ip('netns', 'list').stdout, re.M):
            name, pid = match.group(1), int(match.group(2))
            if pid == os.getpid():
                if name not in mine:
                    continue                # another live TwoHosts of ours
            else:
                try:
                    os.kill(pid, 0)
                    continue                # its owner is alive
                except ProcessLookupError:
                    pass                    # its owner is gone
                except PermissionError:
                    continue                # alive, someone else's
            _ip('netns', 'delete', name)

    def _must(self, *args):
        result = _ip(*args)
        if result.returncode != 0:
            raise RuntimeError('ip %s: %s' % (_show(args),
                                              result.stderr.strip()))
        return result

    def start(self):
        reason = self.unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        _live_hosts.add(self)
        try:
            self._sweep()
            for host in (self.a, self.b):
                result = _ip('netns', 'add', host.ns)
                if result.returncode != 0:
                    raise unittest.SkipTest(
                        'cannot create network namespace %s: %s'
                        % (host.ns, result.stderr.strip()))
                self._created.append(host.ns)
            result = _ip('link', 'add', self.a.ifname, 'netns', self.a.ns,
                         'type', 'veth', 'peer', 'name', self.b.ifname,
                         'netns', self.b.ns)
            if result.returncode != 0:
                raise unittest.SkipTest('cannot create a veth pair: %s'
                                        % result.stderr.strip())
            for host in (self.a, self.b):
                self._must('-n', host.ns, 'link', 'set', 'lo', 'up')
                self._must('-n', host.ns, 'link', 'set', host.ifname,
                           'mtu', self.mtu)
                self._must('-n', host.ns, 'addr', 'add',
                           '%s/%d' % (host.ip, self.prefixlen),
                           'broadcast', self.broadcast, 'dev', host.ifname)
                self._must('-n', host.ns, 'link', 'set', host.ifname, 'up')
        except BaseException:
            self.close()
            raise
        self._started = True
        return self

    def close(self):
        """Delete both namespaces (and with them the veth pair).
        Idempotent; errors are reported, not raised."""
        while self._created:
            ns = self._created.pop()
            result = _ip('netns', 'delete', ns)
            if result.returncode != 0:
                print('ferrytest: ip netns delete %s: %s'
                      % (ns, result.stderr.strip()), file=sys.stderr)
        self._started = False
        _live_hosts.discard(self)

    @classmethod
    def for_class(cls, test_class, mtu=1400):
        """Start a TwoHosts for a TestCase class (call from setUpClass);
        it is removed by a class cleanup."""
        hosts = cls(mtu=mtu)
        hosts.start()
        test_class.addClassCleanup(hosts.close)
        return hosts

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        return '<TwoHosts %r <-> %r mtu %d>' % (self.a, self.b, self.mtu)

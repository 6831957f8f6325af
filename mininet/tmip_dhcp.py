"""Real DHCP clients in Mininet hosts, each with its own files.

Mininet hosts share the machine's file system, so every client gets its
own lease, pid, log and event files in a run directory.  Its hook script
from ``mininet/hooks`` sets the address, mask, broadcast address and
default route but never writes ``/etc/resolv.conf``.  The hook appends one
line per client event to the event file; ``DhcpClient.events`` reads it.

``CLIENTS`` maps a client name to its class: ``dhclient`` (ISC),
``udhcpc`` (busybox) and ``dhcpcd``.  Each is stopped by its own pid.
"""

import ipaddress
import os
import re
import signal
import subprocess
import time

HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hooks')

# Event names, as each client's hook writes them, after which the
# interface holds a lease.
BOUND_EVENTS = frozenset(['BOUND', 'RENEW', 'REBIND', 'REBOOT',
                          'bound', 'renew'])


class DhcpEvent:
    """One call of a client's hook: when, which event, which address."""

    __slots__ = ('time', 'reason', 'address')

    def __init__(self, time_, reason, address):
        self.time = time_
        self.reason = reason
        self.address = address

    def __repr__(self):
        return 'DhcpEvent(%.3f, %r, %r)' % (self.time, self.reason,
                                            self.address)


def ipv4_state(host, intf):
    """Return the IPv4 address, broadcast and default route of ``intf``.

    The result is a dict with ``interface`` (an IPv4Interface such as
    10.1.0.2/30, or None), ``broadcast`` and ``router`` (IPv4Address or
    None), as ``ip`` reports them inside the host.
    """
    state = {'interface': None, 'broadcast': None, 'router': None}
    for line in host.cmd('ip -4 -o addr show dev %s' % intf).splitlines():
        match = re.search(r'inet (\S+)(?: brd (\S+))?', line)
        if match:
            state['interface'] = ipaddress.IPv4Interface(match.group(1))
            if match.group(2):
                state['broadcast'] = ipaddress.IPv4Address(match.group(2))
            break
    routes = host.cmd('ip -4 route show default dev %s' % intf)
    match = re.search(r'default via (\S+)', routes)
    if match:
        state['router'] = ipaddress.IPv4Address(match.group(1))
    return state


def _pid_runs(pid, program):
    """Tell whether ``pid`` is alive and runs ``program``."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as cmdline:
            return program.encode() in cmdline.read()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _stop_pid(pid, program, timeout=5.0):
    """Send SIGTERM to ``pid`` if it runs ``program``; SIGKILL if it stays.

    The command line is checked first so that a pid file left behind by
    a client that already exited never gets another process killed.
    """
    if not pid or not _pid_runs(pid, program):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_runs(pid, program):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


class DhcpClient:
    """A DHCP client process on one interface of a Mininet host."""

    name = None
    program = None
    hook = None

    def __init__(self, host, intf, run_dir):
        self.host = host
        self.intf = intf
        directory = os.path.join(run_dir, 'dhcp')
        os.makedirs(directory, exist_ok=True)
        base = os.path.join(directory, '%s.%s' % (host.name, self.name))
        self.lease_path = base + '.leases'
        self.pid_path = base + '.pid'
        self.log_path = base + '.log'
        self.event_path = base + '.events'
        self.process = None

    def command(self):
        """Return the client's command line as a list."""
        raise NotImplementedError

    def environment(self):
        """Return the environment the client and its hook run with."""
        env = dict(os.environ)
        env['TMIP_EVENT_LOG'] = self.event_path
        return env

    def start(self):
        """Start the client in the host's namespace."""
        with open(self.log_path, 'ab') as log:
            self.process = self.host.popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.environment())
        return self

    def pid(self):
        """Return the pid of the running client, or None."""
        if self.process is not None and self.process.poll() is None:
            return self.process.pid
        return None

    def running(self):
        """Tell whether the client process is alive."""
        return self.pid() is not None

    def events(self):
        """Return the hook's events so far, oldest first."""
        events = []
        try:
            with open(self.event_path) as event_file:
                lines = event_file.read().splitlines()
        except FileNotFoundError:
            return events
        for line in lines:
            fields = line.split()
            if len(fields) < 2:
                continue
            address = fields[2] if len(fields) > 2 else None
            events.append(DhcpEvent(float(fields[0]), fields[1], address))
        return events

    def bound_events(self, since=0.0):
        """Return the events after which the host held a lease."""
        return [event for event in self.events()
                if event.reason in BOUND_EVENTS and event.address
                and event.time >= since]

    def wait_bound(self, timeout=30.0, since=0.0):
        """Wait until the client holds a lease; return ``ipv4_state``.

        ``since`` (wall clock) ignores leases from before that time.
        Raises TimeoutError, with the end of the client's log, if no lease
        arrives in ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            bound = self.bound_events(since)
            if bound:
                state = ipv4_state(self.host, self.intf)
                interface = state['interface']
                if interface and str(interface.ip) == bound[-1].address:
                    return state
            if time.monotonic() > deadline:
                raise TimeoutError(
                    '%s on %s got no lease in %.0f s; end of %s:\n%s'
                    % (self.name, self.host.name, timeout, self.log_path,
                       self.log_tail()))
            time.sleep(0.1)

    def renew(self):
        """Make the client renew its lease now."""
        raise NotImplementedError

    def stop(self):
        """Stop the client by its pid."""
        if self.process is not None and self.process.poll() is None:
            _stop_pid(self.process.pid, self.program)
            self.process.wait()

    def log_tail(self, lines=20):
        """Return the last lines of the client's output."""
        try:
            with open(self.log_path, errors='replace') as log:
                return ''.join(log.readlines()[-lines:])
        except FileNotFoundError:
            return '(no log)'


class Dhclient(DhcpClient):
    """ISC dhclient: one attempt (-1), then a daemon that renews.

    ``dhclient -1`` runs in the foreground until it gets a lease (or
    gives up after its timeout, exit status 2), then forks a daemon that
    writes its pid file and renews at T1.
    """

    name = 'dhclient'
    program = 'dhclient'
    hook = os.path.join(HOOK_DIR, 'dhclient-hook')

    def command(self):
        return ['dhclient', '-1', '-v', '-lf', self.lease_path,
                '-pf', self.pid_path, '-sf', self.hook,
                '-e', 'TMIP_EVENT_LOG=%s' % self.event_path, self.intf]

    def pid(self):
        pid = super().pid()
        if pid is not None:
            return pid
        try:
            with open(self.pid_path) as pid_file:
                pid = int(pid_file.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_runs(pid, self.program) else None

    def renew(self):
        """Restart dhclient, which requests its recorded lease (INIT-REBOOT).

        ISC dhclient has no signal that renews at once.  A new dhclient
        with the same lease file starts in INIT-REBOOT and requests the
        address it holds, as after a reboot.
        """
        self.stop()
        self.start()

    def stop(self):
        pid = self.pid()
        super().stop()
        if pid is not None:
            _stop_pid(pid, self.program)


class Udhcpc(DhcpClient):
    """busybox udhcpc in the foreground; SIGUSR1 makes it renew."""

    name = 'udhcpc'
    program = 'udhcpc'
    hook = os.path.join(HOOK_DIR, 'udhcpc-hook')

    def command(self):
        return ['busybox', 'udhcpc', '-f', '-i', self.intf, '-s', self.hook,
                '-p', self.pid_path]

    def renew(self):
        """Send SIGUSR1: udhcpc renews (RENEWING, unicast to the server)."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError('udhcpc on %s is not running' % self.host)
        os.kill(pid, signal.SIGUSR1)


class Dhcpcd(DhcpClient):
    """dhcpcd in the foreground, IPv4 only, with a hook that logs only.

    dhcpcd keeps its lease and pid files under /var/lib/dhcpcd and
    /run/dhcpcd, named after the interface, which is unique per host.  It
    has no option to move them.  The lease file is removed before the
    first start and after the stop, so that a lease left by an earlier
    network with the same interface name is never requested again.
    """

    name = 'dhcpcd'
    program = 'dhcpcd'
    hook = os.path.join(HOOK_DIR, 'dhcpcd-hook')
    lease_directory = '/var/lib/dhcpcd'

    def __init__(self, host, intf, run_dir):
        super().__init__(host, intf, run_dir)
        self.lease_path = os.path.join(self.lease_directory,
                                       '%s.lease' % intf)
        self._remove_lease()

    def _remove_lease(self):
        try:
            os.remove(self.lease_path)
        except FileNotFoundError:
            pass

    def command(self):
        return ['dhcpcd', '--nobackground', '--ipv4only', '--noipv4ll',
                '--script', self.hook,
                '--env', 'TMIP_EVENT_LOG=%s' % self.event_path, self.intf]

    def renew(self):
        """Run ``dhcpcd --rebind``, so that dhcpcd rebinds its lease."""
        output = self.host.cmd('dhcpcd --rebind --ipv4only %s' % self.intf)
        return output

    def stop(self):
        super().stop()
        self._remove_lease()


CLIENTS = {client.name: client for client in (Dhclient, Udhcpc, Dhcpcd)}

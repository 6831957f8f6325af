"""Hosts as network namespaces joined to OVS bridges by veth pairs.

Each ``Host`` owns one namespace and one veth pair; ``remove`` deletes
exactly those and stops the processes the host started, by pid.
"""

import os
import signal
import subprocess
import time

from support.ovs import run

DHCLIENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               'dhclient-script')


class Host:
    """A namespace with one interface, to be attached to a bridge."""

    def __init__(self, name, mac, workdir):
        self.name = name
        self.mac = mac
        self.workdir = workdir
        self.intf = 'eth0'
        self.outside = name[-13:] + 'o'
        self.bridge = None
        self.processes = []
        run('ip', 'netns', 'add', name)
        run('ip', 'link', 'add', self.outside, 'type', 'veth', 'peer',
            'name', self.intf, 'netns', name)
        self.ns('ip', 'link', 'set', self.intf, 'address', mac)
        self.ns('ip', 'link', 'set', 'lo', 'up')
        self.ns('ip', 'link', 'set', self.intf, 'up')
        run('ip', 'link', 'set', self.outside, 'up')
        # Without this TCP stalls in OVS's userspace datapath: the veth
        # leaves checksums to an offload that never happens.
        self.ns('ethtool', '-K', self.intf, 'tx', 'off', 'rx', 'off')
        run('ethtool', '-K', self.outside, 'tx', 'off', 'rx', 'off')
        # No IPv6 chatter: it would reach the controller as frames to
        # learn from, and the tests want to control every frame.
        self.ns('sysctl', '-q', '-w',
                'net.ipv6.conf.%s.disable_ipv6=1' % self.intf)

    def ns(self, *args, check=True):
        """Run a command inside the namespace and return its output."""
        return run('ip', 'netns', 'exec', self.name, *args, check=check)

    def popen(self, *args, **kwargs):
        """Start a process inside the namespace; it is stopped on remove."""
        process = subprocess.Popen(
            ('ip', 'netns', 'exec', self.name) + args,
            start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def attach(self, bridge):
        """Plug the host into a bridge (moving it if plugged elsewhere)."""
        if self.bridge is not None:
            run('ovs-vsctl', 'del-port', self.bridge, self.outside)
        run('ovs-vsctl', 'add-port', bridge, self.outside)
        self.bridge = bridge

    def port_number(self):
        """Return the OpenFlow port number of the host on its bridge."""
        return int(run('ovs-vsctl', 'get', 'interface', self.outside,
                       'ofport').strip())

    def dhclient(self, timeout=20):
        """Run dhclient once; return its exit status."""
        lease = os.path.join(self.workdir, '%s.leases' % self.name)
        pid = os.path.join(self.workdir, '%s.dhclient.pid' % self.name)
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.name, 'timeout', str(timeout),
             'dhclient', '-1', '-v', '-lf', lease, '-pf', pid,
             '-sf', DHCLIENT_SCRIPT, self.intf],
            capture_output=True, text=True)
        self.dhclient_output = result.stderr
        self._stop_pidfile(pid)
        return result.returncode

    def _stop_pidfile(self, path):
        try:
            with open(path) as pidfile:
                pid = int(pidfile.read().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def address(self):
        """Return the host's IPv4 address with prefix, or None."""
        text = self.ns('ip', '-4', '-o', 'addr', 'show', 'dev', self.intf)
        for word_list in (line.split() for line in text.splitlines()):
            if 'inet' in word_list:
                return word_list[word_list.index('inet') + 1]
        return None

    def ping(self, address, count=3, timeout=10):
        """Return True if at least one echo reply came back."""
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.name, 'ping', '-c', str(count),
             '-i', '0.2', '-W', '1', '-w', str(timeout), address],
            capture_output=True, text=True)
        return result.returncode == 0

    def remove(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
        if self.bridge is not None:
            run('ovs-vsctl', '--if-exists', 'del-port', self.bridge,
                self.outside, check=False)
        run('ip', 'link', 'del', self.outside, check=False)
        run('ip', 'netns', 'del', self.name, check=False)


def wait_until(predicate, timeout, interval=0.2):
    """Return True once ``predicate()`` is true, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

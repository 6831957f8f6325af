"""Traffic between Mininet hosts: ping, iperf3 TCP sessions, UDP probes.

Every process runs inside a Mininet host, writes its output to a file in
a run directory and is stopped by its own handle.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

PROBE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'probe.py')

# One interval line of iperf3's client output, e.g.
# "[  5]   1.00-1.50   sec  1.19 MBytes  20.0 Mbits/sec    0   ..."
_IPERF_INTERVAL = re.compile(
    r'^\[\s*\d+\]\s+([\d.]+)-([\d.]+)\s+sec\s+([\d.]+)\s+([KMG]?)Bytes')
_UNIT = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3}


def ping(host, address, count=1, timeout=1.0, interval=0.2):
    """Send ``count`` echo requests; return the number of replies."""
    output = host.cmd('ping -n -q -c %d -i %s -W %s %s'
                      % (count, interval, timeout, address))
    match = re.search(r'(\d+) received', output)
    return int(match.group(1)) if match else 0


def wait_ping(host, address, timeout=10.0):
    """Ping until one reply arrives; return the seconds it took or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if ping(host, address, count=1, timeout=0.5):
            return time.monotonic() - start
    return None


def _stop_process(process, sig=signal.SIGTERM, timeout=5.0):
    """Stop a process started here by its handle; SIGKILL if it stays."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def _listening(host, protocol, port):
    flag = '-ltnH' if protocol == 'tcp' else '-lunH'
    return (':%d ' % port) in host.cmd('ss %s' % flag)


def wait_listening(host, protocol, port, timeout=5.0):
    """Wait until a TCP or UDP socket listens on ``port`` in ``host``."""
    deadline = time.monotonic() + timeout
    while not _listening(host, protocol, port):
        if time.monotonic() > deadline:
            raise TimeoutError('nothing listens on %s port %d in %s after '
                               '%.0f s' % (protocol, port, host, timeout))
        time.sleep(0.05)


class IperfSession:
    """One iperf3 TCP session from ``client`` to a server on ``server``.

    The client sends at ``bitrate`` (iperf3's ``-b``, for TCP a pacing
    limit) for ``duration`` seconds and reports every half second, so
    that the session's progress around each move can be read back.
    """

    def __init__(self, client, server, address, port, run_dir,
                 bitrate='20M', duration=60):
        self.client = client
        self.server = server
        self.address = address
        self.port = port
        self.bitrate = bitrate
        self.duration = duration
        name = 'iperf-%s-%s-%d' % (client.name, server.name, port)
        self.client_log = os.path.join(run_dir, name + '.client.log')
        self.server_log = os.path.join(run_dir, name + '.server.log')
        self.server_process = None
        self.client_process = None
        self.started_at = None

    def start(self):
        """Start the server, wait until it listens, start the client."""
        with open(self.server_log, 'ab') as log:
            self.server_process = self.server.popen(
                ['iperf3', '-s', '-1', '-p', str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        wait_listening(self.server, 'tcp', self.port)
        with open(self.client_log, 'ab') as log:
            self.client_process = self.client.popen(
                ['iperf3', '-c', self.address, '-p', str(self.port),
                 '-t', str(self.duration), '-b', self.bitrate, '-i', '0.5',
                 '--forceflush', '--connect-timeout', '5000'],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()
        return self

    def intervals(self):
        """Return the client's reports as (start s, end s, bytes) tuples."""
        reports = []
        try:
            with open(self.client_log, errors='replace') as log:
                lines = log.read().splitlines()
        except FileNotFoundError:
            return reports
        for line in lines:
            match = _IPERF_INTERVAL.match(line.strip())
            if not match:
                continue
            start, end = float(match.group(1)), float(match.group(2))
            # The summary lines cover the whole run; skip them.
            if end - start > 1.0:
                continue
            size = float(match.group(3)) * _UNIT[match.group(4)]
            reports.append((start, end, int(size)))
        return reports

    def bytes_since(self, moment):
        """Return bytes sent in reports that began at or after ``moment``.

        ``moment`` is a ``time.monotonic()`` value.
        """
        offset = moment - self.started_at
        return sum(size for start, _end, size in self.intervals()
                   if start >= offset)

    def wait_progress(self, moment, timeout=10.0, minimum=1):
        """Wait until data flows after ``moment``; return True if it does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bytes_since(moment) >= minimum:
                return True
            if self.client_process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def running(self):
        """Tell whether the client process is still running."""
        return (self.client_process is not None
                and self.client_process.poll() is None)

    def finish(self, timeout=None):
        """Wait for the client to end; return True if it completed.

        A session completed when the client exited 0 and printed iperf3's
        "iperf Done." after exchanging results with the server.
        """
        if timeout is None:
            timeout = self.duration + 15
        try:
            self.client_process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return False
        with open(self.client_log, errors='replace') as log:
            output = log.read()
        return self.client_process.returncode == 0 and 'iperf Done.' in output

    def stop(self):
        """Stop the client and the server by their handles."""
        _stop_process(self.client_process)
        _stop_process(self.server_process)


class ProbeStream:
    """A UDP probe stream (``probe.py``) from ``sender`` to ``receiver``."""

    def __init__(self, sender, receiver, address, port, run_dir,
                 rate=1000):
        self.sender = sender
        self.receiver = receiver
        self.address = address
        self.port = port
        self.rate = rate
        name = 'probe-%s-%s-%d' % (sender.name, receiver.name, port)
        self.stats_path = os.path.join(run_dir, name + '.json')
        self.sender_log = os.path.join(run_dir, name + '.sender.log')
        self.receiver_log = os.path.join(run_dir, name + '.receiver.log')
        self.sender_process = None
        self.receiver_process = None

    def start(self):
        """Start the receiver, wait until it listens, start the sender."""
        with open(self.receiver_log, 'ab') as log:
            self.receiver_process = self.receiver.popen(
                [sys.executable, PROBE_SCRIPT, 'receive', '--port',
                 str(self.port), '--stats', self.stats_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        wait_listening(self.receiver, 'udp', self.port)
        with open(self.sender_log, 'ab') as log:
            self.sender_process = self.sender.popen(
                [sys.executable, PROBE_SCRIPT, 'send', '--to', self.address,
                 '--port', str(self.port), '--rate', str(self.rate)],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        return self

    def snapshot(self):
        """Return the receiver's latest counters (see probe.py)."""
        try:
            with open(self.stats_path) as stats_file:
                return json.load(stats_file)
        except (FileNotFoundError, ValueError):
            return {'received': 0, 'highest': -1, 'missing': 0,
                    'duplicates': 0, 'time': time.time()}

    def wait_fresh_snapshot(self, after, timeout=2.0):
        """Return the first snapshot written at or after ``after``.

        ``after`` is a ``time.time()`` value.
        """
        deadline = time.monotonic() + timeout
        while True:
            stats = self.snapshot()
            if stats['time'] >= after or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)

    def stop(self):
        """Stop the sender, then the receiver; return the final counters."""
        _stop_process(self.sender_process, signal.SIGINT)
        time.sleep(0.2)
        _stop_process(self.receiver_process, signal.SIGINT)
        return self.snapshot()

"""A UDP probe stream that counts lost datagrams, run inside Mininet hosts.

``probe.py send`` sends sequence-numbered datagrams at a fixed rate (1000
a second by default).  ``probe.py receive`` counts them and rewrites a
JSON stats file every 50 ms::

    probe.py receive --port 9000 --stats /run/dir/probe.json
    probe.py send --to 10.1.0.2 --port 9000 --rate 1000

The stats are ``received`` (distinct sequence numbers), ``highest``
(highest sequence number seen), ``missing`` (numbers up to ``highest``
not received yet), ``duplicates`` and ``time`` (wall clock).  Datagrams
lost between two snapshots A and B of the same receiver number
``B.missing - A.missing`` (late datagrams lower ``missing`` again).  Both
ends stop on SIGTERM or SIGINT; the sender prints how many it sent.
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct('!QQ')  # sequence number, send time in ns


class _Stop(Exception):
    """Raised by the signal handler to end the main loop."""


def _stop(_signum, _frame):
    raise _Stop()


def send(address, port, rate, duration, size):
    """Send datagrams to address:port at ``rate`` a second; return a dict."""
    payload = b'\0' * max(0, size - HEADER.size)
    sent = errors = 0
    start = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        while duration is None or time.monotonic() - start < duration:
            # Keep to an absolute schedule so that a slow loop or a stall
            # does not lower the rate for the rest of the run.
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            datagram = HEADER.pack(sent, time.time_ns()) + payload
            try:
                sock.sendto(datagram, (address, port))
            except OSError:
                # No route or no neighbour while the host moves: count it
                # as sent and lost, as the receiver will.
                errors += 1
            sent += 1
    except _Stop:
        pass
    finally:
        sock.close()
    return {'sent': sent, 'send_errors': errors,
            'seconds': round(time.monotonic() - start, 3)}


class Counter:
    """Distinct sequence numbers seen, as a growing bitmap."""

    def __init__(self):
        self.seen = bytearray(1 << 16)
        self.received = 0
        self.duplicates = 0
        self.highest = -1

    def add(self, sequence):
        """Count one datagram's sequence number."""
        byte, bit = divmod(sequence, 8)
        if byte >= len(self.seen):
            self.seen.extend(bytearray(max(byte + 1, 2 * len(self.seen))
                                       - len(self.seen)))
        if self.seen[byte] & (1 << bit):
            self.duplicates += 1
            return
        self.seen[byte] |= 1 << bit
        self.received += 1
        self.highest = max(self.highest, sequence)

    def stats(self):
        """Return the counters as a JSON-ready dict."""
        return {'received': self.received, 'highest': self.highest,
                'missing': self.highest + 1 - self.received,
                'duplicates': self.duplicates, 'time': time.time()}


def write_stats(path, stats):
    """Replace the stats file atomically, so readers never see half."""
    partial = path + '.part'
    with open(partial, 'w') as stats_file:
        json.dump(stats, stats_file)
    os.replace(partial, path)


def receive(port, stats_path, interval, max_sequence):
    """Count datagrams on ``port`` and keep ``stats_path`` up to date."""
    counter = Counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('0.0.0.0', port))
    sock.settimeout(interval)
    next_write = 0.0
    try:
        while True:
            try:
                datagram = sock.recv(65535)
            except socket.timeout:
                datagram = None
            if datagram is not None and len(datagram) >= HEADER.size:
                sequence, _sent_ns = HEADER.unpack_from(datagram)
                # A datagram that is not ours must not grow the bitmap
                # without bound.
                if sequence <= max_sequence:
                    counter.add(sequence)
            now = time.monotonic()
            if now >= next_write:
                write_stats(stats_path, counter.stats())
                next_write = now + interval
    except _Stop:
        pass
    finally:
        sock.close()
        write_stats(stats_path, counter.stats())
    return counter.stats()


def main(argv=None):
    """Parse the command line and run the sender or the receiver."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest='mode', required=True)
    sender = modes.add_parser('send', help='send the probe stream')
    sender.add_argument('--to', required=True, help='receiver IPv4 address')
    sender.add_argument('--port', type=int, default=9000,
                        help='receiver UDP port (default 9000)')
    sender.add_argument('--rate', type=float, default=1000.0,
                        help='datagrams per second (default 1000)')
    sender.add_argument('--duration', type=float, default=None,
                        help='seconds to send (default: until stopped)')
    sender.add_argument('--size', type=int, default=64,
                        help='UDP payload bytes (default 64, minimum 16)')
    receiver = modes.add_parser('receive', help='count the probe stream')
    receiver.add_argument('--port', type=int, default=9000,
                          help='UDP port to listen on (default 9000)')
    receiver.add_argument('--stats', required=True,
                          help='JSON file the counters are written to')
    receiver.add_argument('--interval', type=float, default=0.05,
                          help='seconds between stats writes (default 0.05)')
    receiver.add_argument('--max-sequence', type=int, default=100_000_000,
                          help='ignore higher sequence numbers (default 1e8)')
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.mode == 'send':
        if args.rate <= 0:
            parser.error('--rate must be above 0')
        result = send(args.to, args.port, args.rate, args.duration,
                      args.size)
    else:
        result = receive(args.port, args.stats, args.interval,
                         args.max_sequence)
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Log each probe datagram's arrival, and measure the gaps in the log.

Run inside a Mininet host, this is the receiving end of a stream from
``mininet/probe.py send``: it appends one record per datagram to a file
until SIGTERM or SIGINT::

    probe_log.py --port 9000 --output /run/dir/down.arrivals

A record is the datagram's sequence number and send time, as the sender
wrote them, and its arrival time as the kernel stamped it
(``SO_TIMESTAMPNS``), so that a receiver that is scheduled late does not
stretch the gaps.  All three are nanoseconds or counts in one 24-byte
big-endian record.  Sender and receiver share the machine's clock.

``load`` reads such a file, and ``window_figures`` returns, for a window
of time around one move, the longest time without any arrival (the
data-plane gap) and the datagrams lost.
"""

import argparse
import bisect
import math
import signal
import socket
import struct
import sys
import time

# Header of a probe.py datagram: sequence number, send time in ns.
PROBE_HEADER = struct.Struct('!QQ')
RECORD = struct.Struct('!QQq')
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)
TIMESPEC = struct.Struct('@qq')
MAX_SEQUENCE = 100_000_000
# A stream that delivered nothing in the last 50 ms of a window has not
# recovered by its end (a 1 kpps stream delivers every millisecond).
RECOVERED_TAIL_NS = 50_000_000


class _Stop(Exception):
    """Raised by the signal handler to end the main loop."""


def _stop(_signum, _frame):
    raise _Stop()


def record_arrivals(port, output_path, max_sequence=MAX_SEQUENCE):
    """Append a record per datagram on ``port`` to ``output_path``.

    Returns the number of records written.  A datagram shorter than the
    probe header, or with a sequence number above ``max_sequence``, is
    not the probe's and is skipped.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(('0.0.0.0', port))
    sock.settimeout(0.5)
    ancillary_size = socket.CMSG_SPACE(TIMESPEC.size)
    written = 0
    with open(output_path, 'ab') as output:
        try:
            while True:
                try:
                    datagram, ancillary, _flags, _address = sock.recvmsg(
                        2048, ancillary_size)
                except socket.timeout:
                    output.flush()
                    continue
                if len(datagram) < PROBE_HEADER.size:
                    continue
                sequence, sent_ns = PROBE_HEADER.unpack_from(datagram)
                if sequence > max_sequence:
                    continue
                output.write(RECORD.pack(sequence, sent_ns,
                                         _arrival_ns(ancillary)))
                written += 1
        except _Stop:
            pass
        finally:
            sock.close()
    return written


def _arrival_ns(ancillary):
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds * 1_000_000_000 + nanoseconds
    # No kernel stamp: the time of reading is the next best thing.
    return time.time_ns()


class Arrivals:
    """The records of one stream, by arrival time and by sequence number.

    ``rate`` is the sender's datagrams per second.  probe.py sends on an
    absolute schedule, so datagram ``n`` leaves at ``origin_ns + n /
    rate`` or, when the sender runs late, a little after.
    """

    def __init__(self, records, rate):
        self.rate = rate
        self.arrival_times = sorted(record[2] for record in records)
        self.sequences = sorted({record[0] for record in records})
        step = 1e9 / rate
        self.origin_ns = min((record[1] - record[0] * step
                              for record in records), default=0)

    def __len__(self):
        return len(self.arrival_times)

    def sequence_at(self, moment_ns):
        """Return the number of the first datagram due at or after a time."""
        return max(0, math.ceil((moment_ns - self.origin_ns)
                                * self.rate / 1e9))


def load(path, rate):
    """Return the Arrivals of a log file; a cut last record is ignored."""
    with open(path, 'rb') as log:
        blob = log.read()
    usable = len(blob) - len(blob) % RECORD.size
    return Arrivals(list(RECORD.iter_unpack(blob[:usable])), rate)


def restored_after(arrivals, instant_ns, end_ns):
    """Return ms from ``instant_ns`` to the first arrival after it, or None.

    None if nothing arrived before ``end_ns``.
    """
    times = arrivals.arrival_times
    first = bisect.bisect_left(times, instant_ns)
    if first >= len(times) or times[first] > end_ns:
        return None
    return round((times[first] - instant_ns) / 1e6, 2)


def window_figures(arrivals, start_ns, end_ns):
    """Return the gap and loss of a stream between two instants.

    The result is a dict:
    - ``gap_ms``: the longest time without an arrival, counted from the
      last arrival before ``start_ns`` through each arrival up to
      ``end_ns``, and from the last of them to ``end_ns``;
    - ``silent_before``: whether nothing arrived in the 50 ms before
      ``start_ns``; the gap then counts from ``start_ns``;
    - ``sent``: datagrams due to leave in the window by the sender's
      schedule, and ``lost``: those of them that never arrived (at any
      time, so a late datagram is not lost);
    - ``recovered``: whether the stream delivered in the last 50 ms of
      the window.  If not, ``gap_ms`` ends at ``end_ns`` and is a lower
      bound of the outage.
    """
    times = arrivals.arrival_times
    first = bisect.bisect_left(times, start_ns)
    last = bisect.bisect_right(times, end_ns)
    previous = times[first - 1] if first > 0 else 0
    # A stream that was already silent when the window began (it never
    # recovered from the move before) counts from the window's start.
    silent_before = start_ns - previous > RECOVERED_TAIL_NS
    if silent_before:
        previous = start_ns
    gap = 0
    for moment in times[first:last]:
        gap = max(gap, moment - previous)
        previous = moment
    tail = end_ns - previous
    recovered = tail <= RECOVERED_TAIL_NS
    gap = max(gap, tail)

    first_sequence = arrivals.sequence_at(start_ns)
    end_sequence = arrivals.sequence_at(end_ns)
    numbered = max(0, end_sequence - first_sequence)
    received = (bisect.bisect_left(arrivals.sequences, end_sequence)
                - bisect.bisect_left(arrivals.sequences, first_sequence))
    return {'gap_ms': round(gap / 1e6, 2), 'lost': numbered - received,
            'sent': numbered, 'recovered': recovered,
            'silent_before': silent_before}


def main(argv=None):
    """Parse the command line and log arrivals until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=9000,
                        help='UDP port to listen on (default 9000)')
    parser.add_argument('--output', required=True,
                        help='file the 24-byte records are appended to')
    parser.add_argument('--max-sequence', type=int, default=MAX_SEQUENCE,
                        help='skip higher sequence numbers (default 1e8)')
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    written = record_arrivals(args.port, args.output, args.max_sequence)
    print('%d datagrams logged to %s' % (written, args.output))
    return 0


if __name__ == '__main__':
    sys.exit(main())

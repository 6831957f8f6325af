"""Measure the Mobile Location Register: print figures, assert nothing.

Figures: durable allocations per second with a flush every N
allocations, hand-overs per second with in-process participants, memory
per binding at 100,000 and 1,000,000 bindings, and the time to recover
1,000,000 bindings from the store. Targets: 20,000 durable allocations
per second, under 1 KiB per binding, recovery of 1M under 10 s.

Run: .venv/bin/python bench/bench_mlr.py [--quick] [--directory DIR]
"""

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc

from tmip_ryu.mlr import HandoverCoordinator, Ready, Register, Store


class InstantSwitch:
    """A participant that prepares and commits at once, like a switch
    whose replies are already in."""

    def __init__(self, name):
        self.name = name

    def prepare(self):
        return Ready()

    def commit(self):
        return Ready()

    def abort(self):
        pass


def host_mac(index):
    """Return a distinct unicast MAC for a host number."""
    return '02:%02x:%02x:%02x:%02x:%02x' % (
        index >> 32 & 255, index >> 24 & 255, index >> 16 & 255,
        index >> 8 & 255, index & 255)


def host_cell(index):
    """Spread hosts over cells 1..254 so no default pool fills up."""
    return 1 + index % 254


def new_store(directory, name, synchronous):
    return Store(os.path.join(directory, name), synchronous=synchronous)


def bench_allocations(directory, hosts, flush_every, synchronous):
    """Return (allocations/s, mean flush ms) for durable allocations."""
    store = new_store(directory, 'alloc-%s-%d.sqlite'
                      % (synchronous, flush_every), synchronous)
    register = Register(store=store)
    flush_seconds = 0.0
    flushes = 0
    started = time.perf_counter()
    for index in range(hosts):
        register.attach(host_mac(index), host_cell(index), 1, 1)
        if (index + 1) % flush_every == 0:
            flush_started = time.perf_counter()
            register.flush()
            flush_seconds += time.perf_counter() - flush_started
            flushes += 1
    register.flush()
    elapsed = time.perf_counter() - started
    store.close()
    return hosts / elapsed, 1000.0 * flush_seconds / max(flushes, 1)


def bench_handovers(directory, hosts, moves, flush_on_commit):
    """Return hand-overs per second over three instant participants."""
    store = new_store(directory, 'handover-%s.sqlite' % flush_on_commit,
                      'FULL')
    register = Register(store=store)
    for index in range(hosts):
        register.attach(host_mac(index), host_cell(index), 1, 1)
    register.flush()
    coordinator = HandoverCoordinator(register,
                                      flush_on_commit=flush_on_commit)
    participants = [InstantSwitch('new'), InstantSwitch('home'),
                    InstantSwitch('old')]

    started = time.perf_counter()
    for move in range(moves):
        index = move % hosts
        cell = host_cell(index + 1 + move // hosts)
        handover = coordinator.request(host_mac(index), cell, cell, 2)
        outcome = coordinator.run(handover, participants)
        assert outcome.status == 'committed', outcome.reason
        if not flush_on_commit and (move + 1) % 100 == 0:
            register.flush()
    register.flush()
    elapsed = time.perf_counter() - started
    store.close()
    return moves / elapsed


def measure_memory(hosts, traced):
    """Return the memory per binding of a register holding ``hosts``.

    Runs in a fresh interpreter so earlier runs do not skew it. With
    ``traced``, counts Python allocations with tracemalloc, otherwise the
    growth of the resident set (tracemalloc's own records would inflate
    that, so the two are measured in separate runs).
    """
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--memory-child',
         str(hosts), '--traced' if traced else '--resident'],
        check=True, capture_output=True, text=True).stdout
    return float(output)


def memory_child(hosts, traced):
    """Print the memory in bytes per binding of ``hosts`` bindings."""
    register = Register()
    macs = [host_mac(index) for index in range(hosts)]
    if traced:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = resident_bytes()
    for index, mac in enumerate(macs):
        register.attach(mac, host_cell(index), index, 1)
    if traced:
        after = tracemalloc.get_traced_memory()[0]
    else:
        after = resident_bytes()
    # The MAC strings exist before the measurement, but a controller keeps
    # them only in the register, so their size counts.
    mac_bytes = sys.getsizeof(macs[0])
    print((after - before) / hosts + mac_bytes)


def resident_bytes():
    with open('/proc/self/statm') as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE')


def bench_recovery(directory, hosts):
    """Return (build s, recovery s, file MiB) for ``hosts`` bindings."""
    path = os.path.join(directory, 'recover.sqlite')
    store = Store(path, synchronous='NORMAL')
    register = Register(store=store)
    started = time.perf_counter()
    for index in range(hosts):
        register.attach(host_mac(index), host_cell(index), index, 1)
        if (index + 1) % 10000 == 0:
            register.flush()
    register.flush()
    built = time.perf_counter() - started
    store.close()
    del register

    started = time.perf_counter()
    store = Store(path)
    recovered = Register.recover(store)
    elapsed = time.perf_counter() - started
    assert len(recovered) == hosts
    store.close()
    size = sum(os.path.getsize(path + suffix) for suffix in ('', '-wal')
               if os.path.exists(path + suffix))
    return built, elapsed, size / 2 ** 20


def load_average():
    with open('/proc/loadavg') as loadavg:
        return ' '.join(loadavg.read().split()[:3])


def describe_machine():
    cpu = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return ('%s, %d CPUs, Python %s, SQLite %s'
            % (cpu, os.cpu_count(), platform.python_version(),
               sqlite3.sqlite_version))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='run small sizes only (under a minute)')
    parser.add_argument('--directory',
                        help='directory for the benchmark state files '
                             '(default: a new temporary directory, '
                             'removed afterwards)')
    parser.add_argument('--memory-child', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--traced', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--resident', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.traced)
        return

    quick = args.quick
    directory = args.directory or tempfile.mkdtemp(prefix='tmip-bench-')
    os.makedirs(directory, exist_ok=True)
    print('machine: %s' % describe_machine())
    print('load average at start: %s' % load_average())
    print('state files in %s' % directory)
    try:
        run_all(directory, quick)
        print('\nload average at end: %s' % load_average())
    finally:
        if not args.directory:
            shutil.rmtree(directory, ignore_errors=True)


def run_all(directory, quick):
    print('\ndurable allocations (attach + group commit), target 20,000/s')
    for synchronous in ('FULL', 'NORMAL'):
        for flush_every in (1, 10, 100, 1000):
            if quick:
                hosts = 1000
            elif flush_every == 1:
                hosts = 2000
            else:
                hosts = 50000
            rate, flush_ms = bench_allocations(directory, hosts, flush_every,
                                               synchronous)
            print('  synchronous=%-6s flush every %4d: %8.0f /s  '
                  '(mean flush %.2f ms, %d hosts)'
                  % (synchronous, flush_every, rate, flush_ms, hosts))

    print('\nhand-overs with 3 in-process participants')
    hosts, moves = (1000, 1000) if quick else (10000, 20000)
    for flush_on_commit in (True, False):
        rate = bench_handovers(directory, hosts, moves, flush_on_commit)
        if flush_on_commit:
            flush_policy = 'flush after each move'
        else:
            flush_policy = 'flush every 100 moves'
        print('  %-24s %8.0f /s  (%d moves)' % (flush_policy, rate, moves))

    print('\nmemory per binding (register only), target < 1024 B')
    for hosts in ((10000, 100000) if quick else (100000, 1000000)):
        resident = measure_memory(hosts, traced=False)
        print('  %9d bindings: %6.0f B resident set growth'
              % (hosts, resident))
    hosts = 10000 if quick else 100000
    traced = measure_memory(hosts, traced=True)
    print('  %9d bindings: %6.0f B traced by tracemalloc' % (hosts, traced))

    hosts = 100000 if quick else 1000000
    print('\nrecovery, target 1M in < 10 s')
    built, elapsed, size = bench_recovery(directory, hosts)
    print('  %d bindings: recovered in %.2f s (file %.0f MiB, written in '
          '%.1f s)' % (hosts, elapsed, size, built))


if __name__ == '__main__':
    main()

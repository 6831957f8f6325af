"""Crash test: a writer killed with SIGKILL loses no flushed binding.

A child process attaches, renews and releases hosts in batches. Before
each flush it prints the batch's changes, and after the flush returns it
prints that the batch is done. The test kills it at a random point, then
recovers the store: the result must be the state after the last done
batch, or after the one whose flush was cut short, never anything else.
Each round continues from the recovered file.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from tmip_ryu.mlr import Register, Store

ROUNDS = 10

WRITER = r'''
import json
import random
import sys

from tmip_ryu.mlr import Register, Store

path, seed, round_number = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
register = Register.recover(Store(path))
live = [binding.mac for binding in register.bindings()]
created = 0


def state(binding):
    return [str(binding.address), binding.lease_start, binding.lease_time]


for batch in range(1000000):
    changes = {}
    for _ in range(rng.randint(1, 30)):
        choice = rng.random()
        if choice < 0.6 or not live:
            created += 1
            mac = '02:%02x:%02x:%02x:%02x:%02x' % (
                round_number, created >> 24 & 255, created >> 16 & 255,
                created >> 8 & 255, created & 255)
            binding = register.attach(mac, rng.randint(1, 254), 1, 1).binding
            live.append(mac)
            changes[mac] = state(binding)
        elif choice < 0.85:
            mac = rng.choice(live)
            lease_time = rng.choice([60, 600, 3600])
            changes[mac] = state(register.renew(mac, lease_time=lease_time))
        else:
            mac = live.pop(rng.randrange(len(live)))
            register.release(mac)
            changes[mac] = None
    print(json.dumps({'intent': batch, 'changes': changes}), flush=True)
    register.flush()
    print(json.dumps({'done': batch}), flush=True)
'''


def recovered_state(path):
    """Return {mac: [address, lease_start, lease_time]} from the file."""
    store = Store(path)
    try:
        register = Register.recover(store)
        return {binding.mac: [str(binding.address), binding.lease_start,
                              binding.lease_time]
                for binding in register.bindings()}
    finally:
        store.close()


def apply(state, changes):
    """Return ``state`` with a batch's changes applied."""
    updated = dict(state)
    for mac, value in changes.items():
        if value is None:
            updated.pop(mac, None)
        else:
            updated[mac] = value
    return updated


def run_writer_until_killed(path, seed, round_number):
    """Start a writer, kill it mid-run, and return its complete lines."""
    child = subprocess.Popen(
        [sys.executable, '-c', WRITER, path, str(seed), str(round_number)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    first_done = threading.Event()

    def drain():
        for line in child.stdout:
            lines.append(line)
            if b'"done"' in line:
                first_done.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert first_done.wait(30), (
            'writer flushed nothing: %s'
            % child.stderr.read().decode(errors='replace'))
        time.sleep(random.Random(seed).uniform(0.0, 0.3))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reader.join(10)
        child.stdout.close()
        child.stderr.close()
    # A line cut by the kill has no newline and is not a report.
    return [json.loads(line) for line in lines if line.endswith(b'\n')]


def test_killed_writer_loses_no_flushed_binding(tmp_path):
    path = str(tmp_path / 'state.sqlite')
    Store(path).close()
    committed = {}

    for round_number in range(ROUNDS):
        reports = run_writer_until_killed(path, 1000 + round_number,
                                          round_number)
        done_batches = 0
        unconfirmed = None
        for report in reports:
            if 'intent' in report:
                unconfirmed = report['changes']
            else:
                committed = apply(committed, unconfirmed)
                unconfirmed = None
                done_batches += 1

        recovered = recovered_state(path)

        assert done_batches > 0
        if unconfirmed is None:
            assert recovered == committed
        else:
            assert recovered in (committed, apply(committed, unconfirmed))
        committed = recovered

    assert len(committed) > 0

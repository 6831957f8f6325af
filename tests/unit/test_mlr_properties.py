"""Property-based tests of the register over random operation sequences.

Hypothesis drives attach, renew, release, decline, expire, moves through
the coordinator (with switches that succeed, fail or time out) and
restarts from the store, and checks the register's invariants after
every step.
"""

import ipaddress
import os
import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, invariant, precondition, rule)

from tmip_ryu.mlr import (
    Failed, HandoverCoordinator, HandoverTimeout, Ready, Register, Store)

MACS = ['02:00:00:00:00:%02x' % index for index in range(1, 9)]
CELLS = (1, 2, 3)
POOLS = {1: '10.1.0.0/28', 2: '10.2.0.0/29', 3: '172.16.4.0/24'}
LEASE_TIME = 600
QUARANTINE = 1000


class FakeClock:
    """A manually advanced clock."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class TimedOut:
    """A Waitable whose switch never replies."""

    def wait(self, timeout):
        raise HandoverTimeout('no reply in %.3f s' % timeout)


class Interrupting:
    """A Waitable during which the host shows up at another location."""

    def __init__(self, during):
        self.during = during

    def wait(self, timeout):
        self.during()


class Switch:
    """A participant whose prepare and commit end as the test sets them."""

    def __init__(self, name, prepare, commit):
        self.name = name
        self._prepare = prepare
        self._commit = commit

    def prepare(self):
        return self._prepare

    def commit(self):
        return self._commit

    def abort(self):
        pass


OUTCOMES = {
    'ok': (Ready(), Ready()),
    'prepare_error': (Failed('bundle rejected'), Ready()),
    'prepare_timeout': (TimedOut(), Ready()),
    'commit_error': (Ready(), Failed('commit rejected')),
}


def snapshot(register):
    """Return the register's bindings and pool usage as plain values."""
    bindings = sorted((binding.to_dict() for binding in register.bindings()),
                      key=lambda values: values['mac'])
    usage = {cell: register.pool_usage(cell) for cell in CELLS}
    return bindings, usage


class RegisterMachine(RuleBasedStateMachine):
    """Random operations on one register, restarted from its store."""

    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix='tmip-mlr-test-')
        self.path = os.path.join(self.directory, 'state.sqlite')
        self.clock = FakeClock(1_000_000.0)
        self.monotonic = FakeClock(50.0)
        self.store = Store(self.path, synchronous='NORMAL')
        self.register = Register(store=self.store, **self.options())
        self.coordinator = self.new_coordinator()
        # The address each live host must keep while its binding lives.
        self.addresses = {}

    def options(self):
        return dict(pools=POOLS, lease_time=LEASE_TIME, clock=self.clock,
                    default_pool=lambda cell: None,
                    decline_quarantine=QUARANTINE)

    def new_coordinator(self):
        return HandoverCoordinator(self.register, clock=self.monotonic,
                                   flush_on_commit=False)

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(mac=st.sampled_from(MACS), cell=st.sampled_from(CELLS),
          port=st.integers(1, 4))
    def attach(self, mac, cell, port):
        known = mac in self.addresses
        result = self.register.attach(mac, cell, cell, port)
        if known:
            assert result.created is False
            assert result.binding.address == self.addresses[mac]
        elif result.binding is not None:
            assert result.created is True
            self.addresses[mac] = result.binding.address
        else:
            assert result.error.cell == cell

    @rule(mac=st.sampled_from(MACS),
          lease_time=st.sampled_from([None, 60, 3600]))
    def renew(self, mac, lease_time):
        if mac in self.addresses:
            binding = self.register.renew(mac, lease_time=lease_time)
            assert binding.lease_start == self.clock.now

    @rule(mac=st.sampled_from(MACS))
    def release(self, mac):
        released = self.register.release(mac)
        assert (released is not None) == (mac in self.addresses)
        self.addresses.pop(mac, None)

    @rule(mac=st.sampled_from(MACS))
    def decline(self, mac):
        old = self.addresses.pop(mac, None)
        binding = self.register.decline(mac)
        if binding is not None:
            assert old is not None
            assert binding.address != old
            self.addresses[mac] = binding.address

    @rule(seconds=st.sampled_from([1, 59, 60, 599, 600, 1000, 3600]))
    def expire(self, seconds):
        self.clock.now += seconds
        for binding in self.register.expire():
            assert binding.lease_expires <= self.clock.now
            del self.addresses[binding.mac]

    @rule(mac=st.sampled_from(MACS), cell=st.sampled_from(CELLS),
          port=st.integers(1, 4), outcome=st.sampled_from(sorted(OUTCOMES)))
    def move(self, mac, cell, port, outcome):
        before = self.register.get(mac)
        location = None if before is None else before.location
        handover = self.coordinator.request(mac, cell, cell, port)
        if handover is None:
            assert before is None or location == (cell, cell, port)
            return
        prepare, commit = OUTCOMES[outcome]
        switches = [Switch('new', Ready(), Ready()),
                    Switch('old', prepare, commit)]
        self.monotonic.now += 0.01

        result = self.coordinator.run(handover, switches)

        binding = self.register.get(mac)
        if outcome == 'ok':
            assert result.status == 'committed'
            assert binding.location == (cell, cell, port)
            assert binding.seq == handover.before.seq + 1
        else:
            assert result.status in ('aborted', 'failed')
            assert binding.location == location
        assert self.coordinator.next_for(mac) is None

    @rule(mac=st.sampled_from(MACS), first=st.sampled_from(CELLS),
          second=st.sampled_from(CELLS),
          outcome=st.sampled_from(sorted(OUTCOMES)))
    def move_superseded_mid_prepare(self, mac, first, second, outcome):
        before = self.register.get(mac)
        handover = self.coordinator.request(mac, first, first, 9)
        if handover is None:
            return
        newer = []
        seen_elsewhere = Interrupting(lambda: newer.append(
            self.coordinator.request(mac, second, second, 8)))

        result = self.coordinator.run(
            handover, [Switch('new', seen_elsewhere, Ready())])

        assert result.status == 'aborted'
        assert self.register.get(mac).location == before.location
        queued = self.coordinator.next_for(mac)
        if queued is None:
            assert before.location == (second, second, 8)
            return
        assert queued is newer[0]
        prepare, commit = OUTCOMES[outcome]
        result = self.coordinator.run(
            queued, [Switch('new', Ready(), Ready()),
                     Switch('old', prepare, commit)])
        location = self.register.get(mac).location
        assert (result.status == 'committed') == (outcome == 'ok')
        if outcome == 'ok':
            assert location == (second, second, 8)
        else:
            assert location == before.location

    @rule()
    def flush(self):
        self.register.flush()
        assert self.register.pending_writes == 0

    @rule()
    def restart(self):
        self.register.flush()
        before = snapshot(self.register)
        self.store.close()

        self.store = Store(self.path, synchronous='NORMAL')
        self.register = Register.recover(self.store, **self.options())
        self.coordinator = self.new_coordinator()

        assert snapshot(self.register) == before

    @precondition(lambda self: self.addresses)
    @invariant()
    def live_hosts_keep_their_addresses(self):
        current = {binding.mac: binding.address
                   for binding in self.register.bindings()}
        assert current == self.addresses

    @invariant()
    def no_two_bindings_share_an_address(self):
        addresses = [binding.network_int
                     for binding in self.register.bindings()]
        assert len(addresses) == len(set(addresses))

    @invariant()
    def blocks_are_aligned_inside_home_pool(self):
        pools = self.register.pools()
        for binding in self.register.bindings():
            network = binding.network
            assert network.prefixlen == 30
            assert int(network.network_address) % 4 == 0
            assert network.subnet_of(pools[binding.home_cell])
            assert binding.address == network.network_address + 2
            assert binding.gateway == network.network_address + 1
            assert binding.netmask == ipaddress.IPv4Address(
                '255.255.255.252')

    @invariant()
    def lookups_find_every_binding(self):
        for binding in self.register.bindings():
            assert self.register.get(binding.mac) is binding
            assert self.register.by_address(binding.address) is binding

    @invariant()
    def pool_counts_match_bindings(self):
        for cell in CELLS:
            usage = self.register.pool_usage(cell)
            homed = sum(1 for binding in self.register.bindings()
                        if binding.home_cell == cell)
            assert usage['used'] == homed
            assert (usage['used'] + usage['free'] + usage['quarantined']
                    == usage['size'])
            assert usage['free'] >= 0

    @invariant()
    def state_matches_location(self):
        for binding in self.register.bindings():
            expected = 'roaming' if binding.roaming else 'attached'
            assert binding.state == expected


TestRegisterMachine = RegisterMachine.TestCase
TestRegisterMachine.settings = settings(
    max_examples=100, stateful_step_count=35, deadline=None)

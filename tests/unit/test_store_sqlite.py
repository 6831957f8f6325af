"""Unit tests of the SQLite store, group commit and recovery."""

import logging
import os
import sqlite3
import threading

import pytest

from tmip_ryu.mlr import (
    DEFAULT_STATE_PATH, HandoverCoordinator, Register, Store, StoreError)

MACS = ['02:00:00:00:01:%02x' % index for index in range(1, 11)]


class FakeClock:
    """A manually advanced wall clock."""

    def __init__(self, now=2_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


class CountingStore(Store):
    """A Store that counts writes and fails them while ``broken``."""

    def __init__(self, path):
        super().__init__(path, synchronous='NORMAL')
        self.writes = 0
        self.broken = False

    def write(self, batch):
        if self.broken:
            raise StoreError('disk full (simulated)')
        self.writes += 1
        super().write(batch)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'state' / 'state.sqlite')


def options(clock, **extra):
    values = dict(clock=clock, lease_time=600,
                  pools={1: '10.1.0.0/28', 2: '10.2.0.0/24'},
                  decline_quarantine=3600)
    values.update(extra)
    return values


def snapshot(register):
    bindings = sorted((binding.to_dict() for binding in register.bindings()),
                      key=lambda values: values['mac'])
    return bindings, [register.pool_usage(cell) for cell in (1, 2)]


def reopen(store, path, clock, **extra):
    """Close ``store`` and recover a register from the same file."""
    store.close()
    return Register.recover(Store(path), **options(clock, **extra))


# -- opening ----------------------------------------------------------


def test_default_state_path_is_outside_source_tree():
    assert DEFAULT_STATE_PATH == '/var/lib/tmip_ryu/state.sqlite'


def test_store_creates_parent_directory(path):
    with Store(path):
        assert os.path.isfile(path)


def test_store_uses_write_ahead_log(path, clock):
    with Store(path) as store:
        register = Register(store=store, **options(clock))
        register.attach(MACS[0], 1, 1, 1)
        register.flush()

        assert os.path.exists(path + '-wal')


def test_unwritable_directory_raises_store_error(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')

    with pytest.raises(StoreError, match='cannot create directory'):
        Store(str(blocker / 'state.sqlite'))


def test_garbage_file_raises_store_error(tmp_path):
    garbage = tmp_path / 'state.sqlite'
    garbage.write_bytes(b'\x00garbage' * 1000)

    with pytest.raises(StoreError, match='cannot open state file'):
        Store(str(garbage))


def test_second_store_on_same_file_is_rejected(path):
    with Store(path):
        with pytest.raises(StoreError, match='no other process uses it'):
            Store(path)


def test_store_error_is_an_os_error(tmp_path):
    garbage = tmp_path / 'state.sqlite'
    garbage.write_bytes(b'\x00garbage' * 1000)

    with pytest.raises(OSError):
        Store(str(garbage))


def test_newer_schema_is_rejected(path):
    os.makedirs(os.path.dirname(path))
    connection = sqlite3.connect(path)
    connection.execute('PRAGMA user_version=99')
    connection.close()

    with pytest.raises(StoreError, match='newer than this tmip_ryu'):
        Store(path)


def test_invalid_synchronous_mode_is_rejected(path):
    with pytest.raises(ValueError, match='invalid synchronous mode'):
        Store(path, synchronous='OFF')


def test_closed_store_raises_on_write(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    store.close()

    with pytest.raises(StoreError, match='is closed'):
        register.flush()


# -- group commit -----------------------------------------------------


def test_flush_writes_all_pending_changes_in_one_write(path, clock):
    store = CountingStore(path)
    register = Register(store=store, **options(clock))
    for mac in MACS[:5]:
        register.attach(mac, 2, 1, 1)
    register.renew(MACS[0])
    register.release(MACS[1])

    register.flush()

    assert store.writes == 1
    assert register.pending_writes == 0
    recovered = reopen(store, path, clock)
    assert sorted(binding.mac for binding in recovered.bindings()) == \
        [MACS[0]] + MACS[2:5]


def test_flush_with_nothing_pending_writes_nothing(path, clock):
    store = CountingStore(path)
    register = Register(store=store, **options(clock))

    register.flush()

    assert store.writes == 0


def test_failed_flush_keeps_changes_pending(path, clock):
    store = CountingStore(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    store.broken = True

    with pytest.raises(StoreError, match='disk full'):
        register.flush()

    assert register.pending_writes == 1
    assert register.durable_generation < register.generation
    store.broken = False
    register.flush()
    assert register.pending_writes == 0
    recovered = reopen(store, path, clock)
    assert recovered.get(MACS[0]) is not None


def test_failed_flush_logs_error(path, clock, caplog):
    store = CountingStore(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    store.broken = True

    with caplog.at_level(logging.ERROR), pytest.raises(StoreError):
        register.flush()

    assert 'will retry' in caplog.text


def test_durable_generation_covers_renewal_after_flush(path, clock):
    register = Register(store=Store(path), **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    register.flush()
    register.renew(MACS[0])
    renewed_at = register.generation

    assert register.durable_generation < renewed_at
    register.flush()
    assert register.durable_generation >= renewed_at


def test_store_write_can_run_in_worker_thread(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)

    batch = register.begin_flush()
    worker = threading.Thread(target=store.write, args=(batch,))
    worker.start()
    register.attach(MACS[1], 1, 1, 2)
    worker.join()
    register.end_flush(batch)

    assert register.pending_writes == 1
    assert register.durable_generation == batch.generation
    register.flush()
    recovered = reopen(store, path, clock)
    assert len(recovered) == 2


def test_unflushed_changes_are_not_recovered(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    register.flush()
    register.attach(MACS[1], 1, 1, 2)

    recovered = reopen(store, path, clock)

    assert recovered.get(MACS[0]) is not None
    assert recovered.get(MACS[1]) is None


# -- recovery ---------------------------------------------------------


def test_recover_restores_every_binding(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    for index, mac in enumerate(MACS[:6]):
        register.attach(mac, 1 + index % 2, 0x10 + index, index)
    register.renew(MACS[0], lease_time=7200, client_id=b'\x01\x02\x03')
    register.commit_move(MACS[1], 1, 0x99, 4)
    register.release(MACS[2])
    register.decline(MACS[3])
    register.flush()
    before = snapshot(register)

    recovered = reopen(store, path, clock)

    assert snapshot(recovered) == before


def test_recovered_register_never_reuses_live_block(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    for mac in MACS[:3]:
        register.attach(mac, 1, 1, 1)
    register.release(MACS[1])
    register.flush()
    recovered = reopen(store, path, clock)
    live = {binding.network for binding in recovered.bindings()}

    fresh = [recovered.attach(mac, 1, 1, 1).binding for mac in MACS[3:5]]

    assert all(binding.network not in live for binding in fresh)
    assert recovered.attach(MACS[5], 1, 1, 1).binding is None


def test_recovered_quarantine_keeps_block_out(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    declined = register.attach(MACS[0], 1, 1, 1).binding.network
    register.decline(MACS[0])
    register.flush()

    recovered = reopen(store, path, clock)

    assert recovered.pool_usage(1)['quarantined'] == 1
    # Four blocks: the declining host's new one, the quarantined one and
    # two free ones.
    handed_out = [recovered.attach(mac, 1, 1, 1).binding
                  for mac in MACS[1:3]]
    assert all(binding is not None for binding in handed_out)
    assert declined not in {binding.network for binding in handed_out}
    assert recovered.attach(MACS[3], 1, 1, 1).binding is None


def test_quarantine_end_is_recorded(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    register.decline(MACS[0])
    register.flush()
    clock.now += 3600
    register.expire()
    register.flush()

    recovered = reopen(store, path, clock)

    assert recovered.pool_usage(1)['quarantined'] == 0


def test_recover_keeps_expired_leases_until_expire(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    register.flush()
    clock.now += 601

    recovered = reopen(store, path, clock)

    assert recovered.get(MACS[0]) is not None
    assert [binding.mac for binding in recovered.expire()] == [MACS[0]]


def test_recover_round_trips_largest_dpid(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, (1 << 64) - 1, (1 << 32) - 1)
    register.flush()

    recovered = reopen(store, path, clock)

    binding = recovered.get(MACS[0])
    assert binding.dpid == (1 << 64) - 1
    assert binding.port == (1 << 32) - 1


def test_recover_drops_second_binding_of_same_block(path, clock, caplog):
    store = Store(path)
    register = Register(store=store, **options(clock))
    binding = register.attach(MACS[0], 1, 1, 1).binding
    register.flush()
    store.close()
    connection = sqlite3.connect(path)
    connection.execute(
        'INSERT INTO bindings VALUES (?, 1, 1, 1, 1, ?, ?, 600, NULL, 0)',
        (MACS[1], binding.network_int, clock.now))
    connection.commit()
    connection.close()

    with caplog.at_level(logging.ERROR):
        recovered = Register.recover(Store(path), **options(clock))

    assert len(recovered) == 1
    assert 'belongs to' in caplog.text


def test_recover_keeps_binding_outside_changed_pool(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    old = register.attach(MACS[0], 1, 1, 1).binding
    register.flush()

    recovered = reopen(store, path, clock,
                       pools={1: '10.1.0.0/29', 2: '10.2.0.0/24'})
    recovered.attach(MACS[1], 1, 1, 1)

    assert recovered.get(MACS[0]).address == old.address
    assert recovered.get(MACS[1]).address != old.address


# -- hand-over records -----------------------------------------------


def test_committed_move_is_durable_when_run_returns(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    register.flush()
    coordinator = HandoverCoordinator(register)

    coordinator.run(coordinator.request(MACS[0], 2, 2, 5), [])
    recovered = reopen(store, path, clock)

    binding = recovered.get(MACS[0])
    assert binding.location == (2, 2, 5)
    assert binding.seq == 1


def test_handover_history_survives_restart(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    coordinator = HandoverCoordinator(register)
    coordinator.run(coordinator.request(MACS[0], 2, (1 << 64) - 2, 5), [])
    history = coordinator.history()

    recovered = reopen(store, path, clock)

    assert HandoverCoordinator(recovered).history() == history


def test_store_keeps_only_latest_handover_rows(path, clock):
    store = Store(path, handover_rows=3)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    coordinator = HandoverCoordinator(register)
    for port in range(2, 8):
        coordinator.run(coordinator.request(MACS[0], 2, 2, port), [])

    records = store.load_handovers(100)

    assert [record['to']['port'] for record in records] == [5, 6, 7]


def test_recover_drops_quarantine_outside_changed_pools(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 2, 1, 1)
    register.decline(MACS[0])
    register.flush()

    recovered = reopen(store, path, clock, pools={1: '10.1.0.0/28'},
                       default_pool=lambda cell: None)
    recovered.flush()

    assert recovered.pool_usage(1)['quarantined'] == 0
    assert recovered.store.load_quarantine() == []


def test_second_flush_waits_for_batch_in_flight(path, clock):
    store = Store(path)
    register = Register(store=store, **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    batch = register.begin_flush()
    register.renew(MACS[0])

    with pytest.raises(RuntimeError, match='call end_flush first'):
        register.flush()

    store.write(batch)
    register.end_flush(batch)
    register.flush()
    assert register.pending_writes == 0


def test_end_flush_rejects_unknown_batch(path, clock):
    register = Register(store=Store(path), **options(clock))
    register.attach(MACS[0], 1, 1, 1)
    batch = register.begin_flush()
    register.end_flush(batch)

    with pytest.raises(ValueError, match='already ended'):
        register.end_flush(batch)

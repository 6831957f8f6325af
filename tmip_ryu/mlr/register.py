"""The Mobile Location Register: every host's binding, by MAC and address.

``Register`` creates bindings on a host's first frame, allocates their
/30 from the home cell's pool, renews, releases, declines and expires
leases, and queues every change for a group commit to a ``Store``.
Moves go through ``HandoverCoordinator``, which calls ``commit_move``.

The register is not thread-safe: use it from one OS thread (green
threads are fine, since no method yields). Only ``Store.write`` may run
in a worker thread, between ``begin_flush`` and ``end_flush``.
"""

import bisect
import gc
import heapq
import ipaddress
import logging
import time
from typing import NamedTuple, Optional

from tmip_ryu.mlr.binding import (
    ATTACHED, BLOCK_SIZE, EXPIRED, MAX_CELL, MIN_CELL, ROAMING, Binding,
    check_cell, check_location, normalize_mac)
from tmip_ryu.mlr.pool import AddressPool, PoolExhausted, parse_pool
from tmip_ryu.mlr.store import WriteBatch, binding_row, handover_row

LOG = logging.getLogger(__name__)

# A declined /30 stays out of use this long (seconds), because the host
# that declined it found the address in use by another machine.
DEFAULT_DECLINE_QUARANTINE = 24 * 3600


def default_pool(cell):
    """Return the default pool of a cell, 10.<cell>.0.0/16."""
    return '10.%d.0.0/16' % cell


class AttachResult(NamedTuple):
    """What ``Register.attach`` did.

    ``binding`` is None when the host could not be registered, and
    ``error`` (a PoolExhausted) then gives the reason.
    """

    binding: Optional[Binding]
    created: bool
    error: Optional[PoolExhausted] = None


class Register:
    """The Mobile Location Register.

    ``pools`` maps cells to pool networks ('10.1.0.0/16') and overrides
    ``default_pool(cell)``, which may return None for a cell without a
    pool. Pools must not overlap. ``lease_time`` (seconds) is the lease
    of a new binding and of a renewal that names none. ``clock`` gives
    wall-clock seconds and is kept in the store, so it must be
    time.time() in production. ``store`` is a Store or None (no
    durability).
    """

    def __init__(self, pools=None, lease_time=3600, store=None,
                 clock=time.time, default_pool=default_pool,
                 decline_quarantine=DEFAULT_DECLINE_QUARANTINE):
        _check_lease_time(lease_time)
        self.lease_time = lease_time
        self.decline_quarantine = decline_quarantine
        self.clock = clock
        self.store = store
        self._pools = _build_pools(pools or {}, default_pool)
        ordered = sorted(self._pools.values(), key=lambda pool: pool.base)
        self._pool_starts = [pool.base for pool in ordered]
        self._pools_by_start = ordered
        self._by_mac = {}
        self._by_network = {}
        # (lease expiry, mac); entries go stale when a lease is renewed or
        # a binding is removed, and are checked against the binding.
        self._expiry = []
        self._dirty_macs = set()
        self._dirty_networks = set()
        self._handover_rows = []
        self._exhausted_cells = set()
        self.generation = 0
        self.durable_generation = 0
        self._batch_in_flight = None

    # -- lookups -------------------------------------------------------

    def get(self, mac):
        """Return the binding of a MAC, or None; ValueError if malformed."""
        return self._lookup(mac)[1]

    def by_address(self, address):
        """Return the binding whose host address (n+2) is ``address``."""
        value = _address_int(address)
        binding = self._by_network.get(value - value % BLOCK_SIZE)
        if binding is None or binding.network_int + 2 != value:
            return None
        return binding

    def owner_of(self, address):
        """Return the binding whose /30 contains ``address``, or None."""
        value = _address_int(address)
        return self._by_network.get(value - value % BLOCK_SIZE)

    def bindings(self):
        """Return a list of the live bindings."""
        return list(self._by_mac.values())

    def __len__(self):
        return len(self._by_mac)

    def __contains__(self, mac):
        return self.get(mac) is not None

    def pools(self):
        """Return {cell: IPv4Network} for every cell that has a pool."""
        return {cell: pool.network for cell, pool in self._pools.items()}

    def pool_of(self, address):
        """Return the cell whose pool contains ``address``, or None."""
        pool = self._pool_containing(_address_int(address))
        return None if pool is None else pool.cell

    def pool_usage(self, cell):
        """Return the size, used, free and quarantined /30 counts of a cell.

        A cell without a pool has size 0.
        """
        pool = self._pools.get(check_cell(cell))
        if pool is None:
            return {'size': 0, 'used': 0, 'free': 0, 'quarantined': 0}
        self._release_quarantine(pool, self.clock())
        return pool.usage()

    # -- changes -------------------------------------------------------

    def attach(self, mac, cell, dpid, port):
        """Register a host seen at a location; return an AttachResult.

        A new MAC gets a binding with home cell ``cell``, a /30 from that
        cell's pool and a lease starting now. A known MAC gets its binding
        back unchanged, wherever it was seen: moves go through the
        hand-over coordinator. An exhausted pool gives a result with no
        binding and the PoolExhausted as ``error``; it is not raised.
        """
        mac, binding = self._lookup(mac)
        if binding is not None:
            return AttachResult(binding, False)
        check_cell(cell)
        check_location(dpid, port)

        now = self.clock()
        try:
            network_int = self._allocate(cell, now)
        except PoolExhausted as error:
            return AttachResult(None, False, error)

        binding = Binding(mac, cell, cell, dpid, port, network_int, now,
                          self.lease_time)
        self._insert(binding)
        return AttachResult(binding, True)

    def renew(self, mac, lease_time=None, client_id=None):
        """Start a new lease from now and return the binding.

        ``lease_time`` defaults to the register's; ``client_id`` (bytes)
        replaces the stored one when given. Raises KeyError for a MAC
        without a binding.
        """
        binding = self._required(mac)
        if lease_time is None:
            lease_time = self.lease_time
        _check_lease_time(lease_time)
        if client_id is not None:
            if not isinstance(client_id, (bytes, bytearray)):
                raise ValueError('invalid client identifier %r: expected '
                                 'bytes' % (client_id,))
            binding.client_id = bytes(client_id)

        binding.lease_start = self.clock()
        binding.lease_time = lease_time
        heapq.heappush(self._expiry, (binding.lease_expires, binding.mac))
        self._mark(binding.mac)
        return binding

    def release(self, mac):
        """End a binding at the host's request; return it, or None.

        The /30 goes back to the pool. The returned binding has state
        'expired'.
        """
        binding = self._lookup(mac)[1]
        if binding is None:
            return None
        self._remove(binding)
        self._free_block(binding.network_int)
        return binding

    def decline(self, mac):
        """Quarantine a host's /30 and give it a fresh one; return it.

        The host declined its address because it found the address in use
        by another machine, so the old /30 stays unused for
        ``decline_quarantine`` seconds. The new binding keeps the home
        cell, location, client identifier and move sequence number, and
        starts a new lease. Returns None for an unknown MAC, and also when
        the home pool has no other free /30, in which case the host is
        left without a binding.
        """
        old = self._lookup(mac)[1]
        if old is None:
            return None
        now = self.clock()
        self._remove(old)
        pool = self._pool_containing(old.network_int)
        if pool is not None:
            pool.quarantine(old.network_int, now + self.decline_quarantine)
            self._mark_network(old.network_int)
        LOG.info('host %s declined %s: quarantined for %d s',
                 old.mac, old.network, self.decline_quarantine)

        try:
            network_int = self._allocate(old.home_cell, now)
        except PoolExhausted:
            return None
        binding = Binding(old.mac, old.home_cell, old.cell, old.dpid,
                          old.port, network_int, now, self.lease_time,
                          old.client_id, old.seq)
        self._insert(binding)
        return binding

    def expire(self, now=None):
        """Remove the bindings whose lease has run out; return them.

        Their /30 goes back to the pool and their state becomes
        'expired'. Costs O(log n) per expired or renewed lease, not a
        scan of every binding.
        """
        if now is None:
            now = self.clock()
        expired = []
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, mac = heapq.heappop(heap)
            binding = self._by_mac.get(mac)
            if binding is None or binding.lease_expires > now:
                continue
            self._remove(binding)
            self._free_block(binding.network_int)
            expired.append(binding)
        for pool in self._pools.values():
            if pool.quarantined:
                self._release_quarantine(pool, now)
        if len(heap) > 2 * len(self._by_mac) + 1024:
            self._rebuild_expiry()
        return expired

    def commit_move(self, mac, cell, dpid, port):
        """Move a binding to a new location; return it.

        Only the hand-over coordinator calls this, once every switch has
        committed. Increments the move sequence number.
        """
        binding = self._required(mac)
        check_cell(cell)
        check_location(dpid, port)
        binding.cell = cell
        binding.dpid = dpid
        binding.port = port
        binding.seq += 1
        binding.state = ROAMING if cell != binding.home_cell else ATTACHED
        self._mark(binding.mac)
        return binding

    def record_handover(self, record):
        """Queue a hand-over record (a history dict) for the store."""
        if self.store is None:
            return
        self._handover_rows.append(handover_row(record))
        self.generation += 1

    # -- group commit ----------------------------------------------------

    @property
    def pending_writes(self):
        """Number of changes waiting for the next flush."""
        return (len(self._dirty_macs) + len(self._dirty_networks)
                + len(self._handover_rows))

    def flush(self):
        """Write every pending change to the store in one transaction.

        Returns after the commit. On a StoreError the changes stay pending
        for the next flush and the error is raised. Without a store,
        pending changes are dropped.
        """
        batch = self.begin_flush()
        if batch is None:
            return
        try:
            self.store.write(batch)
        except Exception as error:
            self.end_flush(batch, error)
            raise
        self.end_flush(batch)

    def begin_flush(self):
        """Collect the pending changes into a WriteBatch, or return None.

        Callers that run ``store.write(batch)`` in a worker thread call
        ``end_flush`` with the outcome afterwards, on the register's
        thread. Changes made in the meantime go into the next batch.
        Raises RuntimeError while a batch is in flight, because a second
        batch could reach the file first and be overwritten by older rows.
        """
        if self._batch_in_flight is not None:
            raise RuntimeError('cannot begin a flush while the previous '
                               'batch is still being written; call '
                               'end_flush first')
        if self.store is None:
            self._discard_pending()
            return None
        if not self.pending_writes:
            return None
        batch = WriteBatch(self.generation)
        for mac in self._dirty_macs:
            binding = self._by_mac.get(mac)
            if binding is None:
                batch.deletes.append(mac)
            else:
                batch.upserts.append(binding_row(binding))
        for network_int in self._dirty_networks:
            pool = self._pool_containing(network_int)
            until = (None if pool is None
                     else pool.quarantined_until(network_int))
            if until is None:
                batch.unquarantined.append(network_int)
            else:
                batch.quarantined.append((network_int, pool.cell, until))
        batch.handovers = self._handover_rows
        batch.macs = self._dirty_macs
        batch.networks = self._dirty_networks
        self._dirty_macs = set()
        self._dirty_networks = set()
        self._handover_rows = []
        self._batch_in_flight = batch
        return batch

    def end_flush(self, batch, error=None):
        """Finish a flush begun with ``begin_flush``.

        With no error, every change up to ``batch.generation`` is durable.
        With an error, the batch's changes are queued again.
        """
        if batch is not self._batch_in_flight:
            raise ValueError('end_flush got a batch that begin_flush did not '
                             'return or that was already ended')
        self._batch_in_flight = None
        if error is None:
            self.durable_generation = max(self.durable_generation,
                                          batch.generation)
            return
        self._dirty_macs |= batch.macs
        self._dirty_networks |= batch.networks
        self._handover_rows[:0] = batch.handovers
        LOG.error('writing %d changes to the store failed, will retry: %s',
                  len(batch), error)

    def _discard_pending(self):
        self._dirty_macs.clear()
        self._dirty_networks.clear()
        self._handover_rows.clear()
        self.durable_generation = self.generation

    # -- recovery --------------------------------------------------------

    @classmethod
    def recover(cls, store, **kwargs):
        """Rebuild a register from what ``store`` committed.

        Takes the same keyword arguments as the constructor. Every stored
        binding comes back, expired leases too (the next ``expire`` call
        returns them, so their flows get removed), and every used or
        quarantined /30 stays out of the free lists.
        """
        register = cls(store=store, **kwargs)
        started = time.monotonic()
        # Loading creates millions of objects and no garbage. Cyclic
        # garbage collection would only rescan them, so it is paused.
        collecting = gc.isenabled()
        gc.disable()
        try:
            register._load(store)
        finally:
            if collecting:
                gc.enable()
        LOG.info('recovered %d bindings and %d quarantined blocks from %s '
                 'in %.2f s', len(register),
                 sum(pool.quarantined for pool in register._pools.values()),
                 store.path, time.monotonic() - started)
        return register

    def _load(self, store):
        by_mac = self._by_mac
        by_network = self._by_network
        expiry = self._expiry
        pools = self._pools
        used = {cell: set() for cell in pools}
        outside = []
        for rows in store.load_binding_chunks():
            # The row layout matches Binding's positional arguments.
            for binding in [Binding(*row) for row in rows]:
                network_int = binding.network_int
                if network_int in by_network:
                    LOG.error('dropping stored binding of %s: its /30 %s '
                              'belongs to %s too', binding.mac,
                              ipaddress.IPv4Address(network_int),
                              by_network[network_int].mac)
                    continue
                by_mac[binding.mac] = binding
                by_network[network_int] = binding
                expiry.append((binding.lease_start + binding.lease_time,
                               binding.mac))
                pool = pools.get(binding.home_cell)
                if pool is None or not (pool.base <= network_int
                                        < pool.end):
                    outside.append(binding)
                    pool = self._pool_containing(network_int)
                    if pool is None:
                        continue
                used[pool.cell].add(network_int)
        heapq.heapify(expiry)
        if outside:
            LOG.warning('kept %d stored bindings whose /30 is outside the '
                        'pool of their home cell, because the pools '
                        'changed; first: %r', len(outside), outside[0])

        quarantined = {cell: {} for cell in pools}
        for network_int, _cell, until in store.load_quarantine():
            pool = self._pool_containing(network_int)
            if pool is None:
                LOG.warning('dropping quarantined block %s: it is in no '
                            'configured pool',
                            ipaddress.IPv4Address(network_int))
                self._mark_network(network_int)
                continue
            quarantined[pool.cell][network_int] = until

        for cell, pool in pools.items():
            pool.rebuild(used[cell], quarantined[cell])

    # -- helpers ---------------------------------------------------------

    def _allocate(self, cell, now):
        pool = self._pools.get(cell)
        if pool is None:
            self._note_exhausted(cell)
            raise PoolExhausted(cell, None, 'cell %d has no address pool'
                                % cell)
        self._release_quarantine(pool, now)
        try:
            network_int = pool.allocate()
        except PoolExhausted:
            self._note_exhausted(cell)
            raise
        self._exhausted_cells.discard(cell)
        return network_int

    def _note_exhausted(self, cell):
        # Warn once until an allocation in the cell succeeds again,
        # because the host retries on every frame.
        if cell not in self._exhausted_cells:
            self._exhausted_cells.add(cell)
            pool = self._pools.get(cell)
            LOG.warning('cannot register hosts in cell %d: %s', cell,
                        'no address pool' if pool is None else
                        'pool %s has no free /30' % pool.network)

    def _free_block(self, network_int):
        # A recovered binding may lie outside every pool after the pools
        # were reconfigured. Its block then belongs to no allocator.
        pool = self._pool_containing(network_int)
        if pool is not None:
            pool.free(network_int)

    def _release_quarantine(self, pool, now):
        for network_int in pool.release_due(now):
            self._mark_network(network_int)

    def _insert(self, binding):
        self._by_mac[binding.mac] = binding
        self._by_network[binding.network_int] = binding
        heapq.heappush(self._expiry, (binding.lease_expires, binding.mac))
        self._mark(binding.mac)

    def _remove(self, binding):
        del self._by_mac[binding.mac]
        del self._by_network[binding.network_int]
        binding.state = EXPIRED
        self._mark(binding.mac)

    def _lookup(self, mac):
        """Return (normalized MAC, binding or None) for a MAC.

        Keys are normalized, so a string that is found as given needs no
        parsing. This keeps the lookup cheap for every frame of a known
        host.
        """
        if type(mac) is str:
            binding = self._by_mac.get(mac)
            if binding is not None:
                return mac, binding
        mac = normalize_mac(mac)
        return mac, self._by_mac.get(mac)

    def _required(self, mac):
        binding = self._lookup(mac)[1]
        if binding is None:
            raise KeyError('no binding for host %s' % mac)
        return binding

    def _mark(self, mac):
        self._dirty_macs.add(mac)
        self.generation += 1

    def _mark_network(self, network_int):
        self._dirty_networks.add(network_int)
        self.generation += 1

    def _pool_containing(self, network_int):
        position = bisect.bisect_right(self._pool_starts, network_int) - 1
        if position < 0:
            return None
        pool = self._pools_by_start[position]
        return pool if network_int in pool else None

    def _rebuild_expiry(self):
        self._expiry = [(binding.lease_expires, binding.mac)
                        for binding in self._by_mac.values()]
        heapq.heapify(self._expiry)


def _build_pools(overrides, default):
    """Return {cell: AddressPool} for cells 1..254, checking overlaps."""
    for cell in overrides:
        check_cell(cell)
    pools = {}
    for cell in range(MIN_CELL, MAX_CELL + 1):
        text = overrides[cell] if cell in overrides else default(cell)
        if text is None:
            continue
        pools[cell] = AddressPool(cell, parse_pool(cell, text))

    ordered = sorted(pools.values(), key=lambda pool: pool.base)
    for before, after in zip(ordered, ordered[1:]):
        if after.network.overlaps(before.network):
            raise ValueError('address pools overlap: %s of cell %d and %s '
                             'of cell %d; give each cell its own range'
                             % (before.network, before.cell, after.network,
                                after.cell))
    return pools


def _check_lease_time(lease_time):
    if type(lease_time) is not int or lease_time <= 0:
        raise ValueError('invalid lease time %r: expected a positive number '
                         'of seconds' % (lease_time,))


def _address_int(address):
    """Return an IPv4 address given as str, int or IPv4Address as int."""
    try:
        return int(ipaddress.IPv4Address(address))
    except (ValueError, TypeError) as error:
        raise ValueError('invalid IPv4 address %r: %s'
                         % (address, error)) from None

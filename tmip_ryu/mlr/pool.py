"""Address pools: the /30 allocator of each cell.

``AddressPool`` hands out the /30 blocks of one cell's pool in O(1): a
pointer to the first block never used, then a FIFO of freed blocks, so an
address that was just given back is the last to be reused. Declined
blocks wait in quarantine before they become free again.
"""

import collections
import ipaddress

from tmip_ryu.mlr.binding import BLOCK_PREFIX, BLOCK_SIZE


class PoolExhausted(Exception):
    """No /30 is free in a cell's pool; also returned in AttachResult.

    ``cell`` is the cell whose pool was asked and ``pool`` its network, or
    None when the cell has no pool at all.
    """

    def __init__(self, cell, pool=None, reason=None):
        self.cell = cell
        self.pool = pool
        if reason is None:
            reason = ('no free /30 in the pool %s of cell %s'
                      % (pool, cell))
        self.reason = reason
        super().__init__(reason)


def parse_pool(cell, text):
    """Return the pool of a cell as an IPv4Network, or raise ValueError.

    The network must hold at least one /30, so its prefix is /30 or
    shorter, and it must have no host bits set.
    """
    try:
        network = ipaddress.IPv4Network(text)
    except (ValueError, TypeError) as error:
        raise ValueError('invalid address pool %r for cell %s: %s'
                         % (text, cell, error)) from None
    if network.prefixlen > BLOCK_PREFIX:
        raise ValueError('address pool %s for cell %s is too small: a pool '
                         'needs a prefix of /%d or shorter'
                         % (network, cell, BLOCK_PREFIX))
    return network


class AddressPool:
    """The /30 blocks of one cell's pool: used, free and quarantined.

    Blocks are numbered from 0; block i is the /30 at network + 4 * i.
    Callers pass and receive the integer of a block's network address.
    """

    __slots__ = ('cell', 'network', 'base', 'end', 'size', 'used', '_next',
                 '_free', '_quarantine_order', '_quarantined')

    def __init__(self, cell, network):
        self.cell = cell
        self.network = network
        self.base = int(network.network_address)
        self.size = network.num_addresses // BLOCK_SIZE
        self.end = self.base + network.num_addresses
        self.used = 0
        self._next = 0
        self._free = collections.deque()
        # (until, block) in the order blocks entered quarantine.
        self._quarantine_order = collections.deque()
        self._quarantined = {}

    def __contains__(self, network_int):
        return self.base <= network_int < self.end

    @property
    def quarantined(self):
        """Number of blocks in quarantine."""
        return len(self._quarantined)

    def quarantined_until(self, network_int):
        """Return when a quarantined block becomes free, or None."""
        return self._quarantined.get(self._index(network_int))

    def allocate(self):
        """Take a free block and return its network int.

        Raises PoolExhausted when no block is free. Blocks whose quarantine
        has ended become free only through ``release_due``.
        """
        if self._next < self.size:
            index = self._next
            self._next += 1
        elif self._free:
            index = self._free.popleft()
        else:
            raise PoolExhausted(self.cell, self.network)
        self.used += 1
        return self.base + index * BLOCK_SIZE

    def free(self, network_int):
        """Return a used block to the pool, behind every other free one."""
        self._free.append(self._index(network_int))
        self.used -= 1

    def quarantine(self, network_int, until):
        """Move a used block to quarantine until the wall-clock ``until``."""
        index = self._index(network_int)
        self._quarantine_order.append((until, index))
        self._quarantined[index] = until
        self.used -= 1

    def release_due(self, now):
        """Free the quarantined blocks whose time is up; return them."""
        released = []
        order = self._quarantine_order
        while order and order[0][0] <= now:
            until, index = order.popleft()
            if self._quarantined.get(index) != until:
                continue
            del self._quarantined[index]
            self._free.append(index)
            released.append(self.base + index * BLOCK_SIZE)
        return released

    def rebuild(self, used, quarantined):
        """Set the pool's state from recovered blocks.

        ``used`` is a set of network ints of live bindings; ``quarantined``
        maps network ints to the end of their quarantine. Every block
        below the highest one in either is free unless it is in them.
        Costs one pass over the blocks up to that highest one.
        """
        indices = {self._index(network_int) for network_int in used}
        quarantine_ends = {self._index(network_int): until
                           for network_int, until in quarantined.items()}
        for index in indices:
            quarantine_ends.pop(index, None)
        top = max(indices | quarantine_ends.keys(), default=-1)
        self.used = len(indices)
        self._next = top + 1
        self._free = collections.deque(
            index for index in range(top + 1)
            if index not in indices and index not in quarantine_ends)
        self._quarantined = quarantine_ends
        self._quarantine_order = collections.deque(sorted(
            (until, index) for index, until in quarantine_ends.items()))

    def usage(self):
        """Return the pool's size, used, free and quarantined counts."""
        quarantined = len(self._quarantined)
        return {
            'size': self.size,
            'used': self.used,
            'free': self.size - self.used - quarantined,
            'quarantined': quarantined,
        }

    def _index(self, network_int):
        return (network_int - self.base) // BLOCK_SIZE

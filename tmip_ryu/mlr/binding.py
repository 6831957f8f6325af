"""The binding of one host: its MAC, home cell, location, /30 and lease.

Holds ``Binding``, the MAC and cell validators the register uses, and the
constants of the /30 layout (network n, gateway n+1, host n+2, broadcast
n+3).
"""

import ipaddress
import re

MIN_CELL = 1
MAX_CELL = 254

BLOCK_SIZE = 4
BLOCK_PREFIX = 30
NETMASK = ipaddress.IPv4Address('255.255.255.252')

ATTACHED = 'attached'
ROAMING = 'roaming'
EXPIRED = 'expired'

_MAC_RE = re.compile(r'[0-9a-f]{2}(:[0-9a-f]{2}){5}')
_MAC_SEPARATED_RE = re.compile(r'[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}')
_MAC_BARE_RE = re.compile(r'[0-9a-fA-F]{12}')
# The group bit is the lowest bit of the first octet, so the second hex
# digit of a group address is odd.
_ODD_HEX_DIGITS = frozenset('13579bdf')


def normalize_mac(mac):
    """Return ``mac`` as 'aa:bb:cc:dd:ee:ff', or raise ValueError.

    Accepts six bytes, or a string of 12 hex digits with or without ':' or
    '-' between the octets, in either case. Group (multicast and
    broadcast) addresses are rejected because a host never sends from one.
    """
    if isinstance(mac, str) and _MAC_RE.fullmatch(mac):
        normalized = mac
    elif isinstance(mac, (bytes, bytearray)) and len(mac) == 6:
        normalized = ':'.join('%02x' % octet for octet in mac)
    elif isinstance(mac, str) and _MAC_SEPARATED_RE.fullmatch(mac):
        normalized = mac.lower().replace('-', ':')
    elif isinstance(mac, str) and _MAC_BARE_RE.fullmatch(mac):
        bare = mac.lower()
        normalized = ':'.join(bare[i:i + 2] for i in range(0, 12, 2))
    else:
        raise ValueError('invalid MAC address %r: expected six octets '
                         'like aa:bb:cc:dd:ee:ff' % (mac,))
    if normalized[1] in _ODD_HEX_DIGITS:
        raise ValueError('invalid host MAC address %s: it is a group '
                         '(multicast or broadcast) address' % normalized)
    return normalized


def check_cell(cell):
    """Return ``cell`` if it is a cell id (int 1..254), else raise."""
    if type(cell) is not int or not MIN_CELL <= cell <= MAX_CELL:
        raise ValueError('invalid cell %r: cells are integers %d..%d'
                         % (cell, MIN_CELL, MAX_CELL))
    return cell


def check_location(dpid, port):
    """Raise ValueError unless dpid (64 bits) and port (32 bits) fit."""
    if type(dpid) is not int or not 0 <= dpid < 1 << 64:
        raise ValueError('invalid datapath id %r: expected an unsigned '
                         '64-bit integer' % (dpid,))
    if type(port) is not int or not 0 <= port < 1 << 32:
        raise ValueError('invalid port %r: expected an unsigned 32-bit '
                         'integer' % (port,))


class Binding:
    """The register's record of one host.

    The register updates a binding in place (renewal, committed move), so
    callers treat it as read-only and take ``copy()`` for a snapshot. The
    /30 is stored as the integer of its network address; the address
    attributes build ``ipaddress`` objects on access, which keeps a
    binding small when a register contains a million of them.
    """

    __slots__ = ('mac', 'home_cell', 'cell', 'dpid', 'port', 'network_int',
                 'lease_start', 'lease_time', 'client_id', 'seq', 'state')

    def __init__(self, mac, home_cell, cell, dpid, port, network_int,
                 lease_start, lease_time, client_id=None, seq=0,
                 state=None):
        self.mac = mac
        self.home_cell = home_cell
        self.cell = cell
        self.dpid = dpid
        self.port = port
        self.network_int = network_int
        self.lease_start = lease_start
        self.lease_time = lease_time
        self.client_id = client_id
        self.seq = seq
        if state is None:
            state = ROAMING if cell != home_cell else ATTACHED
        self.state = state

    @property
    def network(self):
        """The host's /30 as an IPv4Network."""
        return ipaddress.IPv4Network((self.network_int, BLOCK_PREFIX))

    @property
    def gateway(self):
        """The gateway address n+1, also the DHCP server identifier."""
        return ipaddress.IPv4Address(self.network_int + 1)

    @property
    def address(self):
        """The host's address n+2."""
        return ipaddress.IPv4Address(self.network_int + 2)

    @property
    def broadcast(self):
        """The broadcast address n+3 of the /30."""
        return ipaddress.IPv4Address(self.network_int + 3)

    @property
    def netmask(self):
        """The /30 netmask, 255.255.255.252."""
        return NETMASK

    @property
    def roaming(self):
        """True while the host is attached outside its home cell."""
        return self.cell != self.home_cell

    @property
    def lease_expires(self):
        """Wall-clock time (time.time() seconds) when the lease runs out."""
        return self.lease_start + self.lease_time

    @property
    def location(self):
        """The (cell, dpid, port) where the host is attached."""
        return (self.cell, self.dpid, self.port)

    def copy(self):
        """Return an independent snapshot of this binding."""
        return Binding(self.mac, self.home_cell, self.cell, self.dpid,
                       self.port, self.network_int, self.lease_start,
                       self.lease_time, self.client_id, self.seq, self.state)

    def moved_to(self, cell, dpid, port):
        """Return a snapshot of this binding after a move to a location."""
        moved = self.copy()
        moved.cell = cell
        moved.dpid = dpid
        moved.port = port
        moved.seq = self.seq + 1
        moved.state = ROAMING if cell != self.home_cell else ATTACHED
        return moved

    def to_dict(self):
        """Return the binding as JSON-ready values, for the REST API."""
        return {
            'mac': self.mac,
            'home_cell': self.home_cell,
            'cell': self.cell,
            'dpid': self.dpid,
            'port': self.port,
            'network': str(self.network),
            'gateway': str(self.gateway),
            'address': str(self.address),
            'broadcast': str(self.broadcast),
            'netmask': str(NETMASK),
            'lease_start': self.lease_start,
            'lease_time': self.lease_time,
            'lease_expires': self.lease_expires,
            'client_id': (self.client_id.hex()
                          if self.client_id is not None else None),
            'seq': self.seq,
            'state': self.state,
            'roaming': self.roaming,
        }

    def __repr__(self):
        return ('Binding(%s home=%d cell=%d dpid=%#x port=%d %s/30 seq=%d '
                '%s)' % (self.mac, self.home_cell, self.cell, self.dpid,
                         self.port, ipaddress.IPv4Address(self.network_int),
                         self.seq, self.state))

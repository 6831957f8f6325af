"""Flows as plain data: the Flow type, matches and the action vocabulary.

Defines Flow, make_match, FlowDiff and SwitchChange.  A match is a sorted
tuple of (field, value) pairs with Ryu's OXM field names.  An action is
a tuple whose first item names it:

- ('output', port): port is an int, 'CONTROLLER' (whole packet, no
  buffer) or 'IN_PORT';
- ('set_field', field, value) for eth_src, eth_dst and mpls_label, and
  for arp_op, arp_sha, arp_spa, arp_tha and arp_tpa in a flow that
  matches eth_type=0x0806 (OpenFlow's prerequisite for those fields).
  MAC values are lower case, IPv4 values plain dotted addresses;
- ('dec_ttl',) decrements the IPv4 TTL;
- ('push_mpls', 0x8847) and ('pop_mpls', ethertype);
- ('goto_table', table), an instruction that must come last;
- ('meter', meter_id), an instruction that must come first.

An empty action tuple drops the packet.
"""

import dataclasses
import functools
import ipaddress
import re

from openflow_rules.constants import (
    ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_MPLS, IP_PROTO_UDP, MAX_PORT)

_MAC_PATTERN = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')

# Field name -> (value kind, prerequisite field, prerequisite values).
_MATCH_FIELDS = {
    'in_port': ('port', None, ()),
    'eth_type': ('uint16', None, ()),
    'eth_src': ('mac', None, ()),
    'eth_dst': ('mac', None, ()),
    'ip_proto': ('uint8', 'eth_type', (ETH_TYPE_IPV4,)),
    'ipv4_src': ('ipv4', 'eth_type', (ETH_TYPE_IPV4,)),
    'ipv4_dst': ('ipv4', 'eth_type', (ETH_TYPE_IPV4,)),
    'udp_src': ('uint16', 'ip_proto', (IP_PROTO_UDP,)),
    'udp_dst': ('uint16', 'ip_proto', (IP_PROTO_UDP,)),
    'mpls_label': ('label', 'eth_type', (ETH_TYPE_MPLS,)),
    'arp_op': ('uint16', 'eth_type', (ETH_TYPE_ARP,)),
    'arp_spa': ('ipv4', 'eth_type', (ETH_TYPE_ARP,)),
    'arp_tpa': ('ipv4', 'eth_type', (ETH_TYPE_ARP,)),
    'arp_sha': ('mac', 'eth_type', (ETH_TYPE_ARP,)),
}
MATCH_FIELDS = frozenset(_MATCH_FIELDS)
# Field name -> value kind.  The ARP fields also need eth_type=0x0806 in
# the flow's match.
_SET_FIELDS = {
    'eth_src': 'mac',
    'eth_dst': 'mac',
    'mpls_label': 'label',
    'arp_op': 'uint16',
    'arp_sha': 'mac',
    'arp_spa': 'ipv4',
    'arp_tha': 'mac',
    'arp_tpa': 'ipv4',
}
SET_FIELDS = frozenset(_SET_FIELDS)
_ARP_SET_FIELDS = frozenset(('arp_op', 'arp_sha', 'arp_spa', 'arp_tha',
                             'arp_tpa'))
SPECIAL_PORTS = frozenset(('CONTROLLER', 'IN_PORT'))

_MAX_TABLE = 254
_MAX_METER = 0xffff0000
_MAX_LABEL = (1 << 20) - 1


def normalise_mac(value):
    """Return a MAC address in lower case, or raise ValueError."""
    if not isinstance(value, str):
        raise TypeError('MAC address must be a str, not %r' % (value,))
    mac = value.lower()
    if not _MAC_PATTERN.match(mac):
        raise ValueError("invalid MAC address %r: expected the form "
                         "'aa:bb:cc:dd:ee:ff'" % (value,))
    return mac


@functools.lru_cache(maxsize=65536)
def normalise_ipv4(value):
    """Return an IPv4 match value: 'a.b.c.d' or ('a.b.c.d', 'mask').

    Accepts a dotted address, an (address, mask) tuple or 'a.b.c.d/nn'.
    Bits outside the mask are cleared, and a full mask gives the plain
    address, so equal matches compare equal.
    """
    if isinstance(value, str) and '/' not in value:
        return str(_parse_ipv4(value))
    if isinstance(value, str):
        try:
            network = ipaddress.IPv4Network(value, strict=False)
        except ValueError as error:
            raise ValueError('invalid IPv4 prefix %r: %s' % (value, error))
        address, mask = network.network_address, network.netmask
    elif isinstance(value, tuple) and len(value) == 2:
        address, mask = _parse_ipv4(value[0]), _parse_ipv4(value[1])
        address = ipaddress.IPv4Address(int(address) & int(mask))
    else:
        raise ValueError("invalid IPv4 match value %r: expected 'a.b.c.d' "
                         "or ('a.b.c.d', 'm.m.m.m')" % (value,))
    if int(mask) == 0xffffffff:
        return str(address)
    return (str(address), str(mask))


def _parse_ipv4(text):
    if not isinstance(text, str):
        raise TypeError('IPv4 address must be a str, not %r' % (text,))
    try:
        return ipaddress.IPv4Address(text)
    except ValueError as error:
        raise ValueError('invalid IPv4 address %r: %s' % (text, error))


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError('%s must be an int, not %r' % (name, value))
    if not low <= value <= high:
        raise ValueError('%s %d is out of range %d..%d'
                         % (name, value, low, high))
    return value


def _normalise_value(field, value):
    kind = _MATCH_FIELDS[field][0]
    if kind == 'mac':
        return normalise_mac(value)
    if kind == 'ipv4':
        return normalise_ipv4(value)
    if kind == 'port':
        return _check_int(field, value, 1, MAX_PORT)
    if kind == 'label':
        return _check_int(field, value, 0, _MAX_LABEL)
    if kind == 'uint8':
        return _check_int(field, value, 0, 0xff)
    return _check_int(field, value, 0, 0xffff)


def _check_prerequisites(fields):
    for field, value in fields.items():
        if field not in _MATCH_FIELDS:
            raise ValueError('unknown match field %r; known fields: %s'
                             % (field, ', '.join(sorted(_MATCH_FIELDS))))
        _, needed, allowed = _MATCH_FIELDS[field]
        if needed is not None and fields.get(needed) not in allowed:
            values = [('0x%04x' if needed == 'eth_type' else '%d') % value
                      for value in allowed]
            raise ValueError(
                'match field %s needs %s=%s, which OpenFlow 1.3 requires '
                'as its prerequisite' % (field, needed, ' or '.join(values)))


def make_match(**fields):
    """Validate match fields and return them as a sorted tuple of pairs."""
    normalised = {field: _normalise_value(field, value)
                  if field in _MATCH_FIELDS else value
                  for field, value in fields.items()}
    _check_prerequisites(normalised)
    return tuple(sorted(normalised.items()))


def _check_match(match):
    if not isinstance(match, tuple):
        raise TypeError('match must be a tuple made by make_match, not %r'
                        % (match,))
    previous = ''
    for pair in match:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError('match item %r is not a (field, value) pair'
                             % (pair,))
        if not isinstance(pair[0], str) or pair[0] <= previous:
            raise ValueError('match %r is not sorted by unique field names;'
                             ' build it with make_match' % (match,))
        previous = pair[0]
    _check_prerequisites(dict(match))


def _check_output(action):
    port = action[1]
    if port in SPECIAL_PORTS:
        return
    _check_int('output port', port, 1, MAX_PORT)


def _check_set_field(action, match):
    _, field, value = action
    kind = _SET_FIELDS.get(field)
    if kind is None:
        raise ValueError('set_field %r is not supported; supported: %s'
                         % (field, ', '.join(sorted(SET_FIELDS))))
    if field in _ARP_SET_FIELDS and \
            dict(match).get('eth_type') != ETH_TYPE_ARP:
        raise ValueError('set_field %s needs eth_type=0x%04x in the match, '
                         'which OpenFlow 1.3 requires as its prerequisite'
                         % (field, ETH_TYPE_ARP))
    name = 'set_field %s' % field
    if kind == 'label':
        _check_int(name, value, 0, _MAX_LABEL)
    elif kind == 'uint16':
        _check_int(name, value, 0, 0xffff)
    elif kind == 'ipv4':
        if str(_parse_ipv4(value)) != value:
            raise ValueError('%s value %r must be a dotted IPv4 address '
                             'such as 10.1.0.1' % (name, value))
    elif normalise_mac(value) != value:
        raise ValueError('%s value %r must be lower case' % (name, value))


def _check_actions(actions, table, match):
    if not isinstance(actions, tuple):
        raise TypeError('actions must be a tuple, not %r' % (actions,))
    last = len(actions) - 1
    for index, action in enumerate(actions):
        if not isinstance(action, tuple) or not action:
            raise ValueError('action %r is not a non-empty tuple'
                             % (action,))
        name = action[0]
        length = _ACTION_LENGTHS.get(name)
        if length is None:
            raise ValueError('unknown action %r; known actions: %s'
                             % (name, ', '.join(sorted(_ACTION_LENGTHS))))
        if len(action) != length:
            raise ValueError('action %r needs %d items' % (action, length))
        if name == 'meter':
            if index != 0:
                raise ValueError('meter must be the first action')
            _check_int('meter id', action[1], 1, _MAX_METER)
        elif name == 'goto_table':
            if index != last:
                raise ValueError('goto_table must be the last action')
            _check_int('goto_table', action[1], table + 1, _MAX_TABLE)
        elif name == 'output':
            _check_output(action)
        elif name == 'set_field':
            _check_set_field(action, match)
        elif name == 'push_mpls' and action[1] != ETH_TYPE_MPLS:
            raise ValueError('push_mpls supports only 0x8847, not %r'
                             % (action[1],))
        elif name == 'pop_mpls':
            _check_int('pop_mpls ethertype', action[1], 0, 0xffff)


_ACTION_LENGTHS = {
    'output': 2, 'set_field': 3, 'dec_ttl': 1, 'push_mpls': 2,
    'pop_mpls': 2, 'goto_table': 2, 'meter': 2,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Flow:
    """One flow entry: where it sits, what it matches and what it does.

    Two flows with the same identity (table, priority, match) are the
    same entry on a switch, so the controller replaces one with the other.
    """

    table: int
    priority: int
    match: tuple
    actions: tuple
    cookie: int
    idle_timeout: int = 0
    hard_timeout: int = 0

    def __post_init__(self):
        _check_int('table', self.table, 0, _MAX_TABLE)
        _check_int('priority', self.priority, 0, 0xffff)
        _check_int('cookie', self.cookie, 0, (1 << 64) - 1)
        _check_int('idle_timeout', self.idle_timeout, 0, 0xffff)
        _check_int('hard_timeout', self.hard_timeout, 0, 0xffff)
        _check_match(self.match)
        _check_actions(self.actions, self.table, self.match)

    @property
    def identity(self):
        """The (table, priority, match) key that names the entry."""
        return (self.table, self.priority, self.match)


# Slot setters of Flow, which bypass the frozen dataclass's __setattr__.
_SET_TABLE, _SET_PRIORITY, _SET_MATCH, _SET_ACTIONS, _SET_COOKIE, \
    _SET_IDLE_TIMEOUT, _SET_HARD_TIMEOUT = (
        Flow.__dict__[field.name].__set__
        for field in dataclasses.fields(Flow))


def unchecked_flow(table, priority, match, actions, cookie):
    """Return a Flow without validating it, for the pipeline's hot paths.

    The pipeline builds its flows from a validated Network, and the unit
    tests pass every flow it builds through Flow's checks.  Skipping the
    checks makes a flow about four times cheaper to build, which keeps a
    switch of a 10,000-host network within the benchmark's budget.
    """
    flow = object.__new__(Flow)
    _SET_TABLE(flow, table)
    _SET_PRIORITY(flow, priority)
    _SET_MATCH(flow, match)
    _SET_ACTIONS(flow, actions)
    _SET_COOKIE(flow, cookie)
    _SET_IDLE_TIMEOUT(flow, 0)
    _SET_HARD_TIMEOUT(flow, 0)
    return flow


def flow_sort_key(flow):
    """Return a key that orders flows by table, priority (high first), match.

    An IPv4 match value is a str or an (address, mask) tuple, so every str
    value is compared as (value, '') to keep str and tuple comparable.
    """
    return (flow.table, -flow.priority,
            [(field, (value, '') if value.__class__ is str else value)
             for field, value in flow.match],
            flow.cookie)


@dataclasses.dataclass(frozen=True)
class FlowDiff:
    """Flows to add, to modify and to delete on one switch.

    A modify has the identity of a flow already on the switch and new
    actions, cookie or timeouts.  Send it as an ADD flow-mod, which
    replaces the whole entry: a MODIFY keeps the old cookie in OpenFlow
    1.1 and later (OVS 3.1 does so for `ovs-ofctl --strict mod-flows`).
    Apply adds first, then modifies, then deletes.
    """

    add: tuple = ()
    modify: tuple = ()
    delete: tuple = ()

    def __bool__(self):
        return bool(self.add or self.modify or self.delete)

    def __len__(self):
        return len(self.add) + len(self.modify) + len(self.delete)


@dataclasses.dataclass(frozen=True)
class SwitchChange:
    """The flow changes that one step of a plan sends to one switch."""

    dpid: int
    diff: FlowDiff

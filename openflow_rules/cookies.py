"""Cookies that encode each TMip flow's kind and owner.

A cookie is 64 bits:

- bits 63..56: the project marker TMIP_MARKER (0x54, ASCII 'T'), which
  tells TMip's flows apart from other applications' flows (Ryu's LLDP
  flow has cookie 0);
- bits 55..48: the kind of flow, for example deliver or pool_route.  The
  kinds owned by a host have 0x1 in the upper four of these bits;
- bits 47..0: the owner: a host's MAC address, a cell, a port, or 0.

So a cookie and mask that cover the marker, the upper four kind bits and
the MAC select every flow that one host owns, whatever its kind.
"""

import collections
import functools

from openflow_rules.flow import normalise_mac

TMIP_MARKER = 0x54
TMIP_COOKIE = TMIP_MARKER << 56
TMIP_COOKIE_MASK = 0xff << 56

_KIND_SHIFT = 48
_KIND_MASK = 0xff << _KIND_SHIFT
_KIND_GROUP_MASK = 0xf0 << _KIND_SHIFT
_HOST_KIND_GROUP = 0x10 << _KIND_SHIFT
_OWNER_MASK = (1 << 48) - 1


class Kind:
    """Names of the kinds of TMip flow."""

    TABLE_MISS = 'table_miss'
    ARP = 'arp'
    DHCP = 'dhcp'
    CORE_PORT = 'core_port'
    UPLINK_IN = 'uplink_in'
    UPLINK_GUARD = 'uplink_guard'
    NOT_ROUTED = 'not_routed'
    POOL_ROUTE = 'pool_route'
    OWN_POOL = 'own_pool'
    DEFAULT_ROUTE = 'default_route'
    LABEL_POP = 'label_pop'
    LABEL_SWITCH = 'label_switch'
    SOURCE_GUARD = 'source_guard'
    SPOOF_DROP = 'spoof_drop'
    GATEWAY = 'gateway'
    DELIVER = 'deliver'
    HOME_TUNNEL = 'home_tunnel'
    ROUTE_OPTIMISED = 'route_optimised'
    REVERSE_TUNNEL = 'reverse_tunnel'
    ARP_REPLY = 'arp_reply'
    MOVE_HOLD = 'move_hold'


# Kind -> (code, owner type).  Codes 0x10..0x1f are the host-owned kinds.
# Codes are part of the switches' state: never reuse or renumber one.
_KINDS = {
    Kind.TABLE_MISS: (0x01, None),
    Kind.ARP: (0x02, None),
    Kind.DHCP: (0x03, 'port'),
    Kind.CORE_PORT: (0x04, 'port'),
    Kind.UPLINK_IN: (0x05, 'port'),
    Kind.UPLINK_GUARD: (0x06, 'port'),
    Kind.NOT_ROUTED: (0x07, None),
    Kind.POOL_ROUTE: (0x08, 'cell'),
    Kind.OWN_POOL: (0x09, 'cell'),
    Kind.DEFAULT_ROUTE: (0x0a, 'cell'),
    Kind.LABEL_POP: (0x0b, 'cell'),
    Kind.LABEL_SWITCH: (0x0c, 'cell'),
    Kind.SOURCE_GUARD: (0x11, 'host'),
    Kind.SPOOF_DROP: (0x12, 'host'),
    Kind.GATEWAY: (0x13, 'host'),
    Kind.DELIVER: (0x14, 'host'),
    Kind.HOME_TUNNEL: (0x15, 'host'),
    Kind.ROUTE_OPTIMISED: (0x16, 'host'),
    Kind.REVERSE_TUNNEL: (0x17, 'host'),
    Kind.ARP_REPLY: (0x18, 'host'),
    Kind.MOVE_HOLD: (0x19, 'host'),
}
_KINDS_BY_CODE = {code: kind for kind, (code, _) in _KINDS.items()}
KINDS = frozenset(_KINDS)
HOST_KINDS = frozenset(kind for kind, (_, owner) in _KINDS.items()
                       if owner == 'host')


class CookieDescription(collections.namedtuple(
        'CookieDescription', 'kind owner_type owner')):
    """Kind and owner of a flow, read from its cookie.

    kind is None for a cookie without the TMip marker.  owner is a MAC
    string for a host, an int for a cell or port, and None otherwise.
    """

    __slots__ = ()

    def __str__(self):
        if self.kind is None:
            return 'not a TMip flow'
        if self.owner_type is None:
            return self.kind
        return '%s %s %s' % (self.kind, self.owner_type, self.owner)


def mac_to_int(mac):
    """Return a MAC address as a 48-bit integer."""
    return int(normalise_mac(mac).replace(':', ''), 16)


def int_to_mac(value):
    """Return a 48-bit integer as a MAC address in lower case."""
    text = '%012x' % value
    return ':'.join(text[i:i + 2] for i in range(0, 12, 2))


@functools.lru_cache(maxsize=1 << 17)
def cookie_for(kind, owner=None):
    """Return the cookie of a flow of this kind and owner.

    owner is a MAC address for host kinds, a cell or port number for the
    kinds that have one, and None for the others.
    """
    if kind not in _KINDS:
        raise ValueError('unknown flow kind %r; known kinds: %s'
                         % (kind, ', '.join(sorted(_KINDS))))
    code, owner_type = _KINDS[kind]
    if owner_type is None:
        if owner is not None:
            raise ValueError('flow kind %s has no owner, got %r'
                             % (kind, owner))
        owner_bits = 0
    elif owner_type == 'host':
        owner_bits = mac_to_int(owner)
    else:
        if isinstance(owner, bool) or not isinstance(owner, int) \
                or not 0 <= owner <= _OWNER_MASK:
            raise ValueError('flow kind %s needs a %s number as owner, '
                             'got %r' % (kind, owner_type, owner))
        owner_bits = owner
    return TMIP_COOKIE | code << _KIND_SHIFT | owner_bits


def host_cookie(mac):
    """Return (cookie, mask) that select every flow one host owns.

    `ovs-ofctl del-flows BRIDGE cookie=C/M` with these values removes
    exactly the host's flows on that bridge.
    """
    cookie = TMIP_COOKIE | _HOST_KIND_GROUP | mac_to_int(mac)
    mask = TMIP_COOKIE_MASK | _KIND_GROUP_MASK | _OWNER_MASK
    return cookie, mask


def kind_cookie(kind):
    """Return (cookie, mask) that select every flow of one kind."""
    if kind not in _KINDS:
        raise ValueError('unknown flow kind %r; known kinds: %s'
                         % (kind, ', '.join(sorted(_KINDS))))
    code = _KINDS[kind][0]
    return TMIP_COOKIE | code << _KIND_SHIFT, TMIP_COOKIE_MASK | _KIND_MASK


def is_tmip_cookie(cookie):
    """Tell whether a cookie carries the TMip marker."""
    return cookie & TMIP_COOKIE_MASK == TMIP_COOKIE


def describe_cookie(cookie):
    """Return the kind and owner a cookie encodes, for logs and REST."""
    if not is_tmip_cookie(cookie):
        return CookieDescription(None, None, None)
    code = (cookie & _KIND_MASK) >> _KIND_SHIFT
    owner_bits = cookie & _OWNER_MASK
    kind = _KINDS_BY_CODE.get(code)
    if kind is None:
        return CookieDescription('unknown kind 0x%02x' % code, None, None)
    owner_type = _KINDS[kind][1]
    if owner_type is None:
        return CookieDescription(kind, None, None)
    if owner_type == 'host':
        return CookieDescription(kind, 'host', int_to_mac(owner_bits))
    return CookieDescription(kind, owner_type, owner_bits)

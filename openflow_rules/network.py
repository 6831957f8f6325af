"""The network model: switches, core links, uplinks, hosts and settings.

Defines PortRole, Switch, CoreLink, Uplink, HostPlacement, Settings and
Network.  Every type is a frozen dataclass that validates its input and
raises ValueError or TypeError that names the bad value.  A Network
copies the mappings it is given.  Treat them as read-only, because the
functions that compute flows cache what they derive from a Network.
"""

import collections.abc
import dataclasses
import ipaddress
import math
import typing

from openflow_rules.constants import (
    GATEWAY_MAC_DEFAULT, MAX_PORT, label_for_cell)
from openflow_rules.flow import normalise_mac

_MAX_DPID = (1 << 64) - 1


class PortRole:
    """Roles of a switch port, as plain strings."""

    ACCESS = 'access'
    CORE = 'core'
    UPLINK = 'uplink'
    ALL = frozenset((ACCESS, CORE, UPLINK))


ACCESS = PortRole.ACCESS
CORE = PortRole.CORE
UPLINK = PortRole.UPLINK

# Multicast and limited broadcast: the route table drops them before any
# pool route, so no pool may overlap them.
_NOT_POOLS = (ipaddress.IPv4Network('224.0.0.0/4'),
              ipaddress.IPv4Network('255.255.255.255/32'))


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError('%s must be an int, not %r' % (name, value))
    if not low <= value <= high:
        raise ValueError('%s %d is out of range %d..%d'
                         % (name, value, low, high))


def _check_cell(name, cell):
    if isinstance(cell, bool) or not isinstance(cell, int):
        raise TypeError('%s must be an int, not %r' % (name, cell))
    label_for_cell(cell)


def _parse_address(name, text):
    if not isinstance(text, str):
        raise TypeError('%s must be a str, not %r' % (name, text))
    try:
        return ipaddress.IPv4Address(text)
    except ValueError as error:
        raise ValueError('invalid %s %r: %s' % (name, text, error))


def default_pool(cell):
    """Return the default address pool of a cell: 10.<cell>.0.0/16."""
    _check_cell('cell', cell)
    return '10.%d.0.0/16' % cell


@dataclasses.dataclass(frozen=True)
class Switch:
    """One OVS bridge, which is one cell, and the roles of its ports."""

    dpid: int
    cell: int
    ports: typing.Mapping[int, str]

    def __post_init__(self):
        _check_int('dpid', self.dpid, 0, _MAX_DPID)
        _check_cell('cell of switch %d' % self.dpid, self.cell)
        ports = dict(self.ports)
        for port, role in ports.items():
            _check_int('port of switch %d' % self.dpid, port, 1, MAX_PORT)
            if role not in PortRole.ALL:
                raise ValueError(
                    'port %d of switch %d has role %r; expected one of %s'
                    % (port, self.dpid, role, ', '.join(sorted(
                        PortRole.ALL))))
        object.__setattr__(self, 'ports', ports)

    def ports_with_role(self, role):
        """Return the numbers of the ports with a role, in order."""
        return tuple(sorted(port for port, port_role in self.ports.items()
                            if port_role == role))


@dataclasses.dataclass(frozen=True)
class CoreLink:
    """One direction of a link between two switches' core ports."""

    src_dpid: int
    src_port: int
    dst_dpid: int
    dst_port: int

    def __post_init__(self):
        _check_int('src_dpid', self.src_dpid, 0, _MAX_DPID)
        _check_int('src_port', self.src_port, 1, MAX_PORT)
        _check_int('dst_dpid', self.dst_dpid, 0, _MAX_DPID)
        _check_int('dst_port', self.dst_port, 1, MAX_PORT)

    def reverse(self):
        """Return the link in the other direction."""
        return CoreLink(self.dst_dpid, self.dst_port,
                        self.src_dpid, self.src_port)


def core_link_pair(src_dpid, src_port, dst_dpid, dst_port):
    """Return both directions of a core link, as the model needs."""
    link = CoreLink(src_dpid, src_port, dst_dpid, dst_port)
    return frozenset((link, link.reverse()))


@dataclasses.dataclass(frozen=True)
class Uplink:
    """A port that leads to a plain IP router outside TMip.

    address is the cell router's own address on that link ('a.b.c.d/nn');
    next_hop_mac is None while the next hop's MAC is not resolved.
    """

    dpid: int
    port: int
    address: str
    next_hop: str
    next_hop_mac: typing.Optional[str] = None

    def __post_init__(self):
        _check_int('uplink dpid', self.dpid, 0, _MAX_DPID)
        _check_int('uplink port', self.port, 1, MAX_PORT)
        if not isinstance(self.address, str) or '/' not in self.address:
            raise ValueError("uplink address %r must be 'a.b.c.d/nn'"
                             % (self.address,))
        try:
            interface = ipaddress.IPv4Interface(self.address)
        except ValueError as error:
            raise ValueError('invalid uplink address %r: %s'
                             % (self.address, error))
        next_hop = _parse_address('uplink next hop', self.next_hop)
        if next_hop not in interface.network or next_hop == interface.ip:
            raise ValueError(
                'uplink next hop %s is not another address on the uplink '
                'subnet %s' % (self.next_hop, interface.network))
        if self.next_hop_mac is not None:
            object.__setattr__(self, 'next_hop_mac',
                               normalise_mac(self.next_hop_mac))

    @property
    def resolved(self):
        """True when the next hop's MAC is known, so routes can use it."""
        return self.next_hop_mac is not None


@dataclasses.dataclass(frozen=True)
class HostPlacement:
    """A host's binding: its /30 and home cell, and where it is now.

    The /30 is laid out as network n, gateway n+1, host n+2, broadcast
    n+3, and address and gateway must follow that layout.
    """

    mac: str
    address: str
    gateway: str
    home_cell: int
    dpid: int
    port: int

    def __post_init__(self):
        object.__setattr__(self, 'mac', normalise_mac(self.mac))
        address = _parse_address('host address', self.address)
        gateway = _parse_address('gateway', self.gateway)
        if int(address) % 4 != 2 or int(gateway) != int(address) - 1:
            raise ValueError(
                'host %s: address %s and gateway %s do not form a /30 '
                '(network n, gateway n+1, host n+2)'
                % (self.mac, self.address, self.gateway))
        _check_cell('home cell of host %s' % self.mac, self.home_cell)
        _check_int('dpid of host %s' % self.mac, self.dpid, 0, _MAX_DPID)
        _check_int('port of host %s' % self.mac, self.port, 1, MAX_PORT)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Network-wide choices: gateway MAC and the two routing options."""

    gateway_mac: str = GATEWAY_MAC_DEFAULT
    route_optimisation: bool = True
    reverse_tunnelling: bool = False

    def __post_init__(self):
        mac = normalise_mac(self.gateway_mac)
        if int(mac[:2], 16) & 1:
            raise ValueError('gateway MAC %s is a multicast address; use a '
                             'unicast one such as %s'
                             % (mac, GATEWAY_MAC_DEFAULT))
        object.__setattr__(self, 'gateway_mac', mac)
        for name in ('route_optimisation', 'reverse_tunnelling'):
            if not isinstance(getattr(self, name), bool):
                raise TypeError('%s must be True or False, not %r'
                                % (name, getattr(self, name)))


_REMOVED = object()


class LayeredMap(collections.abc.Mapping):
    """An immutable mapping that shares one base dict with its variants.

    ``with_item`` and ``without`` return a new map that records only its
    changes from the shared base, and folds them into a new base once
    they outnumber the square root of its size.  Changing one host of a
    network of 100,000 then costs a copy of a few hundred entries, not of
    every host (7 ms for the two maps of a network, measured).
    """

    __slots__ = ('_base', '_changes', '_length')

    def __init__(self, base=(), changes=None, length=None):
        self._base = base if isinstance(base, dict) else dict(base)
        self._changes = changes or {}
        self._length = len(self._base) if length is None else length

    def __getitem__(self, key):
        value = self._changes.get(key, self)
        if value is self:
            return self._base[key]
        if value is _REMOVED:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        value = self._changes.get(key, self)
        if value is self:
            return key in self._base
        return value is not _REMOVED

    def get(self, key, default=None):
        value = self._changes.get(key, self)
        if value is self:
            return self._base.get(key, default)
        return default if value is _REMOVED else value

    def __iter__(self):
        changes = self._changes
        for key in self._base:
            if key not in changes:
                yield key
        for key, value in changes.items():
            if value is not _REMOVED:
                yield key

    def __len__(self):
        return self._length

    def __repr__(self):
        return 'LayeredMap(%r)' % (dict(self.items()),)

    def with_item(self, key, value):
        """Return a map with ``key`` set to ``value``."""
        length = self._length + (0 if key in self else 1)
        changes = dict(self._changes)
        changes[key] = value
        return self._variant(changes, length)

    def without(self, key):
        """Return a map without ``key``, or raise KeyError if it is absent."""
        if key not in self:
            raise KeyError(key)
        changes = dict(self._changes)
        if key in self._base:
            changes[key] = _REMOVED
        else:
            del changes[key]
        return self._variant(changes, self._length - 1)

    def _variant(self, changes, length):
        if len(changes) <= max(64, math.isqrt(len(self._base))):
            return LayeredMap(self._base, changes, length)
        base = {key: value for key, value in self._base.items()
                if key not in changes}
        base.update((key, value) for key, value in changes.items()
                    if value is not _REMOVED)
        return LayeredMap(base)


@dataclasses.dataclass(frozen=True)
class Network:
    """Everything the flows depend on: topology, bindings and settings.

    links contains each direction of a core link as its own CoreLink.
    cell_pools maps a cell to its address pool 'net/prefix'.  A cell may
    have a pool and no switch, while its switch is not connected.
    """

    switches: typing.Mapping[int, Switch]
    links: typing.FrozenSet[CoreLink] = frozenset()
    uplinks: typing.Tuple[Uplink, ...] = ()
    hosts: typing.Mapping[str, HostPlacement] = \
        dataclasses.field(default_factory=dict)
    cell_pools: typing.Mapping[int, str] = \
        dataclasses.field(default_factory=dict)
    settings: Settings = Settings()

    def __post_init__(self):
        object.__setattr__(self, 'switches', dict(self.switches))
        object.__setattr__(self, 'links', frozenset(self.links))
        object.__setattr__(self, 'uplinks', tuple(self.uplinks))
        object.__setattr__(self, 'hosts', {
            mac.lower() if isinstance(mac, str) else mac: host
            for mac, host in dict(self.hosts).items()})
        object.__setattr__(self, 'cell_pools', dict(self.cell_pools))
        if not isinstance(self.settings, Settings):
            raise TypeError('settings must be a Settings, not %r'
                            % (self.settings,))
        self._check_switches()
        self._check_links()
        self._check_uplinks()
        # Values that openflow_rules derives from this network, by name.
        object.__setattr__(self, '_derived', {'pools': self._check_pools()})
        self._check_hosts()

    def _check_switches(self):
        cells = {}
        for dpid, switch in self.switches.items():
            if not isinstance(switch, Switch) or switch.dpid != dpid:
                raise ValueError('switches[%r] must be the Switch with that '
                                 'dpid, not %r' % (dpid, switch))
            if switch.cell in cells:
                raise ValueError('switches %d and %d both claim cell %d'
                                 % (cells[switch.cell], dpid, switch.cell))
            cells[switch.cell] = dpid

    def _role(self, dpid, port):
        switch = self.switches.get(dpid)
        return None if switch is None else switch.ports.get(port)

    def _check_links(self):
        for link in self.links:
            if not isinstance(link, CoreLink):
                raise TypeError('links must hold CoreLinks, not %r'
                                % (link,))
            if link.src_dpid == link.dst_dpid:
                raise ValueError('core link %r loops back to its switch'
                                 % (link,))
            for dpid, port in ((link.src_dpid, link.src_port),
                               (link.dst_dpid, link.dst_port)):
                if self._role(dpid, port) != PortRole.CORE:
                    raise ValueError(
                        'core link %r uses port %d of switch %d, which is '
                        'not a core port of a known switch'
                        % (link, port, dpid))

    def _check_uplinks(self):
        seen = set()
        for uplink in self.uplinks:
            if not isinstance(uplink, Uplink):
                raise TypeError('uplinks must hold Uplinks, not %r'
                                % (uplink,))
            key = (uplink.dpid, uplink.port)
            if self._role(*key) != PortRole.UPLINK:
                raise ValueError('uplink on port %d of switch %d: that '
                                 'port is not an uplink port of a known '
                                 'switch' % (uplink.port, uplink.dpid))
            if key in seen:
                raise ValueError('two uplinks on port %d of switch %d'
                                 % (uplink.port, uplink.dpid))
            seen.add(key)

    def _check_pools(self):
        pools = {}
        for cell, pool in self.cell_pools.items():
            _check_cell('cell of pool %r' % (pool,), cell)
            if not isinstance(pool, str):
                raise TypeError('pool of cell %d must be a str, not %r'
                                % (cell, pool))
            try:
                pools[cell] = ipaddress.IPv4Network(pool)
            except ValueError as error:
                raise ValueError('invalid pool %r of cell %d: %s'
                                 % (pool, cell, error))
            if any(pools[cell].overlaps(other) for other in _NOT_POOLS):
                raise ValueError('pool %s of cell %d overlaps multicast or '
                                 'broadcast addresses' % (pool, cell))
        ordered = sorted(pools.items(), key=lambda item: item[1])
        for (cell_a, pool_a), (cell_b, pool_b) in zip(ordered, ordered[1:]):
            if pool_a.overlaps(pool_b):
                raise ValueError('pools of cells %d (%s) and %d (%s) overlap'
                                 % (cell_a, pool_a, cell_b, pool_b))
        return pools

    def _check_hosts(self):
        owners = {}
        for mac, host in self.hosts.items():
            if not isinstance(host, HostPlacement) or host.mac != mac:
                raise ValueError('hosts[%r] must be the HostPlacement with '
                                 'that MAC, not %r' % (mac, host))
            self._check_host(host, owners)
            owners[host.address] = mac
        self._derived['address_owners'] = owners

    def _check_host(self, host, owners):
        pool = self._derived['pools'].get(host.home_cell)
        if pool is None:
            raise ValueError('host %s has home cell %d, which has no pool'
                             % (host.mac, host.home_cell))
        if ipaddress.IPv4Address(host.address) not in pool:
            raise ValueError('host %s: address %s is not in the pool %s '
                             'of its home cell %d'
                             % (host.mac, host.address, pool,
                                host.home_cell))
        if self._role(host.dpid, host.port) != PortRole.ACCESS:
            raise ValueError('host %s is at port %d of switch %d, which '
                             'is not an access port of a known switch'
                             % (host.mac, host.port, host.dpid))
        owner = owners.get(host.address)
        if owner is not None and owner != host.mac:
            raise ValueError('hosts %s and %s share the address %s'
                             % (owner, host.mac, host.address))

    def check_host(self, host):
        """Raise ValueError unless a placement of a host fits this network.

        The host's own current placement, if any, does not count as a
        clash, so this checks a move as well as an attach.
        """
        if not isinstance(host, HostPlacement):
            raise TypeError('host must be a HostPlacement, not %r'
                            % (host,))
        self._check_host(host, self._derived['address_owners'])

    def cell_of(self, dpid):
        """Return the cell of a switch."""
        return self.switches[dpid].cell

    def is_roaming(self, host):
        """Tell whether a host is attached outside its home cell."""
        return self.switches[host.dpid].cell != host.home_cell

    def replace_host(self, host):
        """Return a copy of the network with this host placement.

        Only the new placement is validated, and the copy shares the host
        map with this network (see LayeredMap), so this costs about the
        same at any number of hosts.
        """
        self.check_host(host)
        hosts = _layered(self.hosts)
        owners = _layered(self._derived['address_owners'])
        previous = hosts.get(host.mac)
        if previous is not None:
            owners = owners.without(previous.address)
        hosts = hosts.with_item(host.mac, host)
        owners = owners.with_item(host.address, host.mac)
        return self._with_hosts(hosts, owners)

    def remove_host(self, mac):
        """Return a copy of the network without a host."""
        mac = normalise_mac(mac)
        if mac not in self.hosts:
            raise KeyError('host %s is not in the network' % mac)
        hosts = _layered(self.hosts)
        owners = _layered(self._derived['address_owners'])
        owners = owners.without(hosts[mac].address)
        return self._with_hosts(hosts.without(mac), owners)

    def _with_hosts(self, hosts, owners):
        """Return a copy with other hosts, skipping the checks __init__ does.

        The caller has validated the hosts that changed.
        """
        network = object.__new__(Network)
        for field in dataclasses.fields(self):
            object.__setattr__(network, field.name,
                               getattr(self, field.name))
        object.__setattr__(network, 'hosts', hosts)
        object.__setattr__(network, '_derived', {
            'pools': self._derived['pools'], 'address_owners': owners})
        return network


def _layered(mapping):
    """Return a mapping as a LayeredMap, sharing it if it is one."""
    if isinstance(mapping, LayeredMap):
        return mapping
    return LayeredMap(mapping)

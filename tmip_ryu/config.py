"""The ``[tmip]`` options of ``ryu-manager --config-file`` and their checks.

``load_settings`` turns the parsed options into a ``TmipSettings`` value
and raises ``ConfigError`` with one sentence naming the option when a
value is wrong.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass, field

from oslo_config import cfg as oslo_cfg
from ryu import cfg
from ryu.ofproto import ofproto_common

GROUP = 'tmip'
DEFAULT_STATE_FILE = '/var/lib/tmip_ryu/state.sqlite'
DEFAULT_GATEWAY_MAC = '02:00:00:00:00:01'

OPTIONS = [
    cfg.ListOpt('uplinks', default=[],
                help='Uplink ports to routers outside TMip, each '
                     'dpid:port:cell_address/prefix:next_hop, for example '
                     '1:1:172.16.1.1/30:172.16.1.2.'),
    cfg.ListOpt('cell_pools', default=[],
                help='Address pools as cell:network/prefix, for example '
                     '1:10.1.0.0/16; a cell without one gets '
                     '10.<cell>.0.0/16.'),
    cfg.ListOpt('cell_ids', default=[],
                help='Cell ids of switches as dpid:cell; a switch whose '
                     'datapath id is 1 to 254 is that cell by default.'),
    cfg.BoolOpt('route_optimisation', default=True,
                help='Tunnel traffic for a roaming host straight to its '
                     'current cell instead of through its home cell.'),
    cfg.BoolOpt('reverse_tunnelling', default=False,
                help='Send traffic from a roaming host to outside TMip '
                     'through its home cell\'s uplink.'),
    cfg.IntOpt('lease_time', default=3600,
               help='DHCP lease time in seconds (60 or more).'),
    cfg.StrOpt('gateway_mac', default=DEFAULT_GATEWAY_MAC,
               help='Virtual gateway MAC address that every cell uses in '
                    'its ARP replies; a unicast, locally administered '
                    'address.'),
    cfg.StrOpt('state_file', default=DEFAULT_STATE_FILE,
               help='SQLite file where the register keeps bindings across '
                    'restarts.'),
    cfg.IntOpt('packet_in_rate', default=1000,
               help='Packets per second each switch may send to the '
                    'controller for unknown sources (a meter).'),
    cfg.FloatOpt('handover_timeout', default=2.0,
                 help='Seconds each hand-over phase (prepare, commit) may '
                      'take before the hand-over is aborted.'),
    cfg.IntOpt('flush_interval_ms', default=5,
               help='Milliseconds between group commits of the register '
                    'to the state file; DHCP ACKs wait for the next one.'),
    cfg.IntOpt('expiry_interval', default=10,
               help='Seconds between checks for expired leases.'),
]

cfg.CONF.register_opts(OPTIONS, group=GROUP)

_MAC = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')


class ConfigError(ValueError):
    """A ``[tmip]`` option has a value the controller cannot use."""


@dataclass(frozen=True)
class UplinkConfig:
    """One configured uplink port of a cell."""

    dpid: int
    port: int
    interface: ipaddress.IPv4Interface
    next_hop: ipaddress.IPv4Address


@dataclass(frozen=True)
class TmipSettings:
    """Checked values of every ``[tmip]`` option."""

    uplinks: tuple = ()
    cell_pools: dict = field(default_factory=dict)
    cell_ids: dict = field(default_factory=dict)
    route_optimisation: bool = True
    reverse_tunnelling: bool = False
    lease_time: int = 3600
    gateway_mac: str = DEFAULT_GATEWAY_MAC
    state_file: str = DEFAULT_STATE_FILE
    packet_in_rate: int = 1000
    handover_timeout: float = 2.0
    flush_interval_ms: int = 5
    expiry_interval: int = 10

    def cell_of(self, dpid):
        """Return the cell id of a switch, or None if it has none."""
        if dpid in self.cell_ids:
            return self.cell_ids[dpid]
        if 1 <= dpid <= 254:
            return dpid
        return None


def _int(text, option, what):
    try:
        return int(text, 0)
    except ValueError:
        raise ConfigError('%s: %r is not a valid %s' % (option, text, what))


def parse_uplink(entry):
    """Parse one ``dpid:port:address/prefix:next_hop`` uplink entry."""
    parts = entry.strip().split(':')
    if len(parts) != 4:
        raise ConfigError(
            'uplinks: %r must be dpid:port:cell_address/prefix:next_hop'
            % entry)
    dpid = _int(parts[0], 'uplinks', 'datapath id')
    port = _int(parts[1], 'uplinks', 'port number')
    try:
        interface = ipaddress.IPv4Interface(parts[2])
        next_hop = ipaddress.IPv4Address(parts[3])
    except ValueError as error:
        raise ConfigError('uplinks: %r has an invalid address: %s'
                          % (entry, error))
    if '/' not in parts[2]:
        raise ConfigError('uplinks: %r needs a prefix length on the cell '
                          'address, as in 172.16.1.1/30' % entry)
    if next_hop not in interface.network or next_hop == interface.ip:
        raise ConfigError('uplinks: next hop %s of %r is not another '
                          'address on %s' % (next_hop, entry,
                                             interface.network))
    return UplinkConfig(dpid, port, interface, next_hop)


def parse_cell_pool(entry):
    """Parse one ``cell:network/prefix`` pool entry."""
    cell_text, _, network_text = entry.strip().partition(':')
    cell = _int(cell_text, 'cell_pools', 'cell id')
    try:
        network = ipaddress.IPv4Network(network_text)
    except ValueError as error:
        raise ConfigError('cell_pools: %r has an invalid network: %s'
                          % (entry, error))
    if network.prefixlen > 30:
        raise ConfigError('cell_pools: %r is smaller than one /30' % entry)
    return cell, network


def parse_cell_id(entry):
    """Parse one ``dpid:cell`` entry."""
    dpid_text, _, cell_text = entry.strip().partition(':')
    dpid = _int(dpid_text, 'cell_ids', 'datapath id')
    cell = _int(cell_text, 'cell_ids', 'cell id')
    if not 1 <= cell <= 254:
        raise ConfigError('cell_ids: cell %d of %r is not in 1..254'
                          % (cell, entry))
    return dpid, cell


def _checked_pools(entries):
    pools = dict(parse_cell_pool(entry) for entry in entries)
    networks = sorted(pools.items(), key=lambda item: item[1])
    for (cell_a, net_a), (cell_b, net_b) in zip(networks, networks[1:]):
        if net_a.overlaps(net_b):
            raise ConfigError('cell_pools: pools of cells %d and %d overlap'
                              % (cell_a, cell_b))
    return {cell: str(network) for cell, network in pools.items()}


def load_settings(conf=None):
    """Read and check the ``[tmip]`` options; raise ConfigError if wrong."""
    group = (conf or cfg.CONF)[GROUP]
    try:
        values = {option.dest: group[option.dest] for option in OPTIONS}
    except (ValueError, oslo_cfg.Error) as error:
        # oslo.config names the option and the file in its message.
        raise ConfigError('%s' % error)

    gateway_mac = values['gateway_mac'].lower()
    if not _MAC.match(gateway_mac):
        raise ConfigError('gateway_mac: %r is not a MAC address like '
                          '02:00:00:00:00:01' % values['gateway_mac'])
    if int(gateway_mac[:2], 16) & 1:
        raise ConfigError('gateway_mac: %s is a multicast address; use a '
                          'unicast one' % gateway_mac)
    if values['lease_time'] < 60:
        raise ConfigError('lease_time: %d s is too short; use 60 or more'
                          % values['lease_time'])
    for name in ('packet_in_rate', 'flush_interval_ms', 'expiry_interval'):
        if values[name] < 1:
            raise ConfigError('%s: %d must be 1 or more' % (name,
                                                           values[name]))
    if values['handover_timeout'] <= 0:
        raise ConfigError('handover_timeout: %s must be above 0 seconds'
                          % values['handover_timeout'])
    if not values['state_file']:
        raise ConfigError('state_file: an empty path is not allowed')

    uplinks = tuple(parse_uplink(entry) for entry in values['uplinks'])
    seen = set()
    for uplink in uplinks:
        if (uplink.dpid, uplink.port) in seen:
            raise ConfigError('uplinks: port %d of switch %d is listed twice'
                              % (uplink.port, uplink.dpid))
        seen.add((uplink.dpid, uplink.port))
    return TmipSettings(
        uplinks=uplinks,
        cell_pools=_checked_pools(values['cell_pools']),
        cell_ids=dict(parse_cell_id(e) for e in values['cell_ids']),
        route_optimisation=values['route_optimisation'],
        reverse_tunnelling=values['reverse_tunnelling'],
        lease_time=values['lease_time'],
        gateway_mac=gateway_mac,
        state_file=values['state_file'],
        packet_in_rate=values['packet_in_rate'],
        handover_timeout=values['handover_timeout'],
        flush_interval_ms=values['flush_interval_ms'],
        expiry_interval=values['expiry_interval'])


def check_port_free(host, port, option):
    """Raise ConfigError when a TCP port is already taken on ``host``."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                '%s: port %d on %s is already in use (%s); stop what '
                'listens there or choose another port with --%s'
                % (option, port, host or '*', error.strerror,
                   option.replace('_', '-')))


def check_listen_ports(conf=None):
    """Check that the OpenFlow and REST ports are free before starting."""
    conf = conf or cfg.CONF
    of_port = conf.ofp_tcp_listen_port or ofproto_common.OFP_TCP_PORT
    check_port_free(conf.ofp_listen_host or '0.0.0.0', of_port,
                    'ofp_tcp_listen_port')
    check_port_free(conf.wsapi_host, conf.wsapi_port, 'wsapi_port')

"""TMip cells in Mininet: topology, node classes, host moves and CLI.

This file holds:
- ``TmipTopo``: N cells (userspace OVS bridges, dpid = cell) with mobile
  hosts, a core switch joining them, an uplink from every cell to one
  Linux router and an external correspondent behind that router;
- ``MobileHost``, ``CorrespondentHost`` and ``UplinkRouter``, the node
  classes the topology uses;
- ``build_network`` and ``attach_controller`` for Python callers, and
  ``controller_config``, the ``[tmip]`` file for a built network;
- ``move``, which moves a host's link from one switch to another;
- ``TmipCLI``, Mininet's CLI with the commands ``move``, ``dhcp``,
  ``leases`` and ``tmipconf``.

It also works as a custom file for Debian's ``mn``::

    mn --custom mininet/tmip_topo.py --topo tmip,3 \\
        --controller remote,ip=127.0.0.1,port=6653

``mn`` runs this file with ``exec`` and copies every top-level name into
its own globals, so the names here avoid those ``mn`` uses, and ``CLI``
is set on purpose: ``mn`` opens that class as its CLI.
"""

import ctypes
import errno
import fcntl
import inspect
import ipaddress
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

from mininet.cli import CLI as MininetCLI
from mininet.link import Intf
from mininet.log import error as log_error, output as log_output
from mininet.net import Mininet
from mininet.node import Host, Node, OVSSwitch
from mininet.topo import Topo


def _this_directory():
    """Return the folder of this file, also when ``mn`` exec's it."""
    path = globals().get('__file__')
    if not path:
        # ``mn --custom`` compiles the file with its path as the code's
        # file name but sets no __file__.
        path = inspect.currentframe().f_code.co_filename
    return os.path.dirname(os.path.abspath(path))


MININET_DIR = _this_directory()
if MININET_DIR not in sys.path:
    sys.path.insert(0, MININET_DIR)

import tmip_dhcp  # noqa: E402  (found through the path set just above)

CORE_DPID = 254
UPLINK_PORT = 1
CORE_PORT = 2
FIRST_HOST_PORT = 3
EXTERNAL_NETWORK = ipaddress.IPv4Network('203.0.113.0/24')
EXTERNAL_ROUTER_ADDRESS = '203.0.113.1'
EXTERNAL_HOST_ADDRESS = '203.0.113.10'
OPENFLOW_VERSIONS = 'OpenFlow13,OpenFlow14'
# Core links carry MPLS: a full-size 1500-byte IPv4 packet gains a 4-byte
# label, and a veth drops frames above its MTU, so the core needs room.
CORE_MTU = 1600
MAX_INTERFACE_NAME = 15


def cell_pool(cell):
    """Return the default address pool of a cell, 10.<cell>.0.0/16."""
    return ipaddress.IPv4Network('10.%d.0.0/16' % cell)


def uplink_addresses(cell):
    """Return (cell side, router side) of a cell's uplink /30 as text."""
    return '172.16.%d.1' % cell, '172.16.%d.2' % cell


def host_mac(number):
    """Return the MAC address of mobile host number ``number``."""
    high, low = divmod(number, 256)
    return '02:00:00:01:%02x:%02x' % (high, low)


def hosts_per_cell(spec, cells):
    """Return a list with the number of hosts in each cell.

    ``spec`` is one number for every cell, a list, or text such as
    ``'2:1:1'`` (the form ``mn --topo tmip,3,hosts=2:1:1`` passes).
    """
    if isinstance(spec, str) and ':' not in spec:
        spec = int(spec)
    if isinstance(spec, int):
        counts = [spec] * cells
    elif isinstance(spec, str):
        counts = [int(part) for part in spec.split(':')]
    else:
        counts = [int(count) for count in spec]
    if len(counts) != cells:
        raise ValueError('hosts: %r gives %d counts for %d cells'
                         % (spec, len(counts), cells))
    if any(count < 0 for count in counts):
        raise ValueError('hosts: %r has a negative count' % (spec,))
    return counts


def run_checked(*args):
    """Run a command in the root namespace; return its output as text."""
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError('%s failed (exit %d): %s' % (
            ' '.join(args), result.returncode, result.stderr.strip()))
    return result.stdout


def checksum_offload_off(node, intf):
    """Turn TX and RX checksum offload off on one of the node's veths.

    The userspace datapath forwards what a veth hands it as is, so with
    offload on a TCP segment leaves with a checksum still to be filled in
    and the receiver drops it: ping works, TCP stalls.
    """
    output = node.cmd('ethtool -K %s tx off rx off; echo "exit=$?"' % intf)
    if 'exit=0' not in output:
        raise RuntimeError('ethtool -K %s tx off rx off failed on %s: %s'
                           % (intf, node.name, output.strip()))


def ipv6_off(node):
    """Turn IPv6 off in a node's namespace.

    The emulation is IPv4 only.  With IPv6 on, every node sends router
    solicitations and multicast listener reports of its own, which reach
    the controller as frames from the node.
    """
    for scope in ['all', 'default'] + node.intfNames():
        node.cmd('sysctl -qw net.ipv6.conf.%s.disable_ipv6=1' % scope)


class CorrespondentHost(Host):
    """A host with a static address, IPv4 only, checksum offload off."""

    def config(self, **params):
        """Configure the host, IPv6 off and checksum offload off."""
        ipv6_off(self)
        result = super().config(**params)
        for intf in self.intfNames():
            if intf != 'lo':
                checksum_offload_off(self, intf)
        return result

    def terminate(self):
        """Close the sockets of ``send_announcement``, then stop."""
        close_announcement_sockets(self)
        super().terminate()


class MobileHost(CorrespondentHost):
    """A mobile host: no static address and its own DHCP client.

    ``dhcp_client`` is ``'dhclient'``, ``'udhcpc'`` or ``'dhcpcd'``; the
    client starts with ``start_dhcp``, not at build time, because the
    cells forward nothing until the controller is connected.  With IPv6
    off the host sends no frame until its software does, so a host that
    is quiet after a move stays quiet.
    """

    def __init__(self, name, dhcp_client='dhclient', **params):
        if dhcp_client not in tmip_dhcp.CLIENTS:
            raise ValueError('dhcp_client of %s: %r is not one of %s'
                             % (name, dhcp_client,
                                ', '.join(sorted(tmip_dhcp.CLIENTS))))
        self.dhcp_client_name = dhcp_client
        self.dhcp = None
        super().__init__(name, **params)

    def config(self, **params):
        """Configure the host with no IPv4 address: DHCP gives it one."""
        params['ip'] = None
        return super().config(**params)

    def start_dhcp(self, run_dir, client=None):
        """Start this host's DHCP client; return the client object."""
        if self.dhcp is not None and self.dhcp.running():
            return self.dhcp
        name = client or self.dhcp_client_name
        self.dhcp = tmip_dhcp.CLIENTS[name](self, self.defaultIntf().name,
                                            run_dir)
        self.dhcp.start()
        return self.dhcp

    def stop_dhcp(self):
        """Stop this host's DHCP client, if it runs, by its pid."""
        if self.dhcp is not None:
            self.dhcp.stop()

    def terminate(self):
        """Stop the DHCP client, then the host."""
        self.stop_dhcp()
        super().terminate()


class UplinkRouter(Node):
    """A plain Linux IP router in its own namespace.

    ``routes`` is a list of (prefix, next hop) static routes, added once
    at start.  IP forwarding is on, IPv6 off and checksum offload off on
    every interface.  Reverse path filtering starts off (a namespace
    otherwise inherits the machine's setting); ``set_rp_filter`` sets it.
    """

    def config(self, routes=(), **params):
        """Configure forwarding, offloads and the static routes."""
        ipv6_off(self)
        result = super().config(**params)
        self.cmd('sysctl -qw net.ipv4.ip_forward=1')
        self.set_rp_filter(0)
        for intf in self.intfNames():
            if intf != 'lo':
                checksum_offload_off(self, intf)
        for prefix, next_hop in routes:
            output = self.cmd('ip route replace %s via %s'
                              % (prefix, next_hop))
            if output.strip():
                raise RuntimeError('route %s via %s on %s failed: %s'
                                   % (prefix, next_hop, self.name,
                                      output.strip()))
        return result

    def set_rp_filter(self, mode):
        """Set reverse path filtering (0 off, 1 strict, 2 loose)."""
        for intf in ['all', 'default'] + self.intfNames():
            self.cmd('sysctl -qw net.ipv4.conf.%s.rp_filter=%d'
                     % (intf, mode))


class CoreIntf(Intf):
    """An interface of a core link, with room for MPLS labels."""

    def config(self, mtu=CORE_MTU, **params):
        """Configure the interface, then set its MTU."""
        result = super().config(**params)
        output = self.cmd('ip link set dev %s mtu %d' % (self.name, mtu))
        if output.strip():
            raise RuntimeError('setting MTU %d on %s failed: %s'
                               % (mtu, self.name, output.strip()))
        return result


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
# struct ifreq: the interface name, then a union of 24 bytes whose first
# member here is the short of interface flags.
_IFREQ_FLAGS = struct.Struct('16sH22x')


def set_link_up(name, up):
    """Set or clear the up flag of interface ``name`` of this namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = _IFREQ_FLAGS.pack(name.encode(), 0)
        _name, flags = _IFREQ_FLAGS.unpack(
            fcntl.ioctl(control, _SIOCGIFFLAGS, request))
        new_flags = flags | _IFF_UP if up else flags & ~_IFF_UP
        if new_flags != flags:
            fcntl.ioctl(control, _SIOCSIFFLAGS,
                        _IFREQ_FLAGS.pack(name.encode(), new_flags))


_BRIDGE_PORT_FORWARDING = '3'


def _wait_forwarding(name, timeout=1.0):
    """Wait until bridge port ``name`` forwards frames.

    The kernel enables a bridge port shortly after its link comes up, in
    a work queue: a frame sent in between is dropped.
    """
    path = '/sys/class/net/%s/brport/state' % name
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as state:
            if state.read().strip() == _BRIDGE_PORT_FORWARDING:
                return
        if time.monotonic() > deadline:
            raise RuntimeError('timed out after %.1f s waiting for bridge '
                               'port %s to forward after its link came up'
                               % (timeout, name))
        time.sleep(0.0002)


class RadioHub(Node):
    """A mobile host's links to every cell, of which one is up at a time.

    The hub is a Linux bridge in the root namespace.  Port 0 leads to the
    host and port ``c`` to the switch of cell ``c``.  ``move`` takes the
    link to the old cell down and the one to the new cell up, as a radio
    link is lost and another found.  No switch port is added or deleted.
    The bridge sends no frame of its own: IPv6 is off on it and on its
    ports, and spanning tree and multicast snooping are off.  Bridged
    frames skip the root namespace's iptables.
    """

    def config(self, active_port=None, **params):
        """Make the bridge, enslave every port, bring up ``active_port``."""
        result = super().config(**params)
        names = [intf.name for intf in self.intfList() if intf.name != 'lo']
        # With br_netfilter loaded, bridged frames would otherwise pass
        # the root namespace's iptables, whose FORWARD chain may drop them.
        commands = ['ip link add name %s type bridge stp_state 0 '
                    'mcast_snooping 0 nf_call_iptables 0 nf_call_ip6tables 0 '
                    'nf_call_arptables 0' % self.name,
                    'sysctl -qw net.ipv6.conf.%s.disable_ipv6=1' % self.name]
        for name in names:
            commands += ['sysctl -qw net.ipv6.conf.%s.disable_ipv6=1' % name,
                         'ethtool -K %s tx off rx off' % name,
                         'ip link set dev %s master %s' % (name, self.name)]
        self.active_intf = self.intfs.get(active_port)
        for port, intf in self.intfs.items():
            state = 'up' if port in (0, active_port) else 'down'
            commands.append('ip link set dev %s %s' % (intf.name, state))
        commands.append('ip link set dev %s up' % self.name)
        for command in commands:
            output = self.cmd(command + '; echo "exit=$?"')
            if 'exit=0' not in output:
                raise RuntimeError('%s failed on %s: %s'
                                   % (command, self.name, output.strip()))
        return result

    def cell_links(self):
        """Return {switch: (hub interface, switch interface)} of the cells."""
        links = {}
        for port, intf in self.intfs.items():
            if port == 0 or intf.link is None:
                continue
            link = intf.link
            peer = link.intf2 if link.intf1 is intf else link.intf1
            links[peer.node] = (intf, peer)
        return links

    def active_switch(self):
        """Return the switch whose link is up, or None."""
        for switch, (intf, _peer) in self.cell_links().items():
            if intf is self.active_intf:
                return switch
        return None

    def switch_to(self, switch):
        """Bring ``switch``'s link up and every other cell link down.

        Returns the switch's interface of that link.  The hub lives in the
        root namespace, as this process does, so each change is one
        ioctl, with no command to start.
        """
        links = self.cell_links()
        if switch not in links:
            raise ValueError('%s has no link to %s' % (self.name, switch))
        for other, (intf, _peer) in links.items():
            if other is not switch:
                set_link_up(intf.name, False)
        set_link_up(links[switch][0].name, True)
        self.active_intf = links[switch][0]
        _wait_forwarding(links[switch][0].name)
        return links[switch][1]

    def terminate(self):
        """Delete the bridge, then stop the node's shell."""
        self.cmd('ip link del dev %s' % self.name)
        super().terminate()


class TmipTopo(Topo):
    """N TMip cells joined by a core switch, with an uplink router.

    Cell ``c`` is switch ``s<c>`` (dpid ``c``): port 1 is its uplink to
    router ``r0`` (172.16.c.0/30), port 2 its core link to ``s254`` (MTU
    ``CORE_MTU``), and its mobile hosts start at port 3.  Hosts are
    numbered across cells: with two hosts a cell, ``h1`` and ``h2`` are in
    cell 1.  The router
    routes 10.c.0.0/16 to 172.16.c.1 (the controller replies to ARP for
    that address) and leads to ``ext`` (203.0.113.10) on 203.0.113.0/24.

    ``prefix`` goes in front of every node name, so that several networks
    can run at once without clashing bridge or interface names.
    ``standalone`` makes every bridge a plain learning switch with no
    controller, to check the emulation on its own.

    With ``prewired``, host ``h<n>`` reaches every cell through its
    ``RadioHub`` ``w<n>``, at port ``FIRST_HOST_PORT + n - 1`` of each
    cell switch, and a move changes which link is up (a radio hand-over)
    instead of moving the host's port to another bridge (a cable).
    """

    def build(self, cells=3, hosts=1, prefix='', standalone=False,
              dhcp_client='dhclient', host_clients=None, prewired=False):
        if not 1 <= cells <= 253:
            raise ValueError('cells: %r must be 1 to 253' % (cells,))
        self.cells = cells
        self.prefix = prefix
        counts = hosts_per_cell(hosts, cells)
        clients = dict(host_clients or {})
        fail_mode = 'standalone' if standalone else 'secure'
        switch_options = dict(cls=OVSSwitch, datapath='user',
                              protocols=OPENFLOW_VERSIONS,
                              failMode=fail_mode)

        routes = []
        for cell in range(1, cells + 1):
            routes.append((str(cell_pool(cell)), uplink_addresses(cell)[0]))
        router = self.addNode(prefix + 'r0', cls=UplinkRouter, ip=None,
                              routes=routes)
        external = self.addHost(
            prefix + 'ext', cls=CorrespondentHost,
            ip='%s/%d' % (EXTERNAL_HOST_ADDRESS, EXTERNAL_NETWORK.prefixlen),
            defaultRoute='via %s' % EXTERNAL_ROUTER_ADDRESS)
        self.addLink(router, external, port1=0, port2=0, params1={
            'ip': '%s/%d' % (EXTERNAL_ROUTER_ADDRESS,
                             EXTERNAL_NETWORK.prefixlen)})

        core = self.addSwitch(prefix + 's%d' % CORE_DPID,
                              dpid='%016x' % CORE_DPID, role='core',
                              **switch_options)
        switches = {}
        for cell in range(1, cells + 1):
            switch = self.addSwitch(prefix + 's%d' % cell,
                                    dpid='%016x' % cell, cell=cell,
                                    role='cell', **switch_options)
            switches[cell] = switch
            self.addLink(switch, router, port1=UPLINK_PORT, port2=cell,
                         params2={'ip': uplink_addresses(cell)[1] + '/30'})
            self.addLink(switch, core, port1=CORE_PORT, port2=cell,
                         intf=CoreIntf)
        number = 0
        for cell in range(1, cells + 1):
            for index in range(counts[cell - 1]):
                number += 1
                name = prefix + 'h%d' % number
                self.addHost(name, cls=MobileHost, ip=None,
                             mac=host_mac(number),
                             dhcp_client=clients.get(name, dhcp_client),
                             home_cell=cell)
                if not prewired:
                    self.addLink(name, switches[cell],
                                 port2=FIRST_HOST_PORT + index)
                    continue
                hub = self.addNode(prefix + 'w%d' % number, cls=RadioHub,
                                   inNamespace=False, ip=None,
                                   active_port=cell)
                self.addLink(name, hub, port2=0)
                for other, switch in switches.items():
                    self.addLink(hub, switch, port1=other,
                                 port2=FIRST_HOST_PORT + number - 1)
        self._check_interface_names()

    def _check_interface_names(self):
        longest = max(self.nodes(), key=len)
        if len(longest) + len('-eth254') > MAX_INTERFACE_NAME:
            raise ValueError('prefix %r makes interface names of %s longer '
                             'than %d characters' % (self.prefix, longest,
                                                     MAX_INTERFACE_NAME))


def cell_switches(net):
    """Return the cell switches of a network as {cell: switch}."""
    return {switch.params['cell']: switch for switch in net.switches
            if switch.params.get('role') == 'cell'}


def mobile_hosts(net):
    """Return the mobile hosts of a network, in name order."""
    return [host for host in net.hosts if isinstance(host, MobileHost)]


def router_of(net):
    """Return the uplink router of a network."""
    for node in net.values():
        if isinstance(node, UplinkRouter):
            return node
    raise LookupError('the network has no UplinkRouter node')


def openflow_port(intf):
    """Return the OpenFlow port number OVS gave a switch interface."""
    text = run_checked('ovs-vsctl', 'get', 'Interface', str(intf),
                       'ofport').strip()
    port = int(text)
    if port < 1:
        raise RuntimeError('interface %s has no OpenFlow port (ofport %s)'
                           % (intf, text))
    return port


def uplink_ports(net):
    """Return {cell: OpenFlow port of the cell's uplink to the router}."""
    router = router_of(net)
    ports = {}
    for cell, switch in cell_switches(net).items():
        for intf in switch.intfList():
            link = intf.link
            if link is None:
                continue
            peer = link.intf2 if link.intf1 is intf else link.intf1
            if peer.node is router:
                ports[cell] = openflow_port(intf)
    return ports


def controller_config(net, state_file=None, route_optimisation=True,
                      reverse_tunnelling=False, extra=None):
    """Return the controller's ``[tmip]`` config text for a built network.

    Uplink ports are read from OVS, so the network must be started.
    ``extra`` maps further option names to values, written as given.
    """
    uplinks = []
    for cell, port in sorted(uplink_ports(net).items()):
        dpid = int(cell_switches(net)[cell].dpid, 16)
        cell_side, router_side = uplink_addresses(cell)
        uplinks.append('%d:%d:%s/30:%s' % (dpid, port, cell_side,
                                          router_side))
    lines = ['[tmip]',
             '# dpid:port:cell_address/prefix:next_hop, comma separated',
             'uplinks = ' + ', '.join(uplinks),
             'route_optimisation = %s' % str(route_optimisation).lower(),
             'reverse_tunnelling = %s' % str(reverse_tunnelling).lower()]
    if state_file:
        lines.append('state_file = %s' % state_file)
    for name, value in (extra or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        lines.append('%s = %s' % (name, value))
    return '\n'.join(lines) + '\n'


class NameClash(RuntimeError):
    """Error raised when a bridge or interface the topology needs exists."""


def existing_names(topo):
    """Return the bridges and interfaces of ``topo`` that already exist.

    Mininet deletes a bridge or root-namespace interface that has the name
    it is about to create, which would tear down someone else's network.
    """
    names = set()
    in_root = [node for node in topo.nodes()
               if topo.isSwitch(node)
               or topo.nodeInfo(node).get('inNamespace') is False]
    for node in in_root:
        names.add(node)
        for port in topo.ports[node]:
            names.add('%s-eth%d' % (node, port))
    bridges = set(run_checked('ovs-vsctl', 'list-br').split())
    links = set()
    for line in run_checked('ip', '-o', 'link', 'show').splitlines():
        links.add(line.split(':')[1].strip().split('@')[0])
    return sorted(names & (bridges | links))


def build_network(topo, controller_target=None):
    """Build and start a Mininet network of ``topo``; return it.

    The bridges start with no controller: give them one with
    ``attach_controller`` once the controller runs, so that its config can
    name the uplink ports OVS assigned.  Raises NameClash, touching
    nothing, if a bridge or interface of the topology already exists.
    """
    clashes = existing_names(topo)
    if clashes:
        raise NameClash('bridges or interfaces already exist: %s; choose '
                        'another name prefix' % ', '.join(clashes))
    net = Mininet(topo=topo, controller=None, build=False,
                  autoSetMacs=False, waitConnected=False)
    net.build()
    net.start()
    if controller_target:
        attach_controller(net, controller_target)
    return net


def attach_controller(net, target):
    """Point every bridge of ``net`` at ``target`` (``tcp:IP:port``)."""
    for switch in net.switches:
        run_checked('ovs-vsctl', 'set-controller', switch.name, target)
        # Retry a lost connection within a second, not OVS's default 8 s.
        run_checked('ovs-vsctl', 'set', 'controller', switch.name,
                    'max_backoff=1000')


def bridges_connected(net):
    """Tell whether every bridge of ``net`` is connected to a controller."""
    for switch in net.switches:
        state = subprocess.run(
            ['ovs-vsctl', '--columns=is_connected', 'list', 'controller',
             switch.name], capture_output=True, text=True).stdout
        if 'true' not in state:
            return False
    return True


def connection_report(net):
    """Return one line per bridge of ``net``: its controller connection.

    A line reads ``s1: tcp:127.0.0.1:6653 not connected (state=BACKOFF,
    last_error=Connection refused)``.  OVS fills in the state and the last
    error a few seconds after a connection attempt.
    """
    lines = []
    for switch in net.switches:
        listed = subprocess.run(
            ['ovs-vsctl', '--format=json',
             '--columns=target,is_connected,status', 'list', 'controller',
             switch.name], capture_output=True, text=True)
        if listed.returncode != 0:
            lines.append('%s: %s' % (switch.name, listed.stderr.strip()))
            continue
        rows = json.loads(listed.stdout)['data']
        if not rows:
            lines.append('%s: no controller set' % switch.name)
        for target, connected, (_map, status) in rows:
            lines.append('%s: %s %s (%s)' % (
                switch.name, target,
                'connected' if connected else 'not connected',
                ', '.join('%s=%s' % pair for pair in sorted(status))
                or 'no status yet'))
    return '\n'.join(lines)


_ports_handed_out = set()


def _ephemeral_ports_start():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def listen_port(host='0.0.0.0'):
    """Return a TCP port that a server such as ryu-manager may listen on.

    The port lies below the kernel's ephemeral range, from which outgoing
    connections take their local ports, so none of them can take it
    before the server binds it.  It is free on ``host`` now, and this
    process never returns it twice.
    """
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    start = _ephemeral_ports_start()
    low = max(1024, start - 16384)
    if start - low < 1024:
        raise RuntimeError('the ephemeral port range starts at %d, which '
                           'leaves too few ports below it to choose from; '
                           'see /proc/sys/net/ipv4/ip_local_port_range'
                           % start)
    for _attempt in range(200):
        port = random.randrange(low, start)
        if port in _ports_handed_out:
            continue
        with socket.socket(family) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port
    raise RuntimeError('no free TCP port found between %d and %d'
                       % (low, start))


def listening(port):
    """Tell whether a TCP socket of this machine listens on ``port``."""
    port_suffix = ':%04X' % port
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as sockets:
                next(sockets)
                for line in sockets:
                    fields = line.split()
                    # st 0A is TCP_LISTEN.
                    if fields[1].endswith(port_suffix) and fields[3] == '0A':
                        return True
        except OSError:
            continue
    return False


def _node(net, node):
    if not isinstance(node, str):
        return node
    if node not in net:
        raise ValueError('no node named %s' % node)
    return net[node]


def move(net, host, switch, port=None, announce=True):
    """Move ``host``'s link to ``switch``; return the new OpenFlow port.

    The switch side of the host's veth leaves its bridge and joins the
    other one in one OVS transaction, as a cable moved from one socket to
    another.  The host keeps its interface, MAC and IP address, and its
    carrier stays up.  ``host`` and ``switch`` are nodes or names.  A
    host with a ``RadioHub`` keeps its ports: its link to the old switch
    goes down and the one to ``switch`` comes up.

    Without ``port``, a host returning to a switch gets the port it had
    there if that port is free, as a person plugging back into the same
    socket, and otherwise the next free port number.

    With ``announce``, the host then sends one gratuitous ARP for its
    address, as hosts do after a link change.  Without it the host stays
    silent until its own traffic sends a frame, and a host that only
    receives (a TCP receiver) may never send one.
    """
    host = _node(net, host)
    new_switch = _node(net, switch)
    if not isinstance(new_switch, OVSSwitch):
        raise ValueError('%s is not a switch' % new_switch)
    host_intf = host.defaultIntf()
    link = host_intf.link
    if link is None:
        raise ValueError('%s has no link to move' % host)
    switch_intf = link.intf2 if link.intf1 is host_intf else link.intf1
    if isinstance(switch_intf.node, RadioHub):
        return _move_radio_link(switch_intf.node, host, new_switch, port,
                                announce)
    old_switch = switch_intf.node
    if old_switch is new_switch:
        return old_switch.ports[switch_intf]

    previous_ports = getattr(switch_intf, 'previous_ports', {})
    if port is None:
        port = previous_ports.get(new_switch.name)
        if port is None or port in new_switch.intfs:
            port = new_switch.newPort()
    elif port in new_switch.intfs:
        raise ValueError('port %d of %s is in use by %s'
                         % (port, new_switch, new_switch.intfs[port]))
    run_checked('ovs-vsctl', 'del-port', old_switch.name, switch_intf.name,
                '--', 'add-port', new_switch.name, switch_intf.name,
                '--', 'set', 'Interface', switch_intf.name,
                'ofport_request=%d' % port)

    # Mininet's own records of which node owns the interface.
    old_port = old_switch.ports.pop(switch_intf)
    previous_ports[old_switch.name] = old_port
    switch_intf.previous_ports = previous_ports
    del old_switch.intfs[old_port]
    del old_switch.nameToIntf[switch_intf.name]
    new_switch.intfs[port] = switch_intf
    new_switch.ports[switch_intf] = port
    new_switch.nameToIntf[switch_intf.name] = switch_intf
    switch_intf.node = new_switch

    # The host announces itself first, as a host does when its link comes
    # back; checking the port number costs another ovs-vsctl call.
    if announce:
        send_announcement(host)
    actual = openflow_port(switch_intf)
    if actual != port:
        raise RuntimeError('OVS gave %s port %d on %s, not %d'
                           % (switch_intf, actual, new_switch, port))
    return port


def _move_radio_link(hub, host, switch, port, announce):
    _intf, switch_intf = hub.cell_links().get(switch, (None, None))
    if switch_intf is None:
        raise ValueError('%s has no link to %s' % (host, switch))
    fixed = switch.ports[switch_intf]
    if port is not None and port != fixed:
        raise ValueError('%s reaches %s at port %d only, not %d'
                         % (host, switch, fixed, port))
    if hub.active_switch() is not switch:
        hub.switch_to(switch)
        if announce:
            send_announcement(host)
    return fixed


_CLONE_NEWNET = 0x40000000
_SIOCGIFADDR = 0x8915
_SIOCGIFHWADDR = 0x8927
_ETH_P_ARP = 0x0806
# struct ifreq with a struct sockaddr in its union: the family, then the
# address bytes (an IPv4 address after a 2-byte port, or a MAC).
_IFREQ_ADDRESS = struct.Struct('16sH14s8x')


def _in_namespace_of(pid, make):
    """Call ``make()`` in the network namespace of process ``pid``.

    Only the calling thread changes namespace, and it returns to its own
    before this function does.  Sockets made there stay in that
    namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        other = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
        try:
            if libc.setns(other, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), 'setns to the network '
                              'namespace of pid %d failed' % pid)
            try:
                return make()
            finally:
                if libc.setns(own, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns back to this '
                                  'process\'s network namespace failed')
        finally:
            os.close(other)
    finally:
        os.close(own)


def _announcement_sockets(host, intf):
    """Return (packet socket on ``intf``, IPv4 socket) in the host."""
    sockets = getattr(host, 'announcement_sockets', None)
    if sockets is None or sockets[0].fileno() < 0:
        def make():
            packets = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                    socket.htons(_ETH_P_ARP))
            packets.bind((intf, _ETH_P_ARP))
            return packets, socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets = _in_namespace_of(host.pid, make)
        host.announcement_sockets = sockets
    return sockets


def close_announcement_sockets(host):
    """Close the sockets ``send_announcement`` keeps for a host."""
    for sock in getattr(host, 'announcement_sockets', None) or ():
        sock.close()
    host.announcement_sockets = None


def send_announcement(host):
    """Send one gratuitous ARP for the host's address; False if it has none.

    The frame is an ARP announcement (RFC 5227): a broadcast request whose
    sender and target address are both the host's own.  It leaves from a
    raw socket that this process keeps in the host's namespace, within a
    millisecond and with no change to the host's state.  arping took 30
    to 45 ms to load its libraries and open its capture.
    """
    intf = host.defaultIntf().name
    packets, inet = _announcement_sockets(host, intf)
    request = _IFREQ_ADDRESS.pack(intf.encode(), 0, b'')
    try:
        address = _IFREQ_ADDRESS.unpack(
            fcntl.ioctl(inet, _SIOCGIFADDR, request))[2][2:6]
    except OSError as error:
        if error.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    mac = _IFREQ_ADDRESS.unpack(
        fcntl.ioctl(inet, _SIOCGIFHWADDR, request))[2][:6]
    frame = (b'\xff' * 6 + mac + struct.pack('!H', _ETH_P_ARP)
             + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1)
             + mac + address + b'\x00' * 6 + address)
    packets.send(frame.ljust(60, b'\x00'))
    return True


def switch_of(host):
    """Return the switch a host's link is attached to now."""
    return attachment(host)[0]


def attachment(host):
    """Return (switch, OpenFlow port) where a host's link is attached.

    For a host with a ``RadioHub``, that is where its active link leads,
    or (None, None) while no link is up.
    """
    link = host.defaultIntf().link
    peer = link.intf2 if link.intf1 is host.defaultIntf() else link.intf1
    if isinstance(peer.node, RadioHub):
        switch = peer.node.active_switch()
        if switch is None:
            return None, None
        peer = peer.node.cell_links()[switch][1]
    return peer.node, peer.node.ports[peer]


_default_run_dir = []


def default_run_dir():
    """Return a run directory for networks built by ``mn``, made once."""
    if not _default_run_dir:
        _default_run_dir.append(tempfile.mkdtemp(prefix='tmip-mn-'))
    return _default_run_dir[0]


class TmipCLI(MininetCLI):
    """Mininet's CLI with commands to move hosts and run DHCP clients."""

    run_dir = None

    def _run_dir(self):
        return self.run_dir or default_run_dir()

    def do_move(self, line):
        """move HOST SWITCH [silent]: move HOST's link to SWITCH.

        The host announces itself with a gratuitous ARP unless ``silent``
        is given, e.g. ``move h1 s2`` or ``move h1 s2 silent``.
        """
        args = line.split()
        if len(args) not in (2, 3) or args[2:] not in ([], ['silent']):
            log_error('usage: move HOST SWITCH [silent]\n')
            return
        try:
            port = move(self.mn, args[0], args[1],
                        announce=args[2:] != ['silent'])
        except (ValueError, RuntimeError) as problem:
            log_error('move %s %s failed: %s\n' % (args[0], args[1],
                                                    problem))
            return
        log_output('%s is now on %s port %d\n' % (args[0], args[1], port))

    def do_dhcp(self, line):
        """dhcp [HOST...]: start the DHCP client of mobile hosts."""
        names = line.split()
        try:
            hosts = ([self.mn[name] for name in names] if names
                     else mobile_hosts(self.mn))
        except KeyError as problem:
            log_error('dhcp: no host %s\n' % problem)
            return
        for host in hosts:
            if not isinstance(host, MobileHost):
                log_error('dhcp: %s is not a mobile host\n' % host)
                continue
            client = host.start_dhcp(self._run_dir())
            log_output('%s: %s running (log %s)\n' % (host, client.name,
                                                     client.log_path))

    def do_leases(self, _line):
        """leases: show each mobile host's address, router and switch."""
        for host in mobile_hosts(self.mn):
            state = tmip_dhcp.ipv4_state(host, host.defaultIntf().name)
            log_output('%-8s %-17s %-18s router %-15s on %s\n' % (
                host.name, host.MAC(), state['interface'] or '-',
                state['router'] or '-', switch_of(host)))

    def do_tmipconf(self, line):
        """tmipconf [FILE]: print or write the controller's config."""
        text = controller_config(self.mn)
        if not line.strip():
            log_output(text)
            return
        with open(line.strip(), 'w') as config_file:
            config_file.write(text)
        log_output('wrote %s\n' % line.strip())


# Names ``mn --custom`` reads: the topology, and the CLI class it opens.
topos = {'tmip': TmipTopo}
CLI = TmipCLI

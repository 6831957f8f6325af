"""Open vSwitch forwards packets the way the walker predicts.

Each test loads a golden file from tests/golden into a fresh bridge (no
controller, fail_mode=secure) and compares `ovs-appctl ofproto/trace`
with Walker.cross() for packets of every kind the switch handles: the
output port, the rewritten headers, MPLS push, pop and switching, and
ARP replies.  A packet whose label is popped recirculates in OVS, so the
test traces the second pass with the recirc_id that the first pass
printed.  Other tests read the flows back over OpenFlow as the
controller does, and let a namespace host's kernel resolve its gateway
through the bridge alone.
"""

import collections
import itertools
import os
import re
import socket
import struct

import pytest
from ryu.ofproto import ofproto_parser

from openflow_rules import (
    PACKET_IN_METER_ID, PACKET_IN_RATE_PPS, Kind, PortRole, cookie_for,
    describe_cookie, desired_flows, host_cookie, is_tmip_cookie,
    label_for_cell)
from openflow_rules.scenarios import golden_scenarios
from openflow_rules.walker import (
    CONTROLLER, DROP, Walker, arp_packet, dhcp_packet, ipv4_packet,
    mpls_packet)
from support.fake_switch import FakeDatapath
from support.netns import Host, wait_until
from support.ovs import dump_flows, run
from tmip_ryu.ofp_render import flow_from_stats

pytestmark = pytest.mark.integration

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'golden')
INTERNET = '203.0.113.9'
_bridge_numbers = itertools.count()


class GoldenBridge:
    """A bridge holding one switch's golden flows, with its ports.

    Every port is an internal port unless host_links names an existing
    interface (a host's veth end, say) to plug in at that port number.
    """

    def __init__(self, scenario, dpid, host_links=None):
        self.network = golden_scenarios()[scenario]
        self.dpid = dpid
        self.name = 'rtf%d%02d' % (os.getpid() % 10000, next(_bridge_numbers))
        self.golden_path = os.path.join(GOLDEN_DIR, scenario,
                                        'switch%d.ofctl' % dpid)
        self.host_links = dict(host_links or {})
        self.datapath_ports = {}

    def create(self):
        """Create the bridge, its ports and meter, and load the flows."""
        run('ovs-vsctl', 'add-br', self.name, '--', 'set', 'bridge',
            self.name, 'datapath_type=netdev',
            'protocols=OpenFlow13,OpenFlow14', 'fail_mode=secure')
        for port in sorted(self.network.switches[self.dpid].ports):
            interface = self.host_links.get(port)
            if interface is not None:
                run('ovs-vsctl', 'add-port', self.name, interface, '--',
                    'set', 'interface', interface,
                    'ofport_request=%d' % port)
                continue
            interface = '%sp%d' % (self.name, port)
            run('ovs-vsctl', 'add-port', self.name, interface, '--', 'set',
                'interface', interface, 'type=internal',
                'ofport_request=%d' % port)
        run('ovs-ofctl', '-O', 'OpenFlow13', 'add-meter', self.name,
            'meter=%d,pktps,band=type=drop,rate=%d'
            % (PACKET_IN_METER_ID, PACKET_IN_RATE_PPS))
        run('ovs-ofctl', '-O', 'OpenFlow13', 'add-flows', self.name,
            self.golden_path)
        self._read_datapath_ports()
        return self

    def remove(self):
        run('ovs-vsctl', '--if-exists', 'del-br', self.name, check=False)

    def _read_datapath_ports(self):
        text = run('ovs-appctl', 'dpif/show')
        pattern = re.compile(r'^\s+%sp(\d+) (\d+)/(\d+):' % self.name)
        for line in text.splitlines():
            found = pattern.match(line)
            if found:
                self.datapath_ports[int(found.group(3))] = \
                    int(found.group(2))

    def trace(self, packet):
        """Trace a packet through the bridge and return a Trace."""
        text = run('ovs-appctl', 'ofproto/trace', self.name,
                   _flow_text(packet))
        actions = _datapath_actions(text)
        recirc = re.search(r'recirc\((0x[0-9a-f]+)\)', actions)
        popped = recirc is not None and 'pop_mpls' in actions
        if popped:
            inner = dict(packet, eth_type=0x0800)
            del inner['mpls']
            text = run('ovs-appctl', 'ofproto/trace', self.name,
                       'recirc_id=%s,%s' % (recirc.group(1),
                                            _flow_text(inner)))
            actions = _datapath_actions(text)
        outputs = [int(action) for action in _top_level(actions)
                   if action.isdigit()]
        port = self.datapath_ports[outputs[-1]] if outputs else None
        return Trace(actions, port, _final_headers(text), popped)


Trace = collections.namedtuple('Trace', 'actions port headers popped')


_ARP_FIELDS = ('arp_op', 'arp_sha', 'arp_spa', 'arp_tha', 'arp_tpa')
# ofproto/trace accepts udp_src and udp_dst only after the udp keyword.
_PROTOCOL_KEYWORDS = {1: 'icmp', 6: 'tcp', 17: 'udp'}


def _flow_text(packet):
    parts = ['in_port=%d' % packet['in_port'],
             'dl_src=%s' % packet['eth_src'],
             'dl_dst=%s' % packet['eth_dst']]
    if packet['eth_type'] == 0x0806:
        parts += ['arp'] + ['%s=%s' % (field, packet[field])
                            for field in _ARP_FIELDS]
    elif packet['eth_type'] == 0x8847:
        parts += ['mpls', 'mpls_label=%d' % packet['mpls'][0],
                  'mpls_ttl=64', 'mpls_bos=1']
    else:
        keyword = _PROTOCOL_KEYWORDS.get(packet['ip_proto'])
        parts += [keyword] if keyword else [
            'ip', 'nw_proto=%d' % packet['ip_proto']]
        parts += ['nw_src=%s' % packet['ipv4_src'],
                  'nw_dst=%s' % packet['ipv4_dst'],
                  'nw_ttl=%d' % packet['ip_ttl']]
        if 'udp_dst' in packet:
            parts += ['udp_src=%d' % packet['udp_src'],
                      'udp_dst=%d' % packet['udp_dst']]
    return ','.join(parts)


def _datapath_actions(trace_text):
    for line in trace_text.splitlines():
        if line.startswith('Datapath actions: '):
            return line[len('Datapath actions: '):].strip()
    raise AssertionError('no datapath actions in trace:\n' + trace_text)


def _top_level(actions):
    """Split datapath actions at the commas outside parentheses."""
    parts, depth, current = [], 0, ''
    for char in actions:
        if char == ',' and depth == 0:
            parts.append(current)
            current = ''
            continue
        depth += (char == '(') - (char == ')')
        current += char
    return parts + [current]


def _final_headers(trace_text):
    for line in trace_text.splitlines():
        if line.startswith('Final flow: '):
            body = line[len('Final flow: '):]
            if body.strip() == 'unchanged':
                return {}
            return dict(item.split('=', 1) for item in body.split(',')
                        if '=' in item)
    return {}


def _packets(network, dpid):
    """Return test packets for every kind of traffic switch dpid handles."""
    switch = network.switches[dpid]
    hosts = list(network.hosts.values())
    packets = []
    for host in hosts:
        if host.dpid != dpid:
            continue
        for destination in [other.address for other in hosts
                            if other is not host] + [INTERNET]:
            packets.append(ipv4_packet(host.port, host.mac, host.address,
                                       destination))
        packets += [
            ipv4_packet(host.port, host.mac, '10.9.9.9', INTERNET),
            ipv4_packet(host.port, host.mac, host.address, host.gateway,
                        ip_proto=1),
            dhcp_packet(host.port, host.mac),
        ]
        packets += _arp_requests(network, host)
    for port in switch.ports_with_role(PortRole.ACCESS):
        packets.append(ipv4_packet(port, 'aa:00:00:00:77:77', '10.7.0.2',
                                   INTERNET))
    for port in switch.ports_with_role(PortRole.CORE):
        for other in network.switches.values():
            destinations = [INTERNET]
            if other.dpid == dpid:
                destinations += [host.address for host in hosts]
            for destination in destinations:
                inner = ipv4_packet(port, 'aa:00:00:00:99:99', '10.99.0.2',
                                    destination)
                packets.append(mpls_packet(port, label_for_cell(other.cell),
                                           inner))
    for uplink in network.uplinks:
        if uplink.dpid == dpid:
            for destination in [host.address for host in hosts] + \
                    ['198.18.0.1']:
                packets.append(ipv4_packet(uplink.port, '0e:00:00:00:00:99',
                                           INTERNET, destination))
    return packets


def _arp_requests(network, host):
    """Return ARP requests from a host's port, for the switch or controller."""
    gateway_mac = network.settings.gateway_mac
    others = [other.address for other in network.hosts.values()
              if other is not host]
    return [
        arp_packet(host.port, host.mac, host.address, host.gateway),
        arp_packet(host.port, host.mac, host.address, host.gateway,
                   eth_dst=gateway_mac, arp_tha=gateway_mac),
        arp_packet(host.port, host.mac, '0.0.0.0', host.gateway),
        arp_packet(host.port, host.mac, '0.0.0.0', host.address),
        arp_packet(host.port, host.mac, host.address, host.address),
        arp_packet(host.port, host.mac, host.address, INTERNET),
        arp_packet(host.port, host.mac, host.address, host.gateway,
                   arp_sha='aa:00:00:00:77:77'),
        arp_packet(host.port, 'aa:00:00:00:77:77', host.address,
                   host.gateway),
    ] + [arp_packet(host.port, host.mac, host.address, address)
         for address in others]


@pytest.fixture
def golden_bridge():
    """Create golden bridges for one test and delete exactly those after."""
    created = []

    def create(scenario, dpid, host_links=None):
        bridge = GoldenBridge(scenario, dpid, host_links)
        created.append(bridge)
        return bridge.create()

    yield create
    for bridge in created:
        bridge.remove()


def _cases():
    for name, network in sorted(golden_scenarios().items()):
        for dpid in sorted(network.switches):
            yield name, dpid


CASES = list(_cases())
IDS = ['%s-switch%d' % case for case in CASES]


@pytest.mark.parametrize('scenario, dpid', CASES, ids=IDS)
def test_ovs_loads_every_golden_flow(golden_bridge, scenario, dpid):
    bridge = golden_bridge(scenario, dpid)
    expected = sorted((flow.table, flow.priority, flow.cookie)
                      for flow in desired_flows(dpid, bridge.network))

    loaded = []
    for line in dump_flows(bridge.name):
        cookie = int(re.search(r'cookie=(0x[0-9a-f]+)', line).group(1), 16)
        table = re.search(r'table=(\d+)', line)
        priority = int(re.search(r'priority=(\d+)', line).group(1))
        loaded.append((int(table.group(1)) if table else 0, priority,
                       cookie))

    assert sorted(loaded) == expected


@pytest.mark.parametrize('scenario, dpid', CASES, ids=IDS)
def test_ovs_forwards_like_the_walker(golden_bridge, scenario, dpid):
    bridge = golden_bridge(scenario, dpid)
    walker = Walker(bridge.network)
    for packet in _packets(bridge.network, dpid):
        expected = walker.cross(packet, dpid)

        trace = bridge.trace(packet)

        context = '%s: walker %s %s, OVS %s' % (
            _flow_text(packet), expected.outcome, expected.port,
            trace.actions)
        if expected.outcome == DROP:
            assert trace.actions == 'drop', context
            continue
        if expected.outcome == CONTROLLER:
            assert 'controller(' in trace.actions, context
            assert 'meter(' in trace.actions, context
            continue
        headers = dict(_headers_of(packet), **trace.headers)
        assert trace.port == expected.port, context
        assert headers['dl_src'] == expected.packet['eth_src'], context
        assert headers['dl_dst'] == expected.packet['eth_dst'], context
        if packet['eth_type'] == 0x0806:
            for field in _ARP_FIELDS:
                assert headers[field] == str(expected.packet[field]), \
                    context
        elif 'mpls' in expected.packet:
            assert int(headers['mpls_label']) == \
                expected.packet['mpls'][0], context
        else:
            assert trace.popped == ('mpls' in packet), context
            assert int(headers['nw_ttl']) == expected.packet['ip_ttl'], \
                context


def _headers_of(packet):
    """Return a packet's headers under the names OVS prints."""
    headers = {'dl_src': packet['eth_src'], 'dl_dst': packet['eth_dst']}
    if packet['eth_type'] == 0x0806:
        headers.update((field, str(packet[field])) for field in _ARP_FIELDS)
    if 'mpls' in packet:
        headers['mpls_label'] = packet['mpls'][0]
    if 'ip_ttl' in packet:
        headers['nw_ttl'] = packet['ip_ttl']
    return headers


def test_host_cookie_deletes_exactly_one_hosts_flows(golden_bridge):
    bridge = golden_bridge('star_roaming', 2)
    mac = 'aa:00:00:00:01:00'
    cookie, mask = host_cookie(mac)
    owned = [flow for flow in desired_flows(2, bridge.network)
             if describe_cookie(flow.cookie).owner == mac]
    selector = '0x%x/0x%x' % (cookie, mask)
    total = len(dump_flows(bridge.name))

    shown = dump_flows(bridge.name, selector)
    run('ovs-ofctl', '-O', 'OpenFlow13', 'del-flows', bridge.name,
        'cookie=%s' % selector)

    assert len(shown) == len(owned)
    assert len(dump_flows(bridge.name)) == total - len(owned)
    assert dump_flows(bridge.name, selector) == []


def test_ovs_replies_to_gateway_arp(golden_bridge):
    bridge = golden_bridge('star_roaming', 2)
    host = bridge.network.hosts['aa:00:00:00:01:00']
    gateway_mac = bridge.network.settings.gateway_mac

    trace = bridge.trace(arp_packet(host.port, host.mac, host.address,
                                    host.gateway))

    assert 'controller(' not in trace.actions
    assert trace.port == host.port
    assert trace.headers['dl_src'] == gateway_mac
    assert trace.headers['dl_dst'] == host.mac
    assert trace.headers['arp_op'] == '2'
    assert trace.headers['arp_sha'] == gateway_mac
    assert trace.headers['arp_spa'] == host.gateway
    assert trace.headers['arp_tha'] == host.mac
    assert trace.headers['arp_tpa'] == host.address


def test_ovs_sends_probe_and_move_to_controller(golden_bridge):
    # The roaming host is at switch 2.  Switch 1, its home, must not reply
    # to it, because its first frame there starts a hand-over.
    home = golden_bridge('star_roaming', 1)
    current = golden_bridge('star_roaming', 2)
    host = current.network.hosts['aa:00:00:00:01:00']
    probe = arp_packet(host.port, host.mac, '0.0.0.0', host.gateway)
    moved = arp_packet(1, host.mac, host.address, host.gateway)

    for bridge, packet in ((current, probe), (home, moved)):
        trace = bridge.trace(packet)

        assert 'controller(' in trace.actions, trace.actions
        assert trace.headers == {}, trace.headers


_OVS_RUNDIR = os.environ.get('OVS_RUNDIR', '/var/run/openvswitch')
_OFPT_ECHO_REQUEST = 2
_OFPT_ECHO_REPLY = 3
_OFPT_MULTIPART_REPLY = 19


def _receive(sock):
    """Return (version, type, length, xid, bytes) of one OpenFlow message."""
    header = b''
    while len(header) < 8:
        chunk = sock.recv(8 - len(header))
        if not chunk:
            raise ConnectionError('switch closed the OpenFlow connection')
        header += chunk
    version, msg_type, length, xid = struct.unpack('!BBHI', header)
    body = b''
    while len(body) < length - 8:
        chunk = sock.recv(length - 8 - len(body))
        if not chunk:
            raise ConnectionError('switch closed the OpenFlow connection')
        body += chunk
    return version, msg_type, length, xid, header + body


def _flow_stats_over_openflow(bridge_name, version):
    """Return a bridge's flow stats entries, read with Ryu's parser.

    The test speaks OpenFlow to the bridge's management socket, the way
    ovs-ofctl does, so the entries are what OVS reports to a controller.
    """
    datapath = FakeDatapath(0, version)
    parser = datapath.ofproto_parser
    ofproto = datapath.ofproto
    hello = parser.OFPHello(datapath)
    request = parser.OFPFlowStatsRequest(
        datapath, 0, ofproto.OFPTT_ALL, ofproto.OFPP_ANY, ofproto.OFPG_ANY,
        0, 0, parser.OFPMatch())
    datapath.send_msg(hello)
    datapath.send_msg(request)
    entries = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.path.join(_OVS_RUNDIR, '%s.mgmt' % bridge_name))
        sock.sendall(bytes(hello.buf) + bytes(request.buf))
        while True:
            msg_version, msg_type, length, xid, data = _receive(sock)
            if msg_type == _OFPT_ECHO_REQUEST:
                sock.sendall(struct.pack('!BBHI', msg_version,
                                         _OFPT_ECHO_REPLY, length, xid)
                             + data[8:])
                continue
            if msg_type != _OFPT_MULTIPART_REPLY or xid != request.xid:
                continue
            reply = ofproto_parser.msg(datapath, msg_version, msg_type,
                                       length, xid, data)
            entries.extend(reply.body)
            if not reply.flags & ofproto.OFPMPF_REPLY_MORE:
                return datapath, entries


@pytest.mark.parametrize('version', (0x04, 0x05), ids=['of13', 'of14'])
@pytest.mark.parametrize('scenario, dpid', CASES, ids=IDS)
def test_flows_read_back_from_ovs_equal_rules(golden_bridge, scenario,
                                              dpid, version):
    # Reconciliation after a reconnect compares these with the rules'
    # flows, so any difference would be rewritten on every reconnect.
    bridge = golden_bridge(scenario, dpid)

    datapath, entries = _flow_stats_over_openflow(bridge.name, version)

    read_back = {flow_from_stats(datapath.ofproto, entry)
                 for entry in entries if is_tmip_cookie(entry.cookie)}
    assert read_back == desired_flows(dpid, bridge.network)


def test_namespace_host_resolves_gateway_without_controller(golden_bridge,
                                                            tmp_path):
    network = golden_scenarios()['star_home']
    placement = network.hosts['aa:00:00:00:01:00']
    name = 'rta%d%02d' % (os.getpid() % 10000, next(_bridge_numbers))
    host = None
    try:
        host = Host(name, placement.mac, str(tmp_path))
        bridge = golden_bridge('star_home', placement.dpid,
                               host_links={placement.port: host.outside})
        host.bridge = bridge.name
        host.ns('ip', 'addr', 'add', '%s/30' % placement.address, 'dev',
                host.intf)
        cookie = '0x%x/-1' % cookie_for(Kind.ARP_REPLY, placement.mac)

        # The bridge has no controller, so only the switch can reply.  The
        # ping itself gets no reply, because pings to the gateway go to
        # the controller.  It only makes the kernel send ARP requests.
        host.ns('ping', '-c', '1', '-W', '1', placement.gateway,
                check=False)
        resolved = wait_until(lambda: 'lladdr' in host.ns(
            'ip', 'neigh', 'show', placement.gateway, 'dev', host.intf), 5)

        entry = host.ns('ip', 'neigh', 'show', placement.gateway, 'dev',
                        host.intf)
        assert resolved, entry
        assert 'lladdr %s' % network.settings.gateway_mac in entry
        [flow] = run('ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                     bridge.name, 'cookie=%s' % cookie).splitlines()[1:]
        assert int(re.search(r'n_packets=(\d+)', flow).group(1)) >= 1
    finally:
        if host is not None:
            host.remove()

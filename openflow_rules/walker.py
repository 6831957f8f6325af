"""Follow a packet through the flow tables of every switch of a network.

The Walker applies OpenFlow 1.3 semantics to plain Flow data.  In each
table the matching flow with the highest priority wins.  Two matching
flows of equal priority raise AmbiguousMatch, because OpenFlow leaves
that case undefined.  Apply-actions run in order and goto_table
continues the pipeline.  An output to a core port continues at the peer
switch, with in_port set to the peer's port.  The walk ends where the
packet leaves the network: at a host port, an uplink, the controller, or
a drop.  It also ends when the packet reaches a switch in a state it had
there before, which is a loop.

Packets are dicts of header fields: in_port, eth_src, eth_dst, eth_type,
ipv4_src, ipv4_dst, ip_proto, ip_ttl, udp_src, udp_dst, arp_op, arp_sha,
arp_spa, arp_tha, arp_tpa, and mpls (the label stack, outermost first)
while eth_type is MPLS.
"""

import dataclasses
import functools
import ipaddress
import typing

from openflow_rules.constants import (
    ARP_OP_REQUEST, ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_MPLS,
    GATEWAY_MAC_DEFAULT, IP_PROTO_UDP)
from openflow_rules.network import PortRole
from openflow_rules.pipeline import all_desired_flows

HOST = 'host'
UPLINK = 'uplink'
CONTROLLER = 'controller'
DROP = 'drop'
LOOP = 'loop'
# Only in SwitchResult: the packet leaves by a core port.
CORE = 'core'

_IPV4_FIELDS = frozenset(('ipv4_src', 'ipv4_dst', 'ip_proto', 'ip_ttl'))
_UDP_FIELDS = frozenset(('udp_src', 'udp_dst'))
_ARP_FIELDS = frozenset(('arp_op', 'arp_sha', 'arp_spa', 'arp_tha',
                         'arp_tpa'))
BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'
UNKNOWN_MAC = '00:00:00:00:00:00'


class WalkError(Exception):
    """The flows do something the walker cannot follow or OpenFlow forbids.

    Examples: dec_ttl on a packet that is not IPv4, pop_mpls on a packet
    without a label, set_field arp_op on a packet that is not ARP, or a
    flow that outputs a packet more than once.
    """


class AmbiguousMatch(WalkError):
    """Two different flows of equal priority match one packet."""


@dataclasses.dataclass(frozen=True)
class WalkResult:
    """End of a packet's walk: outcome, place, headers and path.

    outcome is HOST, UPLINK, CONTROLLER, DROP or LOOP.  dpid and port give
    the place (port is None for CONTROLLER and DROP).  path lists the
    switches crossed in order, and hits the (dpid, flow) pairs applied.
    """

    outcome: str
    dpid: int
    port: typing.Optional[int]
    packet: dict
    path: tuple
    hits: tuple
    reason: str = ''

    def __str__(self):
        where = 'switch %d' % self.dpid
        if self.port is not None:
            where += ' port %d' % self.port
        text = '%s at %s via %s' % (self.outcome, where,
                                    ' -> '.join(map(str, self.path)))
        if self.reason:
            text += ' (%s)' % self.reason
        return text


@dataclasses.dataclass(frozen=True)
class SwitchResult:
    """Outcome, output port and headers of a packet after one switch.

    outcome is HOST, UPLINK, CORE, CONTROLLER or DROP.  port is the
    output port (None for CONTROLLER and DROP).
    """

    outcome: str
    port: typing.Optional[int]
    packet: dict
    hits: tuple
    reason: str = ''


@functools.lru_cache(maxsize=65536)
def _ipv4_int(text):
    return int(ipaddress.IPv4Address(text))


def _visible(packet, field):
    """Return a header field as a match reads it, or None if absent."""
    eth_type = packet.get('eth_type')
    if field == 'mpls_label':
        stack = packet.get('mpls')
        return stack[0] if eth_type == ETH_TYPE_MPLS and stack else None
    if field in _IPV4_FIELDS or field in _UDP_FIELDS:
        if eth_type != ETH_TYPE_IPV4:
            return None
        if field in _UDP_FIELDS and packet.get('ip_proto') != IP_PROTO_UDP:
            return None
    if field in _ARP_FIELDS and eth_type != ETH_TYPE_ARP:
        return None
    return packet.get(field)


def _field_matches(packet, field, value):
    actual = _visible(packet, field)
    if actual is None:
        return False
    if isinstance(value, tuple):
        address, mask = value
        mask_bits = _ipv4_int(mask)
        return _ipv4_int(actual) & mask_bits == _ipv4_int(address)
    return actual == value


def flow_matches(flow, packet):
    """Tell whether a flow's match selects a packet."""
    return all(_field_matches(packet, field, value)
               for field, value in flow.match)


def _frozen(packet):
    return tuple(sorted(packet.items()))


class Walker:
    """Walks packets through given flow tables over a network's topology.

    flows maps each dpid to its flows.  By default every switch has its
    desired_flows.  Passing other flows lets a test walk the mixed tables
    of a half-applied plan.
    """

    def __init__(self, network, flows=None, max_hops=64):
        self.network = network
        self.max_hops = max_hops
        if flows is None:
            flows = all_desired_flows(network)
        self._tables = {}
        for dpid, switch_flows in flows.items():
            tables = {}
            for flow in switch_flows:
                tables.setdefault(flow.table, []).append(flow)
            for table_flows in tables.values():
                table_flows.sort(key=lambda flow: -flow.priority)
            self._tables[dpid] = tables
        self._peers = {(link.src_dpid, link.src_port):
                       (link.dst_dpid, link.dst_port)
                       for link in network.links}

    def lookup(self, dpid, table, packet):
        """Return the flow of a table that a packet hits, or None."""
        winner = None
        for flow in self._tables.get(dpid, {}).get(table, ()):
            if winner is not None and flow.priority < winner.priority:
                break
            if not flow_matches(flow, packet):
                continue
            if winner is None:
                winner = flow
            elif flow != winner:
                raise AmbiguousMatch(
                    'switch %d table %d: %r and %r both match %r at '
                    'priority %d' % (dpid, table, winner, flow, packet,
                                     flow.priority))
        return winner

    def cross(self, packet, dpid):
        """Return what switch dpid alone does with a packet."""
        if 'in_port' not in packet:
            raise ValueError('packet %r has no in_port' % (packet,))
        if dpid not in self.network.switches:
            raise ValueError('switch %d is not in the network' % dpid)
        packet = dict(packet)
        hits = []
        outcome, port, reason = self._through_switch(dpid, packet, hits)
        return SwitchResult(outcome, port, packet, tuple(hits), reason)

    def walk(self, packet, dpid):
        """Follow a packet that arrives at switch dpid to where it leaves.

        Returns a WalkResult.  packet must contain in_port, and the walker
        works on a copy.
        """
        if 'in_port' not in packet:
            raise ValueError('packet %r has no in_port' % (packet,))
        if dpid not in self.network.switches:
            raise ValueError('switch %d is not in the network' % dpid)
        packet = dict(packet)
        path = [dpid]
        hits = []
        seen = set()
        while True:
            state = (dpid, _frozen(packet))
            if state in seen:
                return self._result(LOOP, dpid, None, packet, path, hits,
                                    'packet came back to switch %d' % dpid)
            if len(path) > self.max_hops:
                return self._result(LOOP, dpid, None, packet, path, hits,
                                    'more than %d hops' % self.max_hops)
            seen.add(state)
            outcome, port, reason = self._through_switch(dpid, packet, hits)
            if outcome == CORE and (dpid, port) in self._peers:
                dpid, packet['in_port'] = self._peers[(dpid, port)]
                path.append(dpid)
                continue
            if outcome == CORE:
                outcome, port, reason = DROP, None, (
                    'core port %d of switch %d has no link' % (port, dpid))
            return self._result(outcome, dpid, port, packet, path, hits,
                                reason)

    @staticmethod
    def _result(outcome, dpid, port, packet, path, hits, reason):
        return WalkResult(outcome, dpid, port, packet, tuple(path),
                          tuple(hits), reason)

    def _through_switch(self, dpid, packet, hits):
        """Run the pipeline of one switch on packet, in place.

        Returns (outcome, port, reason).
        """
        table = 0
        while True:
            flow = self.lookup(dpid, table, packet)
            if flow is None:
                return DROP, None, 'no flow in table %d' % table
            hits.append((dpid, flow))
            goto, outputs, drop_reason = _apply(flow, packet)
            if drop_reason:
                return DROP, None, drop_reason
            if len(outputs) + (goto is not None) > 1:
                raise WalkError('switch %d: %r sends the packet more than '
                                'one way' % (dpid, flow))
            if outputs:
                return self._output(dpid, outputs[0], packet)
            if goto is None:
                return DROP, None, 'dropped by table %d priority %d' % (
                    table, flow.priority)
            table = goto

    def _output(self, dpid, port, packet):
        if port == 'CONTROLLER':
            return CONTROLLER, None, ''
        if port == 'IN_PORT':
            port = packet['in_port']
        elif port == packet['in_port']:
            return DROP, None, ('output to the ingress port %d is dropped '
                                'unless it is IN_PORT' % port)
        role = self.network.switches[dpid].ports.get(port)
        if role == PortRole.ACCESS:
            return HOST, port, ''
        if role == PortRole.UPLINK:
            return UPLINK, port, ''
        if role == PortRole.CORE:
            return CORE, port, ''
        return DROP, None, 'port %d of switch %d does not exist' % (
            port, dpid)


def _apply(flow, packet):
    """Apply a flow's actions to packet in place.

    Returns (goto table or None, output ports, drop reason or '').
    """
    goto = None
    outputs = []
    for action in flow.actions:
        name = action[0]
        if name == 'goto_table':
            goto = action[1]
        elif name == 'output':
            outputs.append(action[1])
        elif name == 'set_field':
            _set_field(packet, action[1], action[2])
        elif name == 'dec_ttl':
            if packet.get('eth_type') != ETH_TYPE_IPV4:
                raise WalkError('dec_ttl on a packet that is not IPv4: %r'
                                % (packet,))
            if packet.get('ip_ttl', 64) <= 1:
                return goto, outputs, 'IPv4 TTL expired'
            packet['ip_ttl'] = packet.get('ip_ttl', 64) - 1
        elif name == 'push_mpls':
            packet['mpls'] = (0,) + tuple(packet.get('mpls', ()))
            packet['eth_type'] = ETH_TYPE_MPLS
        elif name == 'pop_mpls':
            _pop_mpls(packet, action[1])
    return goto, outputs, ''


def _set_field(packet, field, value):
    if field == 'mpls_label':
        stack = packet.get('mpls')
        if not stack:
            raise WalkError('set_field mpls_label on a packet without a '
                            'label: %r' % (packet,))
        packet['mpls'] = (value,) + stack[1:]
    elif field in _ARP_FIELDS and packet.get('eth_type') != ETH_TYPE_ARP:
        raise WalkError('set_field %s on a packet that is not ARP: %r'
                        % (field, packet))
    else:
        packet[field] = value


def _pop_mpls(packet, eth_type):
    stack = packet.get('mpls')
    if packet.get('eth_type') != ETH_TYPE_MPLS or not stack:
        raise WalkError('pop_mpls on a packet without a label: %r'
                        % (packet,))
    if len(stack) > 1:
        packet['mpls'] = stack[1:]
        return
    del packet['mpls']
    packet['eth_type'] = eth_type


def ipv4_packet(in_port, eth_src, ipv4_src, ipv4_dst,
                eth_dst=GATEWAY_MAC_DEFAULT, ip_proto=6, ip_ttl=64, **extra):
    """Return an IPv4 packet as the walker takes it."""
    packet = {'in_port': in_port, 'eth_src': eth_src, 'eth_dst': eth_dst,
              'eth_type': ETH_TYPE_IPV4, 'ipv4_src': ipv4_src,
              'ipv4_dst': ipv4_dst, 'ip_proto': ip_proto, 'ip_ttl': ip_ttl}
    packet.update(extra)
    return packet


def dhcp_packet(in_port, eth_src, ipv4_src='0.0.0.0',
                ipv4_dst='255.255.255.255'):
    """Return a DHCP client packet (UDP 68 to 67)."""
    return ipv4_packet(in_port, eth_src, ipv4_src, ipv4_dst,
                       eth_dst='ff:ff:ff:ff:ff:ff', ip_proto=IP_PROTO_UDP,
                       udp_src=68, udp_dst=67)


def arp_packet(in_port, eth_src, arp_spa, arp_tpa, arp_op=ARP_OP_REQUEST,
               eth_dst=BROADCAST_MAC, arp_sha=None, arp_tha=UNKNOWN_MAC):
    """Return an ARP packet, by default a broadcast request.

    arp_sha defaults to eth_src.  An RFC 5227 probe has arp_spa 0.0.0.0.
    """
    return {'in_port': in_port, 'eth_src': eth_src, 'eth_dst': eth_dst,
            'eth_type': ETH_TYPE_ARP, 'arp_op': arp_op,
            'arp_sha': eth_src if arp_sha is None else arp_sha,
            'arp_spa': arp_spa, 'arp_tha': arp_tha, 'arp_tpa': arp_tpa}


def mpls_packet(in_port, label, inner):
    """Return an IPv4 packet under one MPLS label, arriving at in_port."""
    packet = dict(inner)
    packet.update(in_port=in_port, eth_type=ETH_TYPE_MPLS, mpls=(label,))
    return packet

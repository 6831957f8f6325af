"""The walker follows OpenFlow semantics on hand-made flow tables."""

import pytest

from openflow_rules import Flow, Network, PortRole, Switch, make_match
from openflow_rules.flow import unchecked_flow
from openflow_rules.network import core_link_pair
from openflow_rules.walker import (
    CONTROLLER, DROP, HOST, LOOP, AmbiguousMatch, WalkError, Walker,
    arp_packet, ipv4_packet, mpls_packet)

MAC = 'aa:00:00:00:00:01'


def _two_switches():
    """Switches 1 and 2: access port 1 each, core ports 11 <-> 12."""
    return Network(
        switches={1: Switch(1, 1, {1: PortRole.ACCESS, 11: PortRole.CORE}),
                  2: Switch(2, 2, {1: PortRole.ACCESS, 12: PortRole.CORE})},
        links=core_link_pair(1, 11, 2, 12))


def _packet(ipv4_dst='10.2.0.2', in_port=1, **extra):
    return ipv4_packet(in_port, MAC, '10.1.0.2', ipv4_dst, **extra)


def _ip_dst(value):
    return make_match(eth_type=0x0800, ipv4_dst=value)


def test_highest_priority_match_wins():
    flows = {1: {Flow(0, 10, (), (('output', 11),), 0),
                 Flow(0, 20, _ip_dst('10.2.0.2'), (), 0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == DROP
    assert result.dpid == 1


def test_masked_match_selects_prefix():
    flows = {1: {Flow(0, 10, _ip_dst('10.2.0.0/16'), (('output', 1),), 0)},
             2: set()}
    walker = Walker(_two_switches(), flows)

    inside = walker.walk(_packet('10.2.77.9', in_port=11), 1)
    outside = walker.walk(_packet('10.3.0.1', in_port=11), 1)

    assert inside.outcome == HOST
    assert outside.outcome == DROP
    assert outside.reason == 'no flow in table 0'


def test_equal_priority_overlap_raises():
    flows = {1: {Flow(0, 10, _ip_dst('10.2.0.0/16'), (('output', 1),), 0),
                 Flow(0, 10, make_match(in_port=11), (), 0)}, 2: set()}

    with pytest.raises(AmbiguousMatch):
        Walker(_two_switches(), flows).walk(_packet(in_port=11), 1)


def test_output_to_core_port_continues_at_peer():
    flows = {1: {Flow(0, 10, (), (('output', 11),), 0)},
             2: {Flow(0, 10, make_match(in_port=12), (('output', 1),), 0)}}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == HOST
    assert (result.dpid, result.port) == (2, 1)
    assert result.path == (1, 2)
    assert result.packet['in_port'] == 12


def test_ping_pong_between_switches_is_a_loop():
    flows = {1: {Flow(0, 10, make_match(in_port=1), (('output', 11),), 0),
                 Flow(0, 10, make_match(in_port=11),
                      (('output', 'IN_PORT'),), 0)},
             2: {Flow(0, 10, (), (('output', 'IN_PORT'),), 0)}}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == LOOP
    assert result.path == (1, 2, 1, 2)


def test_output_to_ingress_port_is_dropped():
    flows = {1: {Flow(0, 10, (), (('output', 1),), 0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == DROP
    assert 'ingress port' in result.reason


def test_in_port_action_sends_back_out_of_ingress():
    flows = {1: {Flow(0, 10, (), (('output', 'IN_PORT'),), 0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == HOST
    assert result.port == 1


def test_dec_ttl_drops_when_ttl_expires():
    flows = {1: {Flow(0, 10, (), (('dec_ttl',), ('output', 11)), 0)},
             2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(ip_ttl=1), 1)

    assert result.outcome == DROP
    assert result.reason == 'IPv4 TTL expired'


def test_push_set_pop_round_trip_restores_ipv4():
    push = (('push_mpls', 0x8847), ('set_field', 'mpls_label', 1002),
            ('output', 11))
    pop = (('pop_mpls', 0x0800), ('goto_table', 1))
    flows = {1: {Flow(0, 10, (), push, 0)},
             2: {Flow(0, 10, make_match(eth_type=0x8847, mpls_label=1002),
                      pop, 0),
                 Flow(1, 10, _ip_dst('10.2.0.2'), (('output', 1),), 0)}}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == HOST
    assert result.packet['eth_type'] == 0x0800
    assert 'mpls' not in result.packet


def test_ipv4_fields_are_invisible_under_a_label():
    flows = {1: {Flow(0, 10, _ip_dst('10.2.0.2'), (('output', 1),), 0)},
             2: set()}

    packet = mpls_packet(11, 1002, _packet())
    result = Walker(_two_switches(), flows).walk(packet, 1)

    assert result.outcome == DROP


def test_pop_without_label_is_an_error():
    flows = {1: {Flow(0, 10, (), (('pop_mpls', 0x0800),), 0)}, 2: set()}

    with pytest.raises(WalkError, match='without a label'):
        Walker(_two_switches(), flows).walk(_packet(), 1)


def test_arp_fields_match_only_arp_packets():
    flows = {1: {Flow(0, 10, make_match(eth_type=0x0806, arp_spa='10.1.0.2',
                                        arp_sha=MAC),
                      (('output', 'IN_PORT'),), 0)}, 2: set()}
    walker = Walker(_two_switches(), flows)

    request = walker.walk(arp_packet(1, MAC, '10.1.0.2', '10.1.0.1'), 1)
    probe = walker.walk(arp_packet(1, MAC, '0.0.0.0', '10.1.0.1'), 1)
    ipv4 = walker.walk(_packet(arp_spa='10.1.0.2', arp_sha=MAC), 1)

    assert request.outcome == HOST
    assert probe.outcome == DROP
    assert ipv4.outcome == DROP


def test_arp_set_fields_rewrite_the_packet():
    flows = {1: {Flow(0, 10, make_match(eth_type=0x0806),
                      (('set_field', 'arp_op', 2),
                       ('set_field', 'arp_sha', '02:00:00:00:00:01'),
                       ('set_field', 'arp_spa', '10.1.0.1'),
                       ('set_field', 'arp_tha', MAC),
                       ('set_field', 'arp_tpa', '10.1.0.2'),
                       ('output', 'IN_PORT')), 0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(
        arp_packet(1, MAC, '10.1.0.2', '10.1.0.1'), 1)

    assert (result.outcome, result.port) == (HOST, 1)
    assert result.packet['arp_op'] == 2
    assert result.packet['arp_sha'] == '02:00:00:00:00:01'
    assert result.packet['arp_spa'] == '10.1.0.1'
    assert result.packet['arp_tha'] == MAC
    assert result.packet['arp_tpa'] == '10.1.0.2'


def test_arp_set_field_on_ipv4_raises():
    # Flow's checks reject this flow, so it is built without them.
    flow = unchecked_flow(0, 10, (), (('set_field', 'arp_op', 2),
                                      ('output', 11)), 0)
    flows = {1: {flow}, 2: set()}

    with pytest.raises(WalkError, match='not ARP'):
        Walker(_two_switches(), flows).walk(_packet(), 1)


def test_controller_output_ends_walk():
    flows = {1: {Flow(0, 0, (), (('meter', 1000), ('output', 'CONTROLLER')),
                      0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == CONTROLLER
    assert result.dpid == 1


def test_flow_without_output_or_goto_drops():
    flows = {1: {Flow(0, 10, (), (), 0)}, 2: set()}

    result = Walker(_two_switches(), flows).walk(_packet(), 1)

    assert result.outcome == DROP
    assert result.reason == 'dropped by table 0 priority 10'
    assert len(result.hits) == 1


def test_walk_rejects_packet_without_in_port():
    packet = _packet()
    del packet['in_port']

    with pytest.raises(ValueError, match='no in_port'):
        Walker(_two_switches(), {1: set(), 2: set()}).walk(packet, 1)

"""desired_flows returns each pipeline flow at the switch it belongs to."""

import pytest

from openflow_rules import (
    PACKET_IN_METER_ID, TABLE_CLASSIFY, TABLE_LABEL, TABLE_ROUTE, TABLES,
    Flow, Kind, Network, Settings, cell_flows, describe_cookie,
    desired_flows, host_flows, label_for_cell, make_match)
from openflow_rules import scenarios

ROAMER = 'aa:00:00:00:01:00'
TO_CONTROLLER = (('meter', PACKET_IN_METER_ID), ('output', 'CONTROLLER'))


def _roaming_star(**settings):
    network = scenarios.star(Settings(**settings))
    return scenarios.move(network, ROAMER, 2, 2)


def _of_kind(flows, kind, owner=None):
    return [flow for flow in flows
            if describe_cookie(flow.cookie).kind == kind
            and (owner is None or describe_cookie(flow.cookie).owner == owner)]


def _is_hairpin(flow):
    return flow.actions[-1:] == (('output', 'IN_PORT'),)


def _one(flows, kind, owner=None, hairpin=False):
    matching = [flow for flow in _of_kind(flows, kind, owner)
                if _is_hairpin(flow) == hairpin]
    assert len(matching) == 1, matching
    return matching[0]


def test_every_table_has_a_table_miss_flow():
    for dpid in scenarios.star().switches:
        flows = desired_flows(dpid, scenarios.star())
        misses = {flow.table: flow for flow in flows
                  if flow.priority == 0 and flow.match == ()}

        assert sorted(misses) == list(TABLES)
        assert misses[TABLE_CLASSIFY].actions == TO_CONTROLLER
        assert misses[TABLE_LABEL].actions == ()
        assert misses[TABLE_ROUTE].actions == ()


def test_arp_goes_to_controller_through_meter():
    flow = _one(desired_flows(2, scenarios.star()), Kind.ARP)

    assert flow.match == make_match(eth_type=0x0806)
    assert flow.actions == TO_CONTROLLER


def _arp_reply(flows):
    # The reply leaves by IN_PORT like a hairpin twin, so _one cannot pick
    # it by its output.
    [reply] = _of_kind(flows, Kind.ARP_REPLY, ROAMER)
    return reply


def test_arp_reply_flow_rewrites_gateway_request():
    reply = _arp_reply(desired_flows(2, _roaming_star()))

    assert reply.table == TABLE_CLASSIFY
    assert reply.match == make_match(
        in_port=2, eth_src=ROAMER, eth_type=0x0806, arp_op=1,
        arp_sha=ROAMER, arp_spa='10.1.0.2', arp_tpa='10.1.0.1')
    assert reply.actions == (
        ('set_field', 'eth_dst', ROAMER),
        ('set_field', 'eth_src', '02:00:00:00:00:01'),
        ('set_field', 'arp_op', 2),
        ('set_field', 'arp_sha', '02:00:00:00:00:01'),
        ('set_field', 'arp_spa', '10.1.0.1'),
        ('set_field', 'arp_tha', ROAMER),
        ('set_field', 'arp_tpa', '10.1.0.2'),
        ('output', 'IN_PORT'))


def test_arp_reply_outranks_arp_to_controller():
    flows = desired_flows(2, _roaming_star())

    reply = _arp_reply(flows)
    to_controller = _one(flows, Kind.ARP)

    assert reply.priority > to_controller.priority


def test_arp_reply_only_at_current_switch():
    for network in (scenarios.star(), _roaming_star(),
                    _roaming_star(route_optimisation=False,
                                  reverse_tunnelling=True)):
        current = network.hosts[ROAMER].dpid
        for dpid in network.switches:
            replies = _of_kind(desired_flows(dpid, network),
                               Kind.ARP_REPLY, ROAMER)

            assert len(replies) == (1 if dpid == current else 0), dpid


def test_arp_reply_uses_custom_gateway_mac():
    network = _roaming_star(gateway_mac='02:aa:00:00:00:01')

    reply = _arp_reply(desired_flows(2, network))

    assert ('set_field', 'eth_src', '02:aa:00:00:00:01') in reply.actions
    assert ('set_field', 'arp_sha', '02:aa:00:00:00:01') in reply.actions


def test_dhcp_flows_only_on_access_ports():
    network = scenarios.star()

    ports = {dpid: sorted(dict(flow.match)['in_port']
                          for flow in _of_kind(desired_flows(dpid, network),
                                               Kind.DHCP))
             for dpid in network.switches}

    assert ports == {1: [1, 2], 2: [1, 2], 3: [1, 2], 4: []}


def test_source_guard_only_at_current_switch():
    network = _roaming_star()
    for dpid in network.switches:
        guards = _of_kind(desired_flows(dpid, network), Kind.SOURCE_GUARD,
                          ROAMER)

        assert len(guards) == (1 if dpid == 2 else 0)


def test_source_guard_matches_port_mac_and_address():
    guard = _one(desired_flows(2, _roaming_star()), Kind.SOURCE_GUARD,
                 ROAMER)

    assert guard.match == make_match(in_port=2, eth_src=ROAMER,
                                     eth_type=0x0800, ipv4_src='10.1.0.2')
    assert guard.actions == (('goto_table', TABLE_ROUTE),)


def test_spoof_drop_sits_below_source_guard():
    flows = desired_flows(2, _roaming_star())
    guard = _one(flows, Kind.SOURCE_GUARD, ROAMER)
    spoof = _one(flows, Kind.SPOOF_DROP, ROAMER)

    assert spoof.match == make_match(in_port=2, eth_src=ROAMER)
    assert spoof.actions == ()
    assert spoof.priority < guard.priority


def test_delivery_rewrites_ethernet_and_decrements_ttl():
    deliver = _one(desired_flows(2, _roaming_star()), Kind.DELIVER, ROAMER)

    assert deliver.match == make_match(eth_type=0x0800, ipv4_dst='10.1.0.2')
    assert deliver.actions == (
        ('set_field', 'eth_src', '02:00:00:00:00:01'),
        ('set_field', 'eth_dst', ROAMER), ('dec_ttl',), ('output', 2))


def test_gateway_ping_goes_to_controller():
    gateway = _one(desired_flows(2, _roaming_star()), Kind.GATEWAY, ROAMER)

    assert gateway.match == make_match(eth_type=0x0800, ipv4_dst='10.1.0.1')
    assert gateway.actions == TO_CONTROLLER


def test_home_cell_tunnels_roaming_host():
    tunnel = _one(desired_flows(1, _roaming_star()), Kind.HOME_TUNNEL,
                  ROAMER)

    assert tunnel.actions == (('push_mpls', 0x8847),
                              ('set_field', 'mpls_label', label_for_cell(2)),
                              ('output', 11))


def test_tunnel_has_hairpin_twin():
    flows = desired_flows(1, _roaming_star())
    tunnel = _one(flows, Kind.HOME_TUNNEL, ROAMER)
    twin = _one(flows, Kind.HOME_TUNNEL, ROAMER, hairpin=True)

    assert dict(twin.match) == dict(tunnel.match, in_port=11)
    assert twin.priority == tunnel.priority + 1
    assert twin.actions == tunnel.actions[:-1] + (('output', 'IN_PORT'),)


def test_route_optimisation_adds_entries_at_other_cells():
    network = _roaming_star(route_optimisation=True)

    for dpid in (3, 4):
        entry = _one(desired_flows(dpid, network), Kind.ROUTE_OPTIMISED,
                     ROAMER)
        assert entry.actions[1] == ('set_field', 'mpls_label',
                                    label_for_cell(2))


def test_optimisation_off_leaves_others_empty():
    network = _roaming_star(route_optimisation=False)

    for dpid in (3, 4):
        assert _of_kind(desired_flows(dpid, network),
                        Kind.ROUTE_OPTIMISED) == []


def test_host_at_home_has_no_route_optimised_entries():
    network = scenarios.star()
    for dpid in network.switches:
        assert _of_kind(desired_flows(dpid, network),
                        Kind.ROUTE_OPTIMISED) == []
        assert _of_kind(desired_flows(dpid, network), Kind.HOME_TUNNEL) == []


def test_reverse_tunnel_sends_roamer_traffic_home():
    flows = desired_flows(2, _roaming_star(reverse_tunnelling=True))
    reverse = _one(flows, Kind.REVERSE_TUNNEL, ROAMER)

    assert reverse.match == make_match(in_port=2, eth_type=0x0800,
                                       ipv4_src='10.1.0.2')
    assert reverse.actions[1] == ('set_field', 'mpls_label',
                                  label_for_cell(1))


def test_reverse_tunnel_absent_when_off_or_at_home():
    off = _roaming_star(reverse_tunnelling=False)
    at_home = scenarios.star(Settings(reverse_tunnelling=True))

    assert _of_kind(desired_flows(2, off), Kind.REVERSE_TUNNEL) == []
    assert _of_kind(desired_flows(1, at_home), Kind.REVERSE_TUNNEL) == []


def test_own_pool_drops_and_other_pools_tunnel():
    flows = desired_flows(2, scenarios.star())
    own = _one(flows, Kind.OWN_POOL, 2)
    other = _one(flows, Kind.POOL_ROUTE, 3)

    assert own.match == make_match(eth_type=0x0800, ipv4_dst='10.2.0.0/16')
    assert own.actions == ()
    assert other.actions[1] == ('set_field', 'mpls_label',
                                label_for_cell(3))


def test_unreachable_pool_drops():
    network = scenarios.build_network(
        cells=(1, 2, 3), edges=((1, 2),), uplinks=((1, True),))
    flows = desired_flows(1, network)

    pool_route = _one(flows, Kind.POOL_ROUTE, 3)

    assert pool_route.actions == ()
    assert _of_kind(flows, Kind.LABEL_SWITCH, 3) == []


def test_label_table_pops_own_label_and_switches_others():
    flows = desired_flows(4, scenarios.star())
    pop = _one(flows, Kind.LABEL_POP, 4)
    switched = {describe_cookie(flow.cookie).owner: flow.actions
                for flow in _of_kind(flows, Kind.LABEL_SWITCH)}

    assert pop.actions == (('pop_mpls', 0x0800), ('goto_table', TABLE_ROUTE))
    assert switched == {1: (('output', 11),), 2: (('output', 12),),
                        3: (('output', 13),)}


def test_default_route_leaves_by_resolved_uplink():
    default = _one(desired_flows(1, scenarios.star()), Kind.DEFAULT_ROUTE)

    assert default.actions == (
        ('set_field', 'eth_src', '02:00:00:00:00:01'),
        ('set_field', 'eth_dst', '0e:00:00:00:00:01'), ('dec_ttl',),
        ('output', 100))


def test_default_route_skips_unresolved_uplink():
    default = _one(desired_flows(3, scenarios.star()), Kind.DEFAULT_ROUTE)

    assert default.actions[1] == ('set_field', 'mpls_label',
                                  label_for_cell(1))


def test_default_route_picks_nearest_uplink_cell():
    network = scenarios.build_network(
        cells=(1, 2, 3, 4), edges=((1, 2), (2, 3), (3, 4)),
        uplinks=((1, True), (4, True)))

    labels = {dpid: _one(desired_flows(dpid, network),
                         Kind.DEFAULT_ROUTE).actions[1][2]
              for dpid in (2, 3)}

    assert labels == {2: label_for_cell(1), 3: label_for_cell(4)}


def test_default_route_drops_without_any_resolved_uplink():
    network = scenarios.build_network(cells=(1, 2), edges=((1, 2),),
                                      uplinks=((1, False),))

    default = _one(desired_flows(2, network), Kind.DEFAULT_ROUTE)

    assert default.actions == ()


def test_uplink_admits_only_tmip_pools():
    flows = desired_flows(1, scenarios.star())
    admitted = sorted(dict(flow.match)['ipv4_dst']
                      for flow in _of_kind(flows, Kind.UPLINK_IN, 100))
    guard = _one(flows, Kind.UPLINK_GUARD, 100)

    assert admitted == [('10.%d.0.0' % cell, '255.255.0.0')
                        for cell in (1, 2, 3, 4)]
    assert guard.match == make_match(in_port=100)
    assert guard.actions == ()


def test_broadcast_and_multicast_are_not_routed():
    flows = _of_kind(desired_flows(1, scenarios.star()), Kind.NOT_ROUTED)

    assert sorted(str(dict(flow.match)['ipv4_dst']) for flow in flows) == [
        "('224.0.0.0', '240.0.0.0')", '255.255.255.255']
    assert all(flow.actions == () for flow in flows)


def test_transit_switch_holds_no_access_flows():
    flows = desired_flows(4, scenarios.star())

    assert _of_kind(flows, Kind.DHCP) == []
    assert _of_kind(flows, Kind.SOURCE_GUARD) == []


def test_desired_flows_is_cell_flows_plus_host_flows():
    network = _roaming_star(reverse_tunnelling=True)
    for dpid in network.switches:
        union = set(cell_flows(dpid, network))
        for host in network.hosts.values():
            union |= host_flows(dpid, network, host)

        assert desired_flows(dpid, network) == union


def test_desired_flows_rejects_unknown_switch():
    with pytest.raises(KeyError, match='switch 9'):
        desired_flows(9, scenarios.star())


def test_desired_flows_is_deterministic():
    first = desired_flows(1, _roaming_star())
    second = desired_flows(1, _roaming_star())

    assert first == second


def test_custom_gateway_mac_is_used_in_rewrites():
    network = _roaming_star(gateway_mac='02:aa:00:00:00:01')

    deliver = _one(desired_flows(2, network), Kind.DELIVER, ROAMER)

    assert deliver.actions[0] == ('set_field', 'eth_src',
                                  '02:aa:00:00:00:01')


def test_switch_alone_still_gets_cell_flows():
    network = Network({7: scenarios.build_network(
        cells=(7,), edges=()).switches[7]})

    kinds = {describe_cookie(flow.cookie).kind
             for flow in desired_flows(7, network)}

    assert {Kind.TABLE_MISS, Kind.ARP, Kind.LABEL_POP,
            Kind.DEFAULT_ROUTE} <= kinds


def _all_scenarios():
    for optimise in (True, False):
        for reverse in (False, True):
            settings = Settings(route_optimisation=optimise,
                                reverse_tunnelling=reverse)
            yield _roaming_star(route_optimisation=optimise,
                                reverse_tunnelling=reverse)
            yield scenarios.move(scenarios.ring(4, settings), ROAMER, 3, 2)
    yield from scenarios.golden_scenarios().values()


def test_every_pipeline_flow_passes_flow_checks():
    # The pipeline builds flows without Flow's checks, for speed, so this
    # proves the checks would have accepted every one of them.
    for network in _all_scenarios():
        for dpid in network.switches:
            for flow in desired_flows(dpid, network):
                checked = Flow(flow.table, flow.priority, flow.match,
                               flow.actions, flow.cookie)

                assert checked == flow
                assert make_match(**dict(flow.match)) == flow.match

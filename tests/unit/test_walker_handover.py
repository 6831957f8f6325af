"""Hand-over plans never drop or loop a packet to the moving host.

The plan is applied one SwitchChange at a time, the rest of the network
unchanged.  At every step a packet to the moving host, from every other
host, every uplink and every core link that carries a label toward the
host, must end where the network before or the network after sends it,
never anywhere else and never in a loop.  For a move, that means it is
delivered at the old or the new port at every step.  The moving host's
ARP request for its gateway, from its old or its new port, is likewise
answered there or reaches the controller, as before or after says.
"""

import dataclasses

import hypothesis
import pytest
from hypothesis import strategies

from openflow_rules import (
    Flow, Settings, all_desired_flows, apply_diff, desired_flows, diff,
    handover_plan, handover_plan_for_host, label_for_cell)
from openflow_rules import scenarios
from openflow_rules.topology import core_routes
from openflow_rules.walker import (
    DROP, HOST, LOOP, Walker, arp_packet, ipv4_packet, mpls_packet)

ROAMER = 'aa:00:00:00:01:00'
OUTSIDE = '203.0.113.9'


def _links_carrying(network, cell):
    routes = core_routes(network)
    dpid = next((dpid for dpid, switch in network.switches.items()
                 if switch.cell == cell), None)
    if dpid is None:
        return []
    return [link for link in network.links
            if routes.port_toward(link.src_dpid, dpid) == link.src_port]


def _sources(before, after, mac):
    """Return (dpid, packet) for every way a packet to mac enters."""
    host = before.hosts.get(mac) or after.hosts.get(mac)
    sources = []
    for other in before.hosts.values():
        if other.mac != mac and after.hosts.get(other.mac) == other:
            sources.append((other.dpid, ipv4_packet(
                other.port, other.mac, other.address, host.address)))
    for uplink in before.uplinks:
        sources.append((uplink.dpid, ipv4_packet(
            uplink.port, '0e:00:00:00:00:99', OUTSIDE, host.address)))
    cells = {host.home_cell}
    for network in (before, after):
        if mac in network.hosts:
            cells.add(network.cell_of(network.hosts[mac].dpid))
    inner = ipv4_packet(1, 'aa:00:00:00:99:99', OUTSIDE, host.address)
    for cell in sorted(cells):
        for link in _links_carrying(before, cell):
            sources.append((link.dst_dpid, mpls_packet(
                link.dst_port, label_for_cell(cell), inner)))
    return sources


def _own_arp_requests(before, after, mac):
    """Return (dpid, packet) for the host's ARP request from each place."""
    requests = []
    for network in (before, after):
        host = network.hosts.get(mac)
        if host is not None:
            requests.append((host.dpid, arp_packet(
                host.port, host.mac, host.address, host.gateway)))
    return requests


def _summary(result):
    return (result.outcome, result.dpid, result.port)


def _check_delivery(result, network, mac):
    host = network.hosts[mac]
    assert result.packet['eth_dst'] == host.mac
    assert result.packet['eth_src'] == network.settings.gateway_mac
    assert 'mpls' not in result.packet


def _check_every_step(before, after, plan, mac):
    """Walk every source through every intermediate state of a plan."""
    sources = _sources(before, after, mac) + \
        _own_arp_requests(before, after, mac)
    tables = all_desired_flows(before)
    expected = {}
    for name, network, flows in (('before', before, tables),
                                 ('after', after, all_desired_flows(after))):
        walker = Walker(before, flows)
        for index, (dpid, packet) in enumerate(sources):
            expected.setdefault(index, set()).add(
                _summary(walker.walk(packet, dpid)))
    for step, change in enumerate(plan, 1):
        tables[change.dpid] = apply_diff(tables[change.dpid], change.diff)
        walker = Walker(before, tables)
        for index, (dpid, packet) in enumerate(sources):
            result = walker.walk(packet, dpid)

            assert result.outcome != LOOP, (step, str(result))
            assert _summary(result) in expected[index], (
                'step %d of %d (switch %d): %s; expected one of %s'
                % (step, len(plan), change.dpid, result, expected[index]))
            if result.outcome == HOST:
                located = after if mac in after.hosts and \
                    result.dpid == after.hosts[mac].dpid else before
                _check_delivery(result, located, mac)
    assert tables == all_desired_flows(after)


def _cases():
    for optimise in (True, False):
        for reverse in (False, True):
            settings = Settings(route_optimisation=optimise,
                                reverse_tunnelling=reverse)
            tag = ' ro=%s rt=%s' % (optimise, reverse)
            star = scenarios.star(settings)
            roaming = scenarios.move(star, ROAMER, 2, 2)
            farther = scenarios.move(roaming, ROAMER, 3, 2)
            ring = scenarios.ring(4, settings)
            ring_roaming = scenarios.move(ring, ROAMER, 3, 2)
            yield 'star leave home' + tag, star, roaming
            yield 'star foreign to foreign' + tag, roaming, farther
            yield 'star back home' + tag, farther, star
            yield 'star other port' + tag, star, scenarios.move(
                star, ROAMER, 1, 2)
            yield 'star expire' + tag, roaming, roaming.remove_host(ROAMER)
            yield 'star attach' + tag, roaming.remove_host(ROAMER), roaming
            yield 'ring leave home' + tag, ring, ring_roaming
            yield 'ring next cell' + tag, ring_roaming, scenarios.move(
                ring_roaming, ROAMER, 4, 2)
            yield 'ring back home' + tag, ring_roaming, ring


CASES = list(_cases())


@pytest.mark.parametrize('name, before, after', CASES,
                         ids=[name for name, _, _ in CASES])
def test_plan_steps_deliver_to_moving_host(name, before, after):
    plan = handover_plan(before, after)

    _check_every_step(before, after, plan, ROAMER)


def test_moving_host_is_never_dropped_during_move():
    roaming = scenarios.move(scenarios.star(), ROAMER, 2, 2)
    after = scenarios.move(roaming, ROAMER, 3, 2)
    plan = handover_plan(roaming, after)
    sources = _sources(roaming, after, ROAMER)
    tables = all_desired_flows(roaming)

    for change in plan:
        tables[change.dpid] = apply_diff(tables[change.dpid], change.diff)
        walker = Walker(roaming, tables)
        for dpid, packet in sources:
            result = walker.walk(packet, dpid)

            assert result.outcome == HOST, str(result)
            assert (result.dpid, result.port) in {(2, 2), (3, 2)}


def test_plan_in_reverse_order_would_loop_packets():
    # The order matters: updating the old switch first sends in-flight
    # packets back to a home that still tunnels to the old switch.
    roaming = scenarios.move(
        scenarios.star(Settings(route_optimisation=False)), ROAMER, 2, 2)
    after = scenarios.move(roaming, ROAMER, 3, 2)
    plan = list(reversed(handover_plan(roaming, after)))
    tables = all_desired_flows(roaming)
    tables[plan[0].dpid] = apply_diff(tables[plan[0].dpid], plan[0].diff)
    host = roaming.hosts[ROAMER]
    inner = ipv4_packet(1, 'aa:00:00:00:99:99', OUTSIDE, host.address)

    result = Walker(roaming, tables).walk(
        mpls_packet(13, label_for_cell(2), inner), 4)

    assert result.outcome == LOOP


@strategies.composite
def _random_network(draw):
    """Draw a network of 2..6 cells, its hosts, uplinks and settings."""
    count = draw(strategies.integers(2, 6))
    cells = list(range(1, count + 1))
    edges = [(draw(strategies.sampled_from(cells[:cell - 1])), cell)
             for cell in cells[1:]]
    if draw(strategies.integers(0, 4)) == 0:
        del edges[draw(strategies.integers(0, len(edges) - 1))]
    pairs = [(a, b) for a in cells for b in cells if a < b]
    edges += draw(strategies.lists(strategies.sampled_from(pairs),
                                   max_size=3))
    hosts = draw(strategies.lists(
        strategies.tuples(strategies.sampled_from(cells),
                          strategies.sampled_from(cells),
                          strategies.integers(1, 2)),
        min_size=1, max_size=4))
    uplinks = draw(strategies.lists(
        strategies.tuples(strategies.sampled_from(cells),
                          strategies.booleans()),
        max_size=2, unique_by=lambda uplink: uplink[0]))
    settings = Settings(route_optimisation=draw(strategies.booleans()),
                        reverse_tunnelling=draw(strategies.booleans()))
    return scenarios.build_network(cells, edges, hosts, uplinks, settings)


@strategies.composite
def _random_change(draw):
    """Draw (before, after, mac): a move, an attach or an expiry."""
    before = draw(_random_network())
    cells = sorted(before.switches)
    kind = draw(strategies.sampled_from(('move', 'move', 'attach',
                                         'expire')))
    if kind == 'attach':
        home = draw(strategies.sampled_from(cells))
        host = scenarios.host_placement(
            home, 63, draw(strategies.sampled_from(cells)),
            draw(strategies.integers(1, 2)))
        return before, before.replace_host(host), host.mac
    mac = draw(strategies.sampled_from(sorted(before.hosts)))
    if kind == 'expire':
        return before, before.remove_host(mac), mac
    host = dataclasses.replace(
        before.hosts[mac], dpid=draw(strategies.sampled_from(cells)),
        port=draw(strategies.integers(1, 2)))
    return before, before.replace_host(host), mac


def _full_diff(before, after):
    full = {}
    for dpid in after.switches:
        switch_diff = diff(desired_flows(dpid, before),
                           desired_flows(dpid, after))
        if switch_diff:
            full[dpid] = switch_diff
    return full


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(_random_change())
def test_random_handover_never_drops_or_loops(change):
    before, after, mac = change

    plan = handover_plan(before, after)

    _check_every_step(before, after, plan, mac)
    per_host = handover_plan_for_host(before, mac, after.hosts.get(mac))
    assert per_host == plan
    assert {step.dpid: step.diff for step in plan} == \
        _full_diff(before, after)


def _reachable(network, source, target):
    """Tell whether the pipeline's route from source to target exists."""
    routes = core_routes(network)
    home = next(dpid for dpid, switch in network.switches.items()
                if switch.cell == target.home_cell)
    if network.is_roaming(target) and \
            not network.settings.route_optimisation and \
            source.dpid != target.dpid:
        legs = ((source.dpid, home), (home, target.dpid))
    else:
        legs = ((source.dpid, target.dpid),)
    return all(routes.hops(src, dst) is not None for src, dst in legs)


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(_random_network())
def test_random_network_delivers_or_drops_without_loops(network):
    for flows in all_desired_flows(network).values():
        for flow in flows:
            assert Flow(flow.table, flow.priority, flow.match, flow.actions,
                        flow.cookie) == flow
    walker = Walker(network)
    for source in network.hosts.values():
        for target in network.hosts.values():
            if source is target:
                continue
            packet = ipv4_packet(source.port, source.mac, source.address,
                                 target.address)

            result = walker.walk(packet, source.dpid)

            if not _reachable(network, source, target):
                assert result.outcome == DROP, str(result)
                continue
            assert result.outcome == HOST, str(result)
            assert (result.dpid, result.port) == (target.dpid, target.port)
            assert result.packet['eth_dst'] == target.mac
            assert result.packet['ip_ttl'] == 63

"""NetworkState: links whose ports are not known yet, and flow batches."""

import logging

import pytest

import openflow_rules as rules
from tmip_ryu.config import TmipSettings
from tmip_ryu.network_state import (LocalFlowCache, NetworkState,
                                    desired_flow_batches)

PORTS = {1: '0a:00:00:00:00:01', 2: '0a:00:00:00:00:02',
         3: '0a:00:00:00:00:03'}


def _state(route_optimisation=True):
    return NetworkState(TmipSettings(route_optimisation=route_optimisation))


def _link(state, a, a_port, b, b_port):
    state.add_link(a, a_port, b, b_port)
    return state.add_link(b, b_port, a, a_port)


def _placement(index, cell, dpid, port):
    base = (10 << 24) | (cell << 16) | (4 * index)
    address = '%d.%d.%d.%d' % (base >> 24, base >> 16 & 255,
                                base >> 8 & 255, (base & 255) + 2)
    gateway = address.rsplit('.', 1)[0] + '.%d' % ((base & 255) + 1)
    return rules.HostPlacement(
        mac='02:00:00:00:%02x:%02x' % (index >> 8, index & 255),
        address=address, gateway=gateway, home_cell=cell, dpid=dpid,
        port=port)


def test_link_to_switch_without_ports_is_left_out():
    state = _state()
    state.set_ports(1, PORTS)

    _link(state, 1, 1, 2, 1)
    network = state.network()

    assert network.links == frozenset()


def test_link_is_used_once_both_ports_are_known():
    state = _state()
    state.set_ports(1, PORTS)
    _link(state, 1, 1, 2, 1)
    state.network()

    state.set_ports(2, PORTS)
    network = state.network()

    assert network.links == rules.core_link_pair(1, 1, 2, 1)


def test_link_to_switch_without_cell_is_left_out():
    state = _state()
    state.set_ports(1, PORTS)
    state.set_ports(300, PORTS)

    _link(state, 1, 1, 300, 1)
    network = state.network()

    assert network.links == frozenset()
    assert set(network.switches) == {1}


def test_unready_link_is_logged_once(caplog):
    state = _state()
    state.set_ports(1, PORTS)
    _link(state, 1, 1, 2, 1)

    with caplog.at_level(logging.INFO, logger='tmip_ryu.network_state'):
        state.network()
        state.set_ports(1, PORTS)
        state.network()

    lines = [r for r in caplog.records if 'not used yet' in r.getMessage()]
    assert len(lines) == 2     # one line per direction of the link


def _three_cells(state):
    for dpid in (1, 2, 3):
        state.set_ports(dpid, PORTS)
    _link(state, 1, 1, 2, 1)
    _link(state, 2, 2, 3, 1)
    for index in range(30):
        cell = 1 + index % 3
        # Every fifth host roams to the next cell.
        dpid = cell % 3 + 1 if index % 5 == 0 else cell
        state.placements[_placement(index, cell, dpid, 3).mac] = \
            _placement(index, cell, dpid, 3)
    state.invalidate()


def _union(batches):
    flows = set()
    for batch in batches:
        flows.update(batch)
    return frozenset(flows)


@pytest.mark.parametrize('route_optimisation', [True, False])
def test_batches_hold_exactly_the_desired_flows(route_optimisation):
    state = _state(route_optimisation)
    _three_cells(state)
    network = state.network()

    for dpid in (1, 2, 3):
        union = _union(desired_flow_batches(network, dpid, 7))
        assert union == rules.desired_flows(dpid, network)


def test_batches_after_link_change_match_with_cache():
    state = _state()
    _three_cells(state)
    cache = LocalFlowCache()
    _union(desired_flow_batches(state.network(), 1, 7, cache))

    _link(state, 3, 2, 1, 2)
    network = state.network()
    union = _union(desired_flow_batches(network, 1, 7, cache))

    assert union == rules.desired_flows(1, network)


def test_batches_stay_near_their_size():
    state = _state()
    _three_cells(state)
    network = state.network()

    batches = list(desired_flow_batches(network, 1, 7))

    # The first batch is the cell flows.  A host adds fewer than 8 flows.
    assert all(len(batch) < 7 + 8 for batch in batches[1:])
    assert batches[0] == list(rules.cell_flows(1, network))


def test_roaming_host_stays_when_home_switch_leaves():
    state = _state()
    for dpid in (1, 2):
        state.set_ports(dpid, PORTS)
    host = _placement(1, 1, 2, 3)
    state.placements[host.mac] = host

    state.remove_switch(1)
    network = state.network()

    assert network.hosts == {host.mac: host}
    assert 1 in network.cell_pools

"""Every host reaches every host and the uplink, in every scenario.

A host's ARP request for its gateway gets its reply at its own port, and
every other ARP frame, like DHCP and pings to the gateway, reaches the
controller.

Scenarios: three cells around a transit cell, and four cells in a ring,
with hosts at home, roaming and back home, and with route optimisation
and reverse tunnelling each on and off.
"""

import pytest

from openflow_rules import (
    GATEWAY_MAC_DEFAULT, Kind, PortRole, Settings, describe_cookie,
    label_for_cell)
from openflow_rules import scenarios
from openflow_rules.topology import core_routes
from openflow_rules.walker import (
    CONTROLLER, DROP, HOST, UPLINK, Walker, arp_packet, dhcp_packet,
    ipv4_packet, mpls_packet)

ROAMER = 'aa:00:00:00:01:00'
INTERNET = '203.0.113.9'


def _scenarios():
    for optimise in (True, False):
        for reverse in (False, True):
            settings = Settings(route_optimisation=optimise,
                                reverse_tunnelling=reverse)
            tag = ' ro=%s rt=%s' % (optimise, reverse)
            star = scenarios.star(settings)
            roaming = scenarios.move(star, ROAMER, 2, 2)
            farther = scenarios.move(roaming, ROAMER, 3, 2)
            back = scenarios.move(farther, ROAMER, 1, 1)
            ring = scenarios.ring(4, settings)
            yield 'star at home' + tag, star
            yield 'star roaming' + tag, roaming
            yield 'star roaming farther' + tag, farther
            yield 'star back home' + tag, back
            yield 'ring at home' + tag, ring
            yield 'ring roaming' + tag, scenarios.move(ring, ROAMER, 3, 2)


SCENARIOS = list(_scenarios())
IDS = [name for name, _ in SCENARIOS]


def _home_dpid(network, host):
    return next(dpid for dpid, switch in network.switches.items()
                if switch.cell == host.home_cell)


def _path(network, src, dst):
    return core_routes(network).path(src, dst, network.links)


def _via(network, src, middle, dst):
    """Return the switches from src to dst through middle."""
    return _path(network, src, middle) + _path(network, middle, dst)[1:]


def _expected_path_to_host(network, src_dpid, host):
    if src_dpid == host.dpid:
        return [src_dpid]
    home = _home_dpid(network, host)
    if network.is_roaming(host) and \
            not network.settings.route_optimisation:
        return _via(network, src_dpid, home, host.dpid)
    return _path(network, src_dpid, host.dpid)


def _nearest_uplink(network, dpid):
    routes = core_routes(network)
    resolved = [uplink for uplink in network.uplinks if uplink.resolved]
    return min(resolved, key=lambda uplink: (
        routes.hops(dpid, uplink.dpid), network.cell_of(uplink.dpid)))


def _assert_delivered(result, network, host, ipv4_src):
    assert result.outcome == HOST, str(result)
    assert (result.dpid, result.port) == (host.dpid, host.port)
    assert result.packet['eth_src'] == network.settings.gateway_mac
    assert result.packet['eth_dst'] == host.mac
    assert result.packet['eth_type'] == 0x0800
    assert 'mpls' not in result.packet
    assert result.packet['ip_ttl'] == 63
    assert result.packet['ipv4_src'] == ipv4_src
    assert result.packet['ipv4_dst'] == host.address


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_every_host_reaches_every_other_host(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        for target in network.hosts.values():
            if source is target:
                continue
            packet = ipv4_packet(source.port, source.mac, source.address,
                                 target.address)

            result = walker.walk(packet, source.dpid)

            _assert_delivered(result, network, target, source.address)
            assert list(result.path) == _expected_path_to_host(
                network, source.dpid, target)


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_no_switch_is_crossed_twice_without_triangle(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        for target in network.hosts.values():
            triangle = network.is_roaming(target) and \
                not network.settings.route_optimisation
            if source is target or triangle:
                continue
            packet = ipv4_packet(source.port, source.mac, source.address,
                                 target.address)

            path = walker.walk(packet, source.dpid).path

            assert len(set(path)) == len(path), path


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_every_host_reaches_the_internet(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        packet = ipv4_packet(source.port, source.mac, source.address,
                             INTERNET)
        reverse = network.settings.reverse_tunnelling and \
            network.is_roaming(source)
        start = _home_dpid(network, source) if reverse else source.dpid
        uplink = _nearest_uplink(network, start)

        result = walker.walk(packet, source.dpid)

        assert result.outcome == UPLINK, str(result)
        assert (result.dpid, result.port) == (uplink.dpid, uplink.port)
        assert result.packet['eth_src'] == GATEWAY_MAC_DEFAULT
        assert result.packet['eth_dst'] == uplink.next_hop_mac
        assert result.packet['ip_ttl'] == 63
        assert 'mpls' not in result.packet
        if reverse:
            assert list(result.path) == _via(network, source.dpid, start,
                                             uplink.dpid)
        else:
            assert list(result.path) == _path(network, source.dpid,
                                              uplink.dpid)


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_uplink_traffic_reaches_every_host(name, network):
    walker = Walker(network)
    uplink = network.uplinks[0]
    for target in network.hosts.values():
        packet = ipv4_packet(uplink.port, uplink.next_hop_mac, INTERNET,
                             target.address)

        result = walker.walk(packet, uplink.dpid)

        _assert_delivered(result, network, target, INTERNET)
        assert list(result.path) == _expected_path_to_host(
            network, uplink.dpid, target)


def _links_carrying(network, cell):
    """Return the core links that carry label-switched traffic to cell."""
    routes = core_routes(network)
    dpid = next(dpid for dpid, switch in network.switches.items()
                if switch.cell == cell)
    return [link for link in network.links
            if routes.port_toward(link.src_dpid, dpid) == link.src_port]


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_in_flight_labels_reach_the_host(name, network):
    walker = Walker(network)
    for target in network.hosts.values():
        inner = ipv4_packet(1, 'aa:00:00:00:99:99', '10.99.0.2',
                            target.address)
        for cell in {target.home_cell, network.cell_of(target.dpid)}:
            for link in _links_carrying(network, cell):
                packet = mpls_packet(link.dst_port, label_for_cell(cell),
                                     inner)

                result = walker.walk(packet, link.dst_dpid)

                _assert_delivered(result, network, target, '10.99.0.2')


def test_uplink_traffic_to_outside_address_is_dropped():
    network = scenarios.star()
    uplink = network.uplinks[0]
    packet = ipv4_packet(uplink.port, uplink.next_hop_mac, INTERNET,
                         '198.18.0.1')

    result = Walker(network).walk(packet, uplink.dpid)

    assert result.outcome == DROP
    assert result.path == (uplink.dpid,)


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_spoofed_source_address_is_dropped_at_its_switch(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        packet = ipv4_packet(source.port, source.mac, '10.9.9.9',
                             INTERNET)

        result = walker.walk(packet, source.dpid)

        assert result.outcome == DROP, str(result)
        assert result.path == (source.dpid,)


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_unknown_source_goes_to_controller(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        stranger = ipv4_packet(source.port, 'aa:00:00:00:77:77',
                               '10.7.0.2', INTERNET)
        other_port = 2 if source.port == 1 else 1
        moved = ipv4_packet(other_port, source.mac, source.address,
                            INTERNET)

        for packet in (stranger, moved):
            result = walker.walk(packet, source.dpid)

            assert result.outcome == CONTROLLER, str(result)
            assert result.dpid == source.dpid


def test_moved_host_reaches_controller():
    network = scenarios.star()
    host = network.hosts[ROAMER]
    packet = ipv4_packet(2, host.mac, host.address, INTERNET)

    result = Walker(network).walk(packet, 3)

    assert result.outcome == CONTROLLER
    assert result.dpid == 3


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_dhcp_and_gateway_ping_go_to_controller(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        packets = [
            dhcp_packet(source.port, source.mac),
            dhcp_packet(source.port, source.mac, source.address,
                        source.gateway),
            ipv4_packet(source.port, source.mac, source.address,
                        source.gateway, ip_proto=1),
        ]
        for packet in packets:
            result = walker.walk(packet, source.dpid)

            assert result.outcome == CONTROLLER, str(result)
            assert result.dpid == source.dpid


def _assert_arp_reply(result, network, host):
    gateway_mac = network.settings.gateway_mac
    assert result.outcome == HOST, str(result)
    assert (result.dpid, result.port) == (host.dpid, host.port)
    assert result.path == (host.dpid,)
    assert result.packet['eth_type'] == 0x0806
    assert result.packet['eth_src'] == gateway_mac
    assert result.packet['eth_dst'] == host.mac
    assert result.packet['arp_op'] == 2
    assert result.packet['arp_sha'] == gateway_mac
    assert result.packet['arp_spa'] == host.gateway
    assert result.packet['arp_tha'] == host.mac
    assert result.packet['arp_tpa'] == host.address


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_gateway_arp_gets_reply_at_host_port(name, network):
    walker = Walker(network)
    for host in network.hosts.values():
        broadcast = arp_packet(host.port, host.mac, host.address,
                               host.gateway)
        # Linux refreshes a stale entry with a request sent unicast to
        # the MAC it holds.
        unicast = arp_packet(host.port, host.mac, host.address,
                             host.gateway,
                             eth_dst=network.settings.gateway_mac,
                             arp_tha=network.settings.gateway_mac)

        for packet in (broadcast, unicast):
            result = walker.walk(packet, host.dpid)

            _assert_arp_reply(result, network, host)
            assert [describe_cookie(flow.cookie).kind
                    for _, flow in result.hits] == [Kind.ARP_REPLY]


def test_arp_reply_carries_custom_gateway_mac():
    network = scenarios.star(Settings(gateway_mac='02:aa:00:00:00:01'))
    host = network.hosts[ROAMER]
    packet = arp_packet(host.port, host.mac, host.address, host.gateway)

    result = Walker(network).walk(packet, host.dpid)

    _assert_arp_reply(result, network, host)
    assert result.packet['eth_src'] == '02:aa:00:00:00:01'


def _arp_left_to_controller(network, host):
    """Return ARP frames from a host's port that go to the controller."""
    others = [other for other in network.hosts.values() if other is not host]
    frames = {
        'probe': arp_packet(host.port, host.mac, '0.0.0.0', host.gateway),
        'probe of own address': arp_packet(host.port, host.mac, '0.0.0.0',
                                           host.address),
        'announcement': arp_packet(host.port, host.mac, host.address,
                                   host.address),
        'reply': arp_packet(host.port, host.mac, host.address,
                            host.gateway, arp_op=2),
        'other sender MAC': arp_packet(host.port, host.mac, host.address,
                                       host.gateway,
                                       arp_sha='aa:00:00:00:77:77'),
        'stranger': arp_packet(host.port, 'aa:00:00:00:77:77',
                               host.address, host.gateway),
        'internet address': arp_packet(host.port, host.mac, host.address,
                                       INTERNET),
    }
    for other in others:
        frames['address of %s' % other.mac] = arp_packet(
            host.port, host.mac, host.address, other.address)
        frames['gateway of %s' % other.mac] = arp_packet(
            host.port, host.mac, host.address, other.gateway)
    return frames


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_other_arp_goes_to_controller(name, network):
    walker = Walker(network)
    for host in network.hosts.values():
        for case, packet in _arp_left_to_controller(network, host).items():
            result = walker.walk(packet, host.dpid)

            assert result.outcome == CONTROLLER, '%s: %s' % (case, result)
            assert result.dpid == host.dpid, case
            assert result.packet == packet, case


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_moved_host_arp_goes_to_controller(name, network):
    # The controller detects a move from the host's first frame at another
    # switch or port, so no other switch or port may reply to it.
    walker = Walker(network)
    for host in network.hosts.values():
        packet = arp_packet(0, host.mac, host.address, host.gateway)
        for dpid, switch in network.switches.items():
            for port in switch.ports_with_role(PortRole.ACCESS):
                if (dpid, port) == (host.dpid, host.port):
                    continue
                packet['in_port'] = port

                result = walker.walk(packet, dpid)

                assert result.outcome == CONTROLLER, str(result)
                assert result.dpid == dpid


@pytest.mark.parametrize('name, network', SCENARIOS, ids=IDS)
def test_unbound_pool_address_drops_at_its_cell(name, network):
    walker = Walker(network)
    for source in network.hosts.values():
        for cell in network.cell_pools:
            packet = ipv4_packet(source.port, source.mac, source.address,
                                 '10.%d.200.2' % cell)

            result = walker.walk(packet, source.dpid)

            assert result.outcome == DROP, str(result)
            assert result.dpid == cell
            assert list(result.path) == _path(network, source.dpid, cell)


@pytest.mark.parametrize('destination', ['255.255.255.255', '224.0.0.251',
                                         '239.1.2.3'])
def test_broadcast_and_multicast_drop_at_source(destination):
    network = scenarios.star()
    host = network.hosts[ROAMER]
    packet = ipv4_packet(host.port, host.mac, host.address, destination,
                         ip_proto=17, udp_src=5353, udp_dst=5353)

    result = Walker(network).walk(packet, host.dpid)

    assert result.outcome == DROP
    assert result.path == (host.dpid,)


def test_ttl_one_is_dropped_where_decremented():
    network = scenarios.star()
    source = network.hosts['aa:00:00:00:02:00']
    target = network.hosts['aa:00:00:00:03:00']
    packet = ipv4_packet(source.port, source.mac, source.address,
                         target.address, ip_ttl=1)

    result = Walker(network).walk(packet, source.dpid)

    assert result.outcome == DROP
    assert result.reason == 'IPv4 TTL expired'
    assert result.dpid == target.dpid


def test_unreachable_cell_drops_without_loop():
    network = scenarios.build_network(
        cells=(1, 2, 3), edges=((1, 2),), hosts=((1, 1, 1), (3, 3, 1)),
        uplinks=((1, True),))
    source = network.hosts['aa:00:00:00:01:00']
    target = network.hosts['aa:00:00:00:03:00']
    packet = ipv4_packet(source.port, source.mac, source.address,
                         target.address)

    result = Walker(network).walk(packet, source.dpid)

    assert result.outcome == DROP
    assert result.path == (1,)


def test_hosts_behind_one_access_port_reach_each_other():
    network = scenarios.build_network(
        cells=(1, 2), edges=((1, 2),), hosts=((1, 1, 1), (2, 1, 1)))
    source = network.hosts['aa:00:00:00:01:00']
    target = network.hosts['aa:00:00:00:02:00']
    packet = ipv4_packet(source.port, source.mac, source.address,
                         target.address)

    result = Walker(network).walk(packet, source.dpid)

    _assert_delivered(result, network, target, source.address)
    assert result.path == (1,)

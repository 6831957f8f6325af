"""The network model rejects inconsistent input with an error naming it."""

import dataclasses

import pytest

from openflow_rules import (
    CoreLink, HostPlacement, Network, PortRole, Settings, Switch, Uplink)
from openflow_rules import scenarios


def _switch(dpid, cell=None, **roles):
    ports = {int(name[1:]): role for name, role in roles.items()}
    return Switch(dpid, cell or dpid, ports)


def test_star_scenario_is_valid():
    network = scenarios.star()

    assert sorted(network.switches) == [1, 2, 3, 4]
    assert len(network.links) == 6


def test_switch_rejects_unknown_port_role():
    with pytest.raises(ValueError, match="role 'trunk'"):
        Switch(1, 1, {1: 'trunk'})


@pytest.mark.parametrize('cell', [0, 255])
def test_switch_rejects_cell_out_of_range(cell):
    with pytest.raises(ValueError, match='out of range 1..254'):
        Switch(1, cell, {})


def test_network_rejects_two_switches_in_one_cell():
    with pytest.raises(ValueError, match='both claim cell 5'):
        Network({1: Switch(1, 5, {}), 2: Switch(2, 5, {})})


def test_network_rejects_switch_under_other_dpid():
    with pytest.raises(ValueError, match='switches'):
        Network({2: Switch(1, 1, {})})


def test_network_rejects_link_on_access_port():
    switches = {1: _switch(1, p1=PortRole.CORE),
                2: _switch(2, p1=PortRole.ACCESS)}

    with pytest.raises(ValueError, match='port 1 of switch 2'):
        Network(switches, links={CoreLink(1, 1, 2, 1)})


def test_network_rejects_link_to_unknown_switch():
    with pytest.raises(ValueError, match='switch 9'):
        Network({1: _switch(1, p1=PortRole.CORE)},
                links={CoreLink(1, 1, 9, 1)})


def test_network_rejects_uplink_on_access_port():
    uplink = Uplink(1, 1, '198.51.100.1/30', '198.51.100.2')

    with pytest.raises(ValueError, match='not an uplink port'):
        Network({1: _switch(1, p1=PortRole.ACCESS)}, uplinks=(uplink,))


def test_uplink_rejects_next_hop_off_subnet():
    with pytest.raises(ValueError, match='not another address'):
        Uplink(1, 1, '198.51.100.1/30', '198.51.100.9')


def test_uplink_rejects_address_without_prefix():
    with pytest.raises(ValueError, match='a.b.c.d/nn'):
        Uplink(1, 1, '198.51.100.1', '198.51.100.2')


def test_network_rejects_overlapping_pools():
    with pytest.raises(ValueError, match='overlap'):
        Network({1: _switch(1)},
                cell_pools={1: '10.1.0.0/16', 2: '10.1.128.0/17'})


def test_network_rejects_multicast_pool():
    with pytest.raises(ValueError, match='multicast'):
        Network({1: _switch(1)}, cell_pools={1: '224.1.0.0/16'})


def test_network_rejects_pool_with_host_bits():
    with pytest.raises(ValueError, match='invalid pool'):
        Network({1: _switch(1)}, cell_pools={1: '10.1.0.1/16'})


@pytest.mark.parametrize('address, gateway', [
    ('10.1.0.1', '10.1.0.0'),
    ('10.1.0.2', '10.1.0.3'),
    ('10.1.0.6', '10.1.0.1'),
])
def test_host_rejects_address_outside_slash_30_layout(address, gateway):
    with pytest.raises(ValueError, match='do not form a /30'):
        HostPlacement('aa:00:00:00:00:01', address, gateway, 1, 1, 1)


def test_network_rejects_host_outside_home_pool():
    host = HostPlacement('aa:00:00:00:00:01', '10.2.0.2', '10.2.0.1', 1,
                         1, 1)

    with pytest.raises(ValueError, match='not in the pool'):
        Network({1: _switch(1, p1=PortRole.ACCESS)}, hosts={host.mac: host},
                cell_pools={1: '10.1.0.0/16'})


def test_network_rejects_host_on_core_port():
    network = scenarios.star()
    host = network.hosts['aa:00:00:00:01:00']

    with pytest.raises(ValueError, match='not an access port'):
        network.replace_host(dataclasses.replace(host, port=11))


def test_network_rejects_two_hosts_with_one_address():
    network = scenarios.star()
    host = network.hosts['aa:00:00:00:01:00']
    twin = dataclasses.replace(host, mac='aa:00:00:00:09:09')

    with pytest.raises(ValueError, match='share the address 10.1.0.2'):
        network.replace_host(twin)


def test_network_rejects_host_without_home_pool():
    host = HostPlacement('aa:00:00:00:00:01', '10.1.0.2', '10.1.0.1', 7, 1,
                         1)

    with pytest.raises(ValueError, match='home cell 7, which has no pool'):
        Network({1: _switch(1, p1=PortRole.ACCESS)}, hosts={host.mac: host},
                cell_pools={1: '10.1.0.0/16'})


def test_settings_rejects_multicast_gateway_mac():
    with pytest.raises(ValueError, match='multicast'):
        Settings(gateway_mac='01:00:5e:00:00:01')


def test_settings_rejects_non_bool_switch():
    with pytest.raises(TypeError, match='route_optimisation'):
        Settings(route_optimisation='yes')


def test_host_mac_is_stored_lower_case():
    host = HostPlacement('AA:00:00:00:00:01', '10.1.0.2', '10.1.0.1', 1, 1,
                         1)

    assert host.mac == 'aa:00:00:00:00:01'


def test_replace_host_leaves_original_network_unchanged():
    network = scenarios.star()

    moved = scenarios.move(network, 'aa:00:00:00:01:00', 2, 2)

    assert network.hosts['aa:00:00:00:01:00'].dpid == 1
    assert moved.hosts['aa:00:00:00:01:00'].dpid == 2
    assert moved.is_roaming(moved.hosts['aa:00:00:00:01:00'])


def test_replace_host_equals_network_built_from_scratch():
    network = scenarios.star()
    host = dataclasses.replace(network.hosts['aa:00:00:00:01:00'], dpid=3,
                               port=2)

    replaced = network.replace_host(host)
    rebuilt = Network(network.switches, network.links, network.uplinks,
                      dict(network.hosts, **{host.mac: host}),
                      network.cell_pools, network.settings)

    assert replaced == rebuilt


def test_replaced_host_address_is_free_for_another_host():
    network = scenarios.star()
    old = network.hosts['aa:00:00:00:01:00']
    moved_address = dataclasses.replace(old, address='10.1.0.10',
                                        gateway='10.1.0.9')
    newcomer = dataclasses.replace(old, mac='aa:00:00:00:09:09')

    network = network.replace_host(moved_address).replace_host(newcomer)

    assert network.hosts['aa:00:00:00:09:09'].address == '10.1.0.2'


def test_remove_host_frees_its_address():
    network = scenarios.star()
    old = network.hosts['aa:00:00:00:01:00']
    newcomer = dataclasses.replace(old, mac='aa:00:00:00:09:09')

    network = network.remove_host(old.mac).replace_host(newcomer)

    assert old.mac not in network.hosts
    assert network.hosts[newcomer.mac].address == old.address


def test_remove_host_rejects_unknown_mac():
    with pytest.raises(KeyError, match='not in the network'):
        scenarios.star().remove_host('aa:00:00:00:09:09')

"""Real DHCP clients get their /30 from TMip and keep it when they move."""

import ipaddress
import time

import pytest

from emulation import (binding_of, emulation_factory,  # noqa: F401
                       tmip, wait_binding_cell)

pytestmark = pytest.mark.integration


def _assert_home_slash30(state, cell):
    interface = state['interface']
    network = interface.network
    assert interface.network.prefixlen == 30
    assert interface.ip == network.network_address + 2
    assert state['router'] == network.network_address + 1
    assert state['broadcast'] == network.broadcast_address
    assert network.subnet_of(ipaddress.IPv4Network('10.%d.0.0/16' % cell))


@pytest.mark.parametrize('client', ['dhclient', 'udhcpc', 'dhcpcd'])
def test_client_gets_slash30_with_route_and_broadcast(tmip, client):
    emulation, controller = tmip(cells=2, hosts=1, dhcp=False,
                                 dhcp_client=client)
    host = emulation.host(2)

    state = emulation.start_dhcp([host])[host.name]

    _assert_home_slash30(state, 2)
    binding = binding_of(controller, host)
    assert binding['address'] == str(state['interface'].ip)
    assert binding['home_cell'] == 2


def test_hosts_of_one_cell_get_different_blocks(tmip):
    emulation, _controller = tmip(cells=1, hosts=3)

    networks = {ipaddress.IPv4Interface(emulation.address(emulation.host(n))
                                        + '/30').network
                for n in (1, 2, 3)}

    assert len(networks) == 3


@pytest.mark.parametrize('client', ['udhcpc', 'dhclient'])
def test_renewal_in_foreign_cell_keeps_home_address(tmip, client):
    emulation, controller = tmip(cells=2, hosts=1, dhcp_client=client)
    host = emulation.host(1)
    home_state = host.dhcp.wait_bound()
    emulation.move(host, 2)
    renewed_at = time.time()

    # udhcpc renews (RENEWING, unicast to the server), and dhclient
    # restarts and requests its recorded lease (INIT-REBOOT).  Either
    # request is the host's first frame in cell 2.
    host.dhcp.renew()
    state = host.dhcp.wait_bound(timeout=30, since=renewed_at)

    assert state['interface'] == home_state['interface']
    assert state['router'] == home_state['router']
    assert state['broadcast'] == home_state['broadcast']
    wait_binding_cell(controller, host, 2)
    binding = binding_of(controller, host)
    assert binding['address'] == str(home_state['interface'].ip)
    assert binding['home_cell'] == 1
    assert binding['roaming'] is True

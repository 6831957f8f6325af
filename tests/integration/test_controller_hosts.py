"""ryu-manager tmip_ryu.apps with real OVS bridges and namespace hosts.

Two or three cells joined by patch ports, hosts in network namespaces,
and a real dhclient: what a user of the controller sees first.
"""

import itertools
import os
import re

import pytest

from support.netns import Host
from support.ovs import dump_flows, is_connected, run
from support.processes import wait_for

pytestmark = pytest.mark.integration

_host_numbers = itertools.count(1)


class Cells:
    """Bridges 1..N in a line, joined by patch ports, and their hosts."""

    def __init__(self, bridges, controller, count, workdir):
        self.controller = controller
        self.workdir = workdir
        self.names = [bridges.add(i, i, controller.of_target)
                      for i in range(1, count + 1)]
        for left, right in zip(self.names, self.names[1:]):
            self._patch(left, right)
        self.hosts = []
        for name in self.names:
            wait_for(lambda: is_connected(name), 15,
                     message='%s to connect' % name)

    def _patch(self, left, right):
        a, b = 'p%s' % left[-6:], 'p%s' % right[-6:]
        a, b = a + 'r', b + 'l'
        run('ovs-vsctl', 'add-port', left, a, '--', 'set', 'interface', a,
            'type=patch', 'options:peer=%s' % b, '--', 'add-port', right,
            b, '--', 'set', 'interface', b, 'type=patch',
            'options:peer=%s' % a)

    def bridge(self, cell):
        return self.names[cell - 1]

    def add_host(self, cell):
        number = next(_host_numbers)
        name = 'tmh%d-%d' % (os.getpid() % 10000, number)
        mac = '02:00:00:aa:%02x:%02x' % (os.getpid() % 256, number % 256)
        host = Host(name, mac, self.workdir)
        self.hosts.append(host)
        host.attach(self.bridge(cell))
        return host

    def wait_for_links(self, count):
        """Wait until LLDP has found ``count`` link directions."""
        wait_for(lambda: len(self.controller.get('/tmip/topology')['links'])
                 >= count, 30, interval=0.5, message='core links')

    def remove(self):
        for host in self.hosts:
            host.remove()


@pytest.fixture
def cells(controller_factory, bridges, tmp_path):
    """Start a controller and return a factory of N cells."""
    made = []

    def build(count, config_text=None):
        controller = controller_factory(config_text)
        network = Cells(bridges, controller, count, str(tmp_path))
        made.append(network)
        return network

    yield build
    for network in made:
        network.remove()


def test_dhclient_gets_a_30_and_default_route(cells):
    network = cells(1)
    host = network.add_host(1)

    assert host.dhclient() == 0, host.dhclient_output

    address = host.address()
    assert address is not None
    assert address.startswith('10.1.') and address.endswith('/30')
    route = host.ns('ip', '-4', 'route', 'show', 'default')
    assert 'via' in route
    binding = network.controller.get('/tmip/hosts/%s' % host.mac)
    assert binding['address'] == address.split('/')[0]
    assert binding['home_cell'] == 1


def test_host_pings_its_gateway(cells):
    network = cells(1)
    host = network.add_host(1)
    assert host.dhclient() == 0, host.dhclient_output
    gateway = network.controller.get('/tmip/hosts/%s' % host.mac)['gateway']

    assert host.ping(gateway)


def test_hosts_in_two_cells_ping_each_other(cells):
    network = cells(2)
    network.wait_for_links(2)
    first = network.add_host(1)
    second = network.add_host(2)
    assert first.dhclient() == 0, first.dhclient_output
    assert second.dhclient() == 0, second.dhclient_output

    assert first.ping(second.address().split('/')[0])
    assert second.ping(first.address().split('/')[0])


def test_move_keeps_address_and_flows_match_rules(cells):
    network = cells(3)
    network.wait_for_links(4)
    mover = network.add_host(1)
    peer = network.add_host(3)
    assert mover.dhclient() == 0, mover.dhclient_output
    assert peer.dhclient() == 0, peer.dhclient_output
    address = mover.address().split('/')[0]

    mover.attach(network.bridge(2))
    # The first frame at the new cell starts the hand-over.
    assert mover.ping(peer.address().split('/')[0], count=5)

    binding = network.controller.get('/tmip/hosts/%s' % mover.mac)
    assert binding['cell'] == 2
    assert binding['address'] == address
    assert mover.address().split('/')[0] == address
    handovers = network.controller.get('/tmip/handovers')
    assert handovers[-1]['status'] == 'committed'
    for cell, bridge in enumerate(network.names, start=1):
        expected = network.controller.get('/tmip/flows/%d' % cell)
        assert flows_match(bridge, expected['expected'])


_FIELD = re.compile(r'(cookie|table|priority)=(0x[0-9a-f]+|\d+)')


def flow_keys(lines):
    """Return sorted (cookie, table, priority) of ovs-ofctl flow lines."""
    keys = []
    for line in lines:
        if line.startswith('#') or not line.strip():
            continue
        fields = dict(_FIELD.findall(line))
        keys.append((int(fields['cookie'], 0), int(fields.get('table', 0)),
                     int(fields.get('priority', 32768))))
    return sorted(keys)


def flows_match(bridge, expected_lines):
    """Compare a bridge's TMip flows with the controller's expected text.

    Each flow's cookie names its kind and owner, so equal (cookie, table,
    priority) lists mean no flow is missing and none is left over.
    """
    from openflow_rules import TMIP_COOKIE, TMIP_COOKIE_MASK
    held = dump_flows(bridge, '0x%x/0x%x' % (TMIP_COOKIE, TMIP_COOKIE_MASK))
    assert held, 'no TMip flows on %s' % bridge
    assert flow_keys(held) == flow_keys(expected_lines)
    return True


def test_restart_keeps_leases_and_forwarding(cells, controller_factory):
    network = cells(2)
    network.wait_for_links(2)
    first = network.add_host(1)
    second = network.add_host(2)
    assert first.dhclient() == 0, first.dhclient_output
    assert second.dhclient() == 0, second.dhclient_output
    before = network.controller.get('/tmip/hosts')
    target = second.address().split('/')[0]
    assert first.ping(target)

    network.controller.kill()
    # Flows stay in the switches while the controller is down, and the
    # switch itself answers the host's ARP for its gateway.
    first.ns('ip', 'neigh', 'flush', 'dev', first.intf)
    assert first.ping(target)

    network.controller.start()
    wait_for(lambda: all(is_connected(b) for b in network.names), 20,
             message='bridges to reconnect')
    after = network.controller.get('/tmip/hosts')
    assert [(h['mac'], h['address']) for h in after] == \
        [(h['mac'], h['address']) for h in before]
    assert first.ping(target)
    # A DHCP exchange after the restart gets the same address back.
    leased = {h['mac']: h['address'] for h in before}
    assert first.dhclient() == 0, first.dhclient_output
    assert first.address().split('/')[0] == leased[first.mac]

"""Example networks for tests, golden files, benchmarks and docs.

build_network() makes a network from a short description.  star() and
ring() are the fixed topologies the tests and docs use.  In every
example the switch of cell c has dpid c, access ports 1..n, core ports
from 11 upward (one per neighbour, in the order of the edges) and, when
it has one, its uplink on port 100.  Host i of home cell c has MAC
aa:00:00:00:cc:ii (in hexadecimal) and the i-th /30 of 10.c.0.0/16.
"""

import ipaddress

from openflow_rules.network import (
    HostPlacement, Network, PortRole, Settings, Switch, Uplink,
    core_link_pair, default_pool)

UPLINK_PORT = 100
FIRST_CORE_PORT = 11


def host_mac(home_cell, index):
    """Return the MAC of host index (from 0) of a home cell."""
    return 'aa:00:00:00:%02x:%02x' % (home_cell, index)


def host_placement(home_cell, index, dpid, port, pool=None):
    """Return host index of home_cell placed at (dpid, port)."""
    network = ipaddress.IPv4Network(pool or default_pool(home_cell))
    base = network.network_address + 4 * index
    return HostPlacement(host_mac(home_cell, index), str(base + 2),
                         str(base + 1), home_cell, dpid, port)


def uplink_for(cell, resolved=True):
    """Return the example uplink of a cell, on port UPLINK_PORT."""
    return Uplink(cell, UPLINK_PORT, '100.64.%d.1/30' % cell,
                  '100.64.%d.2' % cell,
                  '0e:00:00:00:00:%02x' % cell if resolved else None)


def build_network(cells, edges, hosts=(), uplinks=(), settings=None,
                  access_ports=2, transit=()):
    """Return a network made from a short description.

    cells: the cell numbers.  The switch of cell c has dpid c.
    edges: (cell_a, cell_b) pairs, each a core link in both directions.
    hosts: (home_cell, at_cell, port) triples.  The hosts of one home
    cell are numbered from 0 in the order given.
    uplinks: (cell, resolved) pairs.
    transit: cells whose switch has no access ports.
    """
    cells = sorted(cells)
    ports = {cell: {} for cell in cells}
    for cell in cells:
        if cell not in transit:
            for port in range(1, access_ports + 1):
                ports[cell][port] = PortRole.ACCESS
    links = set()
    next_core_port = {cell: FIRST_CORE_PORT for cell in cells}
    for cell_a, cell_b in edges:
        port_a, port_b = next_core_port[cell_a], next_core_port[cell_b]
        next_core_port[cell_a] += 1
        next_core_port[cell_b] += 1
        ports[cell_a][port_a] = PortRole.CORE
        ports[cell_b][port_b] = PortRole.CORE
        links |= core_link_pair(cell_a, port_a, cell_b, port_b)
    uplink_list = []
    for cell, resolved in uplinks:
        ports[cell][UPLINK_PORT] = PortRole.UPLINK
        uplink_list.append(uplink_for(cell, resolved))
    placements = {}
    counts = {}
    for home_cell, at_cell, port in hosts:
        index = counts.get(home_cell, 0)
        counts[home_cell] = index + 1
        host = host_placement(home_cell, index, at_cell, port)
        placements[host.mac] = host
    return Network(
        switches={cell: Switch(cell, cell, ports[cell]) for cell in cells},
        links=frozenset(links),
        uplinks=tuple(uplink_list),
        hosts=placements,
        cell_pools={cell: default_pool(cell) for cell in cells},
        settings=settings or Settings())


def star(settings=None):
    """Return three cells around a transit cell 4, at home.

    Cell 1 has a resolved uplink and cell 3 one whose next hop is not
    resolved yet.  Hosts: aa:00:00:00:01:00 and aa:00:00:00:01:01 at cell
    1 (ports 1 and 2), aa:00:00:00:02:00 at cell 2 and aa:00:00:00:03:00
    at cell 3 (port 1).
    """
    return build_network(
        cells=(1, 2, 3, 4), edges=((1, 4), (2, 4), (3, 4)),
        hosts=((1, 1, 1), (1, 1, 2), (2, 2, 1), (3, 3, 1)),
        uplinks=((1, True), (3, False)), settings=settings, transit=(4,))


def ring(cells=4, settings=None):
    """Return cells 1..n in a ring, one host at home in each, uplink at 1."""
    numbers = range(1, cells + 1)
    return build_network(
        cells=numbers,
        edges=[(cell, cell % cells + 1) for cell in numbers],
        hosts=[(cell, cell, 1) for cell in numbers],
        uplinks=((1, True),), settings=settings)


def move(network, mac, dpid, port):
    """Return the network with a host moved to (dpid, port)."""
    host = network.hosts[mac]
    return network.replace_host(HostPlacement(
        host.mac, host.address, host.gateway, host.home_cell, dpid, port))


def golden_scenarios():
    """Return the networks whose flows tests/golden holds, by name."""
    roamer = host_mac(1, 0)
    star_home = star()
    return {
        'star_home': star_home,
        'star_roaming': move(star_home, roamer, 2, 2),
        'ring_roaming_reverse': move(
            ring(4, Settings(route_optimisation=False,
                             reverse_tunnelling=True)),
            roamer, 3, 2),
    }

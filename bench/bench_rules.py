"""Time openflow_rules on a large network: flows per switch and plans.

The network: 100 cells in a 10 x 10 grid of core links, 8 access ports
per cell, uplinks at the four corner cells, and 10,000 hosts (100 per
home cell), of which 10% roam to a random other cell.  The script prints
the time to build the network, to compute each switch's flows, the flow
count per switch, and the time of a hand-over plan for one host, both
through the full per-switch diff and through handover_plan_for_host.

Run it as:  .venv/bin/python bench/bench_rules.py [--seed N]
"""

import argparse
import dataclasses
import os
import platform
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from openflow_rules import (  # noqa: E402 (needs the path above)
    Network, Settings, desired_flows, diff, handover_plan,
    handover_plan_for_host)
from openflow_rules import scenarios  # noqa: E402

SIDE = 10
HOSTS_PER_CELL = 100
ROAMING_SHARE = 0.10
ACCESS_PORTS = 8
PLAN_SAMPLES = 300


def grid_edges(side):
    """Return the core links of a side x side grid of cells 1..side**2."""
    edges = []
    for row in range(side):
        for column in range(side):
            cell = row * side + column + 1
            if column + 1 < side:
                edges.append((cell, cell + 1))
            if row + 1 < side:
                edges.append((cell, cell + side))
    return edges


def build(rng, settings):
    """Return the benchmark network with the given settings."""
    cells = list(range(1, SIDE * SIDE + 1))
    hosts = []
    for home in cells:
        for _ in range(HOSTS_PER_CELL):
            at = home
            if rng.random() < ROAMING_SHARE:
                at = rng.choice([cell for cell in cells if cell != home])
            hosts.append((home, at, rng.randint(1, ACCESS_PORTS)))
    corners = (1, SIDE, SIDE * (SIDE - 1) + 1, SIDE * SIDE)
    return scenarios.build_network(
        cells, grid_edges(SIDE), hosts,
        uplinks=[(cell, True) for cell in corners], settings=settings,
        access_ports=ACCESS_PORTS)


def timed(function, *args):
    """Call function and return (result, seconds)."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def milliseconds(seconds):
    return '%.2f ms' % (seconds * 1000)


def summary(seconds):
    """Return the median and maximum of a list of durations, as text."""
    return 'median %s, max %s' % (milliseconds(statistics.median(seconds)),
                                  milliseconds(max(seconds)))


def random_move(rng, network):
    """Return (mac, new placement) for a random host to a random port."""
    mac = rng.choice(sorted(network.hosts))
    host = network.hosts[mac]
    return mac, dataclasses.replace(
        host, dpid=rng.choice(sorted(network.switches)),
        port=rng.randint(1, ACCESS_PORTS))


def bench_settings(label, settings, seed):
    """Print the figures for one choice of settings."""
    rng = random.Random(seed)
    print('\n== %s ==' % label)
    network, seconds = timed(build, rng, settings)
    print('build and validate the network: %s (%d switches, %d hosts)'
          % (milliseconds(seconds), len(network.switches),
             len(network.hosts)))

    dpids = sorted(network.switches)
    first, seconds = timed(desired_flows, dpids[0], network)
    print('first switch, cold (paths and host index built): %s'
          % milliseconds(seconds))
    times, counts = [], [len(first)]
    for dpid in dpids[1:]:
        flows, seconds = timed(desired_flows, dpid, network)
        times.append(seconds)
        counts.append(len(flows))
    print('one switch\'s full flow set: %s' % summary(times))
    print('flows per switch: min %d, median %d, max %d'
          % (min(counts), statistics.median(counts), max(counts)))

    plan_times, change_counts = [], []
    for _ in range(PLAN_SAMPLES):
        mac, placement = random_move(rng, network)
        plan, seconds = timed(handover_plan_for_host, network, mac,
                              placement)
        plan_times.append(seconds)
        change_counts.append(len(plan))
    print('handover_plan_for_host, %d random moves: %s'
          % (PLAN_SAMPLES, summary(plan_times)))
    print('switches changed per move: median %d, max %d'
          % (statistics.median(change_counts), max(change_counts)))

    _, seconds = timed(Network, network.switches, network.links,
                       network.uplinks, network.hosts, network.cell_pools,
                       network.settings)
    print('Network() again from the same placements: %s'
          % milliseconds(seconds))
    mac, placement = random_move(rng, network)
    after, seconds = timed(network.replace_host, placement)
    print('Network.replace_host (validates the new placement): %s'
          % milliseconds(seconds))
    _, seconds = timed(handover_plan, network, after)
    print('handover_plan(before, after), hosts compared: %s'
          % milliseconds(seconds))
    start = time.perf_counter()
    for dpid in dpids:
        diff(desired_flows(dpid, network), desired_flows(dpid, after))
    print('full diff of every switch for the same move: %s'
          % milliseconds(time.perf_counter() - start))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=1,
                        help='seed of the random placements and moves')
    args = parser.parse_args()
    print('openflow_rules benchmark: %d cells, %d hosts, %d%% roaming'
          % (SIDE * SIDE, SIDE * SIDE * HOSTS_PER_CELL,
             ROAMING_SHARE * 100))
    print('Python %s on %s, %d CPUs' % (platform.python_version(),
                                        platform.machine(), os.cpu_count()))
    bench_settings('route optimisation on',
                   Settings(route_optimisation=True), args.seed)
    bench_settings('route optimisation off, reverse tunnelling on',
                   Settings(route_optimisation=False,
                            reverse_tunnelling=True), args.seed)


if __name__ == '__main__':
    main()

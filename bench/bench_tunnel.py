"""Tunnel cost: throughput and RTT to a host at home and roaming.

``ext``, the correspondent behind the uplink router, measures ``h1``
first at home (cell 1: router, cell 1, host) and then roaming in
another cell (router, cell 1, MPLS over the core switch to the
current cell, host), alternating ``--rounds`` times.  Each measurement
is an iperf3 TCP session at full speed (``-t --seconds``, JSON output)
and a ping series (``--pings`` echo requests 10 ms apart), never both at
once.  It reports each figure's median over the rounds and the ratio
roaming / home.

Run as root from the repository::

    .venv/bin/python bench/bench_tunnel.py [--quick]

Results go to bench/results/<time>-tunnel.json and .md.  It prints
figures and asserts nothing.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import harness
from harness import tmip_topo, tmip_traffic

IPERF_PORT = 5301
DEFAULTS = {'cells': 3, 'roam_cell': 3, 'rounds': 3, 'seconds': 10,
            'pings': 200}
QUICK = {'rounds': 2, 'seconds': 4, 'pings': 100}


def iperf_throughput(client, server, address, seconds, run_dir, label):
    """Run one iperf3 TCP session; return Mbit/s received and retransmits.

    The session runs at full speed.  Its JSON report is kept in the run
    directory; a session that fails gives None figures and its error.
    """
    report_path = os.path.join(run_dir, 'iperf-%s.json' % label)
    server_process = server.popen(
        ['iperf3', '-s', '-1', '-p', str(IPERF_PORT)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        tmip_traffic.wait_listening(server, 'tcp', IPERF_PORT)
        with open(report_path, 'wb') as report:
            client_process = client.popen(
                ['iperf3', '-c', address, '-p', str(IPERF_PORT), '-t',
                 str(seconds), '-J', '--connect-timeout', '5000'],
                stdin=subprocess.DEVNULL, stdout=report,
                stderr=subprocess.STDOUT)
        client_process.wait(seconds + 30)
    finally:
        harness.stop_process(server_process)
    try:
        with open(report_path) as report:
            body = json.load(report)
    except ValueError:
        return {'mbit_s': None, 'retransmits': None,
                'error': 'iperf3 wrote no JSON; see %s' % report_path}
    if 'error' in body:
        return {'mbit_s': None, 'retransmits': None, 'error': body['error']}
    end = body['end']
    return {'mbit_s': round(end['sum_received']['bits_per_second'] / 1e6,
                            1),
            'retransmits': end['sum_sent'].get('retransmits')}


_RTT = re.compile(r'rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/'
                  r'([\d.]+) ms')
_RECEIVED = re.compile(r'(\d+) received')


def ping_rtt(client, address, count):
    """Ping ``count`` times, 10 ms apart; return RTT figures in ms."""
    output = client.cmd('ping -n -q -c %d -i 0.01 -W 1 %s'
                        % (count, address))
    rtt = _RTT.search(output)
    received = _RECEIVED.search(output)
    if not rtt:
        return {'min': None, 'avg': None, 'max': None, 'mdev': None,
                'received': int(received.group(1)) if received else 0}
    low, mean, high, deviation = (float(value) for value in rtt.groups())
    return {'min': low, 'avg': mean, 'max': high, 'mdev': deviation,
            'received': int(received.group(1))}


def _median(values):
    numbers = [value for value in values if value is not None]
    return round(statistics.median(numbers), 3) if numbers else None


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def measure(tmip, options, run_dir):
    """Alternate home and roaming rounds; return every measurement."""
    host = tmip.node('h1')
    ext = tmip.node('ext')
    address = harness.host_address(host)
    if tmip_traffic.wait_ping(ext, address, timeout=30) is None:
        raise harness.BenchError('ext gets no reply from h1 (%s)' % address)
    rounds = []
    for number in range(1, options['rounds'] + 1):
        for place, cell in (('home', 1), ('roaming', options['roam_cell'])):
            tmip_topo.move(tmip.net, host, tmip.node('s%d' % cell))
            if tmip_traffic.wait_ping(ext, address, timeout=10) is None:
                raise harness.BenchError('ext gets no reply from h1 in '
                                         'cell %d' % cell)
            time.sleep(0.5)
            rtt = ping_rtt(ext, address, options['pings'])
            meter = harness.CpuMeter().start()
            throughput = iperf_throughput(ext, host, address,
                                          options['seconds'], run_dir,
                                          '%s-%d' % (place, number))
            throughput.update(meter.stop())
            rounds.append({'round': number, 'place': place, 'cell': cell,
                           'rtt_ms': rtt, 'throughput': throughput})
    return rounds


def run(quick=False, run_dir=None, **overrides):
    """Run the benchmark; return its results as a dict."""
    options = dict(DEFAULTS)
    if quick:
        options.update(QUICK)
    options.update({key: value for key, value in overrides.items()
                    if value is not None})
    run_dir = run_dir or harness.new_run_dir('tunnel')
    tmip = harness.TmipRun(run_dir, 'bt', cells=options['cells'],
                           hosts=':'.join(['1'] + ['0'] *
                                          (options['cells'] - 1)))
    try:
        tmip.start()
        rounds = measure(tmip, options, run_dir)
    finally:
        tmip.stop()

    places = {}
    for place in ('home', 'roaming'):
        mine = [entry for entry in rounds if entry['place'] == place]
        places[place] = {
            'mbit_s': _median(entry['throughput']['mbit_s']
                              for entry in mine),
            'retransmits': _median(entry['throughput']['retransmits']
                                   for entry in mine),
            'rtt_avg_ms': _median(entry['rtt_ms']['avg'] for entry in mine),
            'rtt_min_ms': _median(entry['rtt_ms']['min'] for entry in mine),
            'ovs_vswitchd_pct': _median(
                entry['throughput']['ovs_vswitchd_pct'] for entry in mine),
            'machine_busy_pct': _median(
                entry['throughput']['machine_busy_pct'] for entry in mine),
        }
    return {'benchmark': 'tunnel', 'options': options, 'run_dir': run_dir,
            'rounds': rounds, 'home': places['home'],
            'roaming': places['roaming'],
            'throughput_ratio': _ratio(places['roaming']['mbit_s'],
                                       places['home']['mbit_s']),
            'rtt_ratio': _ratio(places['roaming']['rtt_avg_ms'],
                                places['home']['rtt_avg_ms'])}


def summary_rows(results):
    """Return [figure, value, target] rows for the overall table."""
    home, roaming = results['home'], results['roaming']
    return [
        ['iperf3 TCP ext -> h1, home / roaming (median)',
         '%s / %s Mbit/s' % (home['mbit_s'], roaming['mbit_s']), ''],
        ['tunnelled throughput / home throughput',
         str(results['throughput_ratio']), '>= 0.9'],
        ['ping RTT ext -> h1, home / roaming (median of averages)',
         '%s / %s ms' % (home['rtt_avg_ms'], roaming['rtt_avg_ms']), ''],
        ['tunnelled RTT / home RTT', str(results['rtt_ratio']), ''],
        ['CPU during iperf3, home / roaming: machine busy, ovs-vswitchd',
         '%s%% / %s%%, %s%% / %s%% of one core' % (
             home['machine_busy_pct'], roaming['machine_busy_pct'],
             home['ovs_vswitchd_pct'], roaming['ovs_vswitchd_pct']), ''],
    ]


def markdown(results):
    """Return the benchmark's Markdown section."""
    options = results['options']
    rows = []
    for entry in results['rounds']:
        rtt, throughput = entry['rtt_ms'], entry['throughput']
        rows.append([entry['round'], entry['place'], entry['cell'],
                     throughput['mbit_s'], throughput['retransmits'],
                     throughput.get('ovs_vswitchd_pct'),
                     rtt['min'], rtt['avg'], rtt['max'],
                     '%s/%d' % (rtt['received'], options['pings'])])
    return '\n'.join([
        '## Tunnel cost\n',
        'ext -> h1: iperf3 %d s at full speed and %d pings per '
        'measurement, %d rounds; roaming in cell %d.\n'
        % (options['seconds'], options['pings'], options['rounds'],
           options['roam_cell']),
        harness.markdown_table(['figure', 'value', 'target'],
                               summary_rows(results)),
        '\n### Rounds\n',
        harness.markdown_table(
            ['round', 'place', 'cell', 'Mbit/s', 'retransmits',
             'ovs-vswitchd CPU %', 'RTT min ms', 'RTT avg ms',
             'RTT max ms', 'replies'], rows)])


def parse_arguments(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='2 rounds of 4 s instead of 3 of 10 s')
    parser.add_argument('--rounds', type=int,
                        help='home/roaming pairs to measure (default 3)')
    parser.add_argument('--seconds', type=int,
                        help='seconds of each iperf3 session (default 10)')
    parser.add_argument('--pings', type=int,
                        help='echo requests per measurement (default 200)')
    args = parser.parse_args(argv)
    for name in ('rounds', 'seconds', 'pings'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error('--%s must be 1 or more' % name)
    return args


def main(argv=None):
    """Run the benchmark from the command line; write and print results."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print('bench_tunnel.py needs root (Mininet and Open vSwitch)')
        return 2
    harness.prepare_process()
    machine = harness.describe_machine()
    results = run(quick=args.quick, rounds=args.rounds,
                  seconds=args.seconds, pings=args.pings)
    paths = harness.publish(results, machine,
                            harness.timestamp() + '-tunnel', markdown,
                            summary_rows)
    print('results: %s and %s' % paths)
    return 0


if __name__ == '__main__':
    sys.exit(main())

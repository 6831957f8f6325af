"""DHCP admission: perfdhcp against the controller and against Kea.

Kea's ``perfdhcp`` runs in a Mininet host and offers new clients at a
series of rates (``--rates``, one ``--seconds``-long step each, every
client a random new MAC).  It counts full four-way exchanges (DISCOVER,
OFFER, REQUEST, ACK) per second and their latency.  The same steps run
against:

- the TMip controller through a userspace OVS cell, first with the
  default packet-in meter and then with the meter raised to
  ``--meter-rate``, which shows the controller's own limit.  The
  default meter (1,000 packets/s per switch) allows 500 exchanges/s,
  because each exchange sends two packet-ins;
- Kea's ``kea-dhcp4`` (memfile leases in the run directory, one
  100.64.0.0/10 pool) in a Mininet host of its own behind a userspace
  OVS learning switch, reached the same way as the controller and, as a
  second figure, the way perfdhcp normally talks to a server.

perfdhcp 2.2 always relays DHCPv4: it sends from its own MAC with
``giaddr`` set and waits for replies on port 67.  The controller learns
a host from the source MAC of its first frame and ignores relayed
messages, so ``bench/dhcp_unrelay.py`` runs in the perfdhcp host and
turns each request into the client's own broadcast (source MAC =
``chaddr``, ``giaddr`` 0) and each reply back into a relayed one.  The
"same way" Kea figure goes through it too, so both servers see the same
frames; the "native" one is perfdhcp straight to Kea.

Run as root from the repository::

    .venv/bin/python bench/bench_dhcp.py [--quick]

Results go to bench/results/<time>-dhcp.json and .md.  It prints figures
and asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import harness
from harness import tmip_traffic

POOL = '100.64.0.0/10'
POOL_RANGE = '100.64.0.10 - 100.127.255.200'
KEA_ADDRESS = '100.127.255.253'
NATIVE_AGENT_ADDRESS = '100.127.255.254'
PREFIX_LENGTH = 10
# The veth pair perfdhcp and dhcp_unrelay.py use inside the client host,
# and the made-up server address replies to perfdhcp come from.
AGENT_INTERFACE = 'pd0'
UNRELAY_INTERFACE = 'pd1'
AGENT_NETWORK_ADDRESS = '198.51.100.2/24'
REPLY_SOURCE = '198.51.100.1'
# Random low three octets after this base give up to 16 million clients.
CLIENTS = 16_000_000
DROP_TIME = 1.0
EXIT_WAIT_US = 1_000_000
# An offered rate is sustained when at most this share of its exchanges
# fails.
SUSTAINED_LOSS = 0.01

DEFAULTS = {'rates': [50, 100, 250, 500, 1000, 2000, 4000], 'seconds': 5,
            'meter_rate': 100000, 'kea': True}
QUICK = {'rates': [100, 500, 2000], 'seconds': 3}
# After a step, the controller may still be working through a backlog of
# packet-ins.  The next step starts once its binding count has stopped
# growing for a second, or after this many seconds.
DRAIN_TIMEOUT = 30


class Perfdhcp:
    """perfdhcp runs from one Mininet host, one rate step at a time."""

    def __init__(self, host, interface, run_dir, mac_prefix):
        self.host = host
        self.interface = interface
        self.run_dir = run_dir
        self.mac_prefix = mac_prefix
        self.steps = 0

    def step(self, rate, seconds):
        """Offer ``rate`` new clients a second for ``seconds``; return dict.

        Each step's clients have a MAC base of their own, so no client of
        an earlier step comes back.
        """
        self.steps += 1
        base = '%s:%02x:00:00:00' % (self.mac_prefix, self.steps)
        args = ['perfdhcp', '-4', '-l', self.interface, '-r', str(rate),
                '-p', str(seconds), '-n', str(rate * seconds),
                '-R', str(CLIENTS), '-b', 'mac=' + base,
                '-d', str(DROP_TIME), '-W', str(EXIT_WAIT_US)]
        log_path = os.path.join(self.run_dir, 'perfdhcp-%d-%d.txt'
                                % (self.steps, rate))
        started = time.monotonic()
        with open(log_path, 'wb') as log:
            process = self.host.popen(args, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT)
            try:
                process.wait(seconds + 60)
            except subprocess.TimeoutExpired:
                harness.stop_process(process)
        with open(log_path, errors='replace') as log:
            report = parse_report(log.read())
        report.update(offered_rate=rate, seconds=seconds,
                      achieved_rate=round(report['completed'] / seconds, 1),
                      wall_seconds=round(time.monotonic() - started, 2),
                      exit_status=process.returncode, log=log_path)
        return report


_SECTION = re.compile(r'\*\*\*Statistics for: (\S+)\*\*\*')
_FIELDS = {
    'sent': re.compile(r'^sent packets: (\d+)', re.M),
    'received': re.compile(r'^received packets: (\d+)', re.M),
    'drops': re.compile(r'^drops: (\d+)', re.M),
    'min_ms': re.compile(r'^min delay: ([\d.]+) ms', re.M),
    'avg_ms': re.compile(r'^avg delay: ([\d.]+) ms', re.M),
    'max_ms': re.compile(r'^max delay: ([\d.]+) ms', re.M),
    'stddev_ms': re.compile(r'^std deviation: ([\d.]+) ms', re.M),
}


def parse_report(text):
    """Return the figures of perfdhcp's final report as a dict.

    ``rate`` is perfdhcp's four-way exchanges per second, which it
    divides by the whole run, exit wait included.  ``do`` and ``ra``
    are the DISCOVER-OFFER and REQUEST-ACK counters and delays.
    ``exchange_ms`` is the sum of their mean delays: the mean time of a
    whole exchange less perfdhcp's own turnaround.  Figures perfdhcp did
    not print are None.
    """
    rate = re.search(r'^Rate: ([\d.]+) 4-way exchanges/second', text, re.M)
    report = {'rate': float(rate.group(1)) if rate else None}
    parts = _SECTION.split(text)
    for name, body in zip(parts[1::2], parts[2::2]):
        key = {'DISCOVER-OFFER': 'do', 'REQUEST-ACK': 'ra'}.get(name)
        if key is None:
            continue
        figures = {}
        for field, pattern in _FIELDS.items():
            match = pattern.search(body)
            figures[field] = None if match is None else (
                float(match.group(1)) if field.endswith('_ms')
                else int(match.group(1)))
        report[key] = figures
    do_avg = report.get('do', {}).get('avg_ms')
    ra_avg = report.get('ra', {}).get('avg_ms')
    report['exchange_ms'] = (round(do_avg + ra_avg, 3)
                             if do_avg is not None and ra_avg is not None
                             else None)
    discovers = report.get('do', {}).get('sent') or 0
    acks = report.get('ra', {}).get('received') or 0
    report['completed'] = acks
    report['completed_share'] = (round(acks / discovers, 4)
                                 if discovers else None)
    return report


def _check(host, command):
    output = host.cmd(command + '; echo "exit=$?"')
    if 'exit=0' not in output:
        raise harness.BenchError('%s on %s failed: %s'
                                 % (command, host, output.strip()))


class Translator:
    """The veth pair and ``dhcp_unrelay.py`` inside the perfdhcp host."""

    def __init__(self, host, run_dir):
        self.host = host
        self.run_dir = run_dir
        self.process = None
        self.stats_path = os.path.join(run_dir, 'unrelay.json')

    def start(self):
        """Create the pair, address perfdhcp's end, start the script."""
        _check(self.host, 'ip link add %s type veth peer name %s'
               % (AGENT_INTERFACE, UNRELAY_INTERFACE))
        for intf in (AGENT_INTERFACE, UNRELAY_INTERFACE):
            _check(self.host, 'ip link set dev %s up' % intf)
        _check(self.host, 'ip addr add %s dev %s'
               % (AGENT_NETWORK_ADDRESS, AGENT_INTERFACE))
        with open(os.path.join(self.run_dir, 'unrelay.log'), 'ab') as log:
            self.process = self.host.popen(
                [sys.executable,
                 os.path.join(harness.BENCH_DIR, 'dhcp_unrelay.py'),
                 '--relay-side', UNRELAY_INTERFACE,
                 '--client-side', self.host.defaultIntf().name,
                 '--reply-source', REPLY_SOURCE,
                 '--stats', self.stats_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        time.sleep(0.5)
        if self.process.poll() is not None:
            raise harness.BenchError('dhcp_unrelay.py exited at once; see '
                                     '%s' % os.path.join(self.run_dir,
                                                         'unrelay.log'))
        return self

    def stop(self):
        """Stop the script; return its counters, or None."""
        harness.stop_process(self.process)
        self.host.cmd('ip link del %s' % AGENT_INTERFACE)
        try:
            with open(self.stats_path) as stats:
                return json.load(stats)
        except (OSError, ValueError):
            return None


def run_steps(perfdhcp, rates, seconds, between=None):
    """Run every rate step; return the reports.

    ``between``, if given, runs after each step and returns figures to
    add to its report; otherwise the next step starts a second later.
    """
    reports = []
    for rate in rates:
        report = perfdhcp.step(rate, seconds)
        if between is None:
            time.sleep(1.0)
        else:
            report.update(between())
        reports.append(report)
    return reports


def bench_controller(options, run_dir, meter_rate):
    """Run the steps against the TMip controller; return the figures."""
    extra = {'cell_pools': '1:' + POOL}
    if meter_rate:
        extra['packet_in_rate'] = meter_rate
    tmip = harness.TmipRun(run_dir, 'bd', cells=1, hosts='1', extra=extra)
    unrelay = None
    try:
        tmip.start(dhcp=False)
        host = tmip.node('h1')
        unrelay = Translator(host, run_dir).start()
        perfdhcp = Perfdhcp(host, AGENT_INTERFACE, run_dir, '02:bd')

        def bindings():
            cells = tmip.rest.try_get('/tmip/cells') or []
            used = [cell['usage']['used'] for cell in cells
                    if cell['cell'] == 1]
            return used[0] if used else None

        def drained():
            started = time.monotonic()
            count = bindings()
            while time.monotonic() - started < DRAIN_TIMEOUT:
                time.sleep(1.0)
                latest = bindings()
                if latest == count:
                    break
                count = latest
            return {'bindings_after': count,
                    'drain_s': round(time.monotonic() - started, 1),
                    'controller_rss_mib': tmip.controller.resident_mib()}

        meter = harness.CpuMeter(
            {'controller': tmip.controller.process.pid}).start()
        steps = run_steps(perfdhcp, options['rates'], options['seconds'],
                          drained)
        cpu = meter.stop()
        admitted = steps[-1]['bindings_after'] if steps else None
        if admitted and cpu.get('controller_cpu_s') is not None:
            cpu['controller_ms_per_binding'] = round(
                1000.0 * cpu['controller_cpu_s'] / admitted, 2)
            cpu['ovs_vswitchd_ms_per_binding'] = round(
                1000.0 * cpu['ovs_vswitchd_cpu_s'] / admitted, 2)
        counters = tmip.rest.try_get('/tmip/counters')
    finally:
        unrelay_counters = unrelay.stop() if unrelay else None
        tmip.stop()
    return {'server': 'tmip', 'packet_in_rate': meter_rate or 1000,
            'steps': steps, 'unrelay': unrelay_counters, 'cpu': cpu,
            'counters': counters}


def kea_config(run_dir, interface):
    """Return kea-dhcp4's configuration for the benchmark, as a dict.

    Kea listens on ``interface`` only, with raw sockets (its default),
    and keeps its leases in a memfile CSV in the run directory.
    """
    return {'Dhcp4': {
        'interfaces-config': {'interfaces': [interface],
                              'dhcp-socket-type': 'raw'},
        'lease-database': {'type': 'memfile', 'persist': True,
                           'name': os.path.join(run_dir, 'kea-leases4.csv'),
                           'lfc-interval': 0},
        'valid-lifetime': 3600, 'renew-timer': 1800, 'rebind-timer': 3150,
        'subnet4': [{'id': 1, 'subnet': POOL,
                     'pools': [{'pool': POOL_RANGE}],
                     'option-data': [{'name': 'routers',
                                      'data': KEA_ADDRESS}]}],
        'loggers': [{'name': 'kea-dhcp4', 'severity': 'WARN',
                     'output_options': [{'output': os.path.join(
                         run_dir, 'kea.log')}]}]}}


def start_kea(server, run_dir):
    """Start kea-dhcp4 in ``server``'s namespace; return its process."""
    intf = server.defaultIntf().name
    _check(server, 'ip addr add %s/%d dev %s'
           % (KEA_ADDRESS, PREFIX_LENGTH, intf))
    config_path = os.path.join(run_dir, 'kea-dhcp4.json')
    with open(config_path, 'w') as config_file:
        json.dump(kea_config(run_dir, intf), config_file, indent=1)
    env = dict(os.environ, KEA_PIDFILE_DIR=run_dir,
               KEA_LOCKFILE_DIR=run_dir)
    with open(os.path.join(run_dir, 'kea-dhcp4.out'), 'wb') as log:
        process = server.popen(['kea-dhcp4', '-c', config_path], env=env,
                               stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)
    tmip_traffic.wait_listening(server, 'udp', 67, timeout=20)
    return process


def bench_kea(options, run_dir):
    """Run the steps against kea-dhcp4, both ways; return the figures."""
    net = harness.build_network('bk', cells=1, hosts='2', standalone=True)
    kea = unrelay = None
    try:
        client = harness.node(net, 'h1')
        server = harness.node(net, 'h2')
        kea = start_kea(server, run_dir)
        meter = harness.CpuMeter({'kea': kea.pid}).start()
        unrelay = Translator(client, run_dir).start()
        perfdhcp = Perfdhcp(client, AGENT_INTERFACE, run_dir, '02:bb')
        same_path = run_steps(perfdhcp, options['rates'], options['seconds'])
        unrelay_counters = unrelay.stop()
        unrelay = None
        cpu_same_path = meter.stop()

        _check(client, 'ip addr add %s/%d dev %s'
               % (NATIVE_AGENT_ADDRESS, PREFIX_LENGTH,
                  client.defaultIntf().name))
        native = Perfdhcp(client, client.defaultIntf().name, run_dir,
                          '02:bc')
        meter = harness.CpuMeter({'kea': kea.pid}).start()
        native_steps = run_steps(native, options['rates'],
                                 options['seconds'])
        cpu_native = meter.stop()
    finally:
        if unrelay is not None:
            unrelay.stop()
        harness.stop_process(kea)
        net.stop()
    for cpu, steps in ((cpu_same_path, same_path),
                       (cpu_native, native_steps)):
        exchanges = sum(step['completed'] for step in steps)
        if exchanges and cpu.get('kea_cpu_s') is not None:
            cpu['kea_ms_per_exchange'] = round(
                1000.0 * cpu['kea_cpu_s'] / exchanges, 3)
    return {'same_path': {'server': 'kea', 'steps': same_path,
                          'unrelay': unrelay_counters,
                          'cpu': cpu_same_path},
            'native': {'server': 'kea (perfdhcp relayed, no unrelay)',
                       'steps': native_steps, 'cpu': cpu_native}}


def capacity(steps):
    """Return the highest exchange rate reached and the highest rate
    offered with at most 1% of exchanges failed.

    The rate reached is the exchanges completed over the step's length.
    """
    rates = [step['achieved_rate'] for step in steps]
    sustained = [step['offered_rate'] for step in steps
                 if (step['completed_share'] or 0) >= 1 - SUSTAINED_LOSS]
    return {'max_rate': max(rates, default=None),
            'sustained_rate': max(sustained, default=None)}


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def run(quick=False, run_dir=None, **overrides):
    """Run the benchmark; return its results as a dict."""
    options = dict(DEFAULTS)
    if quick:
        options.update(QUICK)
    options.update({key: value for key, value in overrides.items()
                    if value is not None})
    run_dir = run_dir or harness.new_run_dir('dhcp')
    results = {'benchmark': 'dhcp', 'options': options, 'run_dir': run_dir}
    results['tmip_default_meter'] = bench_controller(
        options, harness.new_run_dir('tmip-default-meter', run_dir), None)
    results['tmip_raised_meter'] = bench_controller(
        options, harness.new_run_dir('tmip-raised-meter', run_dir),
        options['meter_rate'])
    if options['kea']:
        kea = bench_kea(options, harness.new_run_dir('kea', run_dir))
        results['kea_same_path'] = kea['same_path']
        results['kea_native'] = kea['native']
    for key in ('tmip_default_meter', 'tmip_raised_meter', 'kea_same_path',
                'kea_native'):
        if key in results:
            results[key]['capacity'] = capacity(results[key]['steps'])
    if options['kea']:
        ours = results['tmip_raised_meter']['capacity']
        kea = results['kea_same_path']['capacity']
        results['ratio_max_rate'] = _ratio(ours['max_rate'],
                                           kea['max_rate'])
        results['ratio_sustained_rate'] = _ratio(ours['sustained_rate'],
                                                 kea['sustained_rate'])
    return results


# -- reporting

_SYSTEMS = (('tmip_default_meter', 'TMip, default meter'),
            ('tmip_raised_meter', 'TMip, meter raised'),
            ('kea_same_path', 'Kea, same path'),
            ('kea_native', 'Kea, native relay'))


def _latency_at_sustained(figures):
    sustained = figures['capacity']['sustained_rate']
    for step in figures['steps']:
        if step['offered_rate'] == sustained and \
                step['exchange_ms'] is not None:
            return '%.1f' % step['exchange_ms']
    return '-'


def summary_rows(results):
    """Return [figure, value, target] rows for the overall table."""
    rows = []
    for key, label in _SYSTEMS:
        figures = results.get(key)
        if not figures:
            continue
        found = figures['capacity']
        rows.append([
            'DHCP %s: max / sustained exchanges/s' % label,
            '%s / %s (exchange %s ms at the sustained rate)' % (
                _rate(found['max_rate']), _rate(found['sustained_rate']),
                _latency_at_sustained(figures)),
            '>= 2000/s' if key.startswith('tmip') else ''])
    cpu = [(label, results[key]['cpu']) for key, label in _SYSTEMS
           if key in results]
    rows.append(['DHCP CPU per admitted host (controller, ovs-vswitchd) '
                 'and per Kea exchange',
                 '; '.join('%s: %s' % (label, _cpu_text(figures))
                           for label, figures in cpu), ''])
    if 'ratio_max_rate' in results:
        rows.append(['DHCP ours (meter raised) / Kea (same path), max '
                     'and sustained rate',
                     '%s / %s' % (results['ratio_max_rate'],
                                  results['ratio_sustained_rate']),
                     'as close to 1 as possible'])
    return rows


def _cpu_text(cpu):
    if 'controller_ms_per_binding' in cpu:
        return '%s ms, %s ms' % (cpu['controller_ms_per_binding'],
                                 cpu['ovs_vswitchd_ms_per_binding'])
    if 'kea_ms_per_exchange' in cpu:
        return '%s ms' % cpu['kea_ms_per_exchange']
    return '-'


def _rate(value):
    return '-' if value is None else '%.0f' % value


def markdown(results):
    """Return the benchmark's Markdown section."""
    options = results['options']
    lines = ['## DHCP admission\n',
             'perfdhcp, new random MACs, %d s per rate step.\n'
             % options['seconds'],
             harness.markdown_table(['figure', 'value', 'target'],
                                    summary_rows(results)),
             '\n### Steps\n']
    rows = []
    for key, label in _SYSTEMS:
        figures = results.get(key)
        if not figures:
            continue
        for step in figures['steps']:
            do, ra = step.get('do', {}), step.get('ra', {})
            rows.append([label, step['offered_rate'], step['achieved_rate'],
                         '%s/%s' % (step['completed'], do.get('sent')),
                         do.get('avg_ms'), ra.get('avg_ms'),
                         do.get('max_ms'), ra.get('max_ms'),
                         step.get('bindings_after', '')])
    lines.append(harness.markdown_table(
        ['server', 'offered/s', 'exchanges/s', 'ACKed/DISCOVERs',
         'DO avg ms', 'RA avg ms', 'DO max ms', 'RA max ms',
         'bindings after'], rows))
    return '\n'.join(lines)


def parse_arguments(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='rates 100, 500 and 2000 for 3 s each')
    parser.add_argument('--rates', type=lambda text: [
        int(part) for part in text.split(',')],
        help='comma-separated offered rates in new clients/s (default '
             '50,100,250,500,1000,2000,4000)')
    parser.add_argument('--seconds', type=int,
                        help='seconds per rate step (default 5)')
    parser.add_argument('--meter-rate', type=int,
                        help='packet_in_rate of the second controller run, '
                             'packets/s (default 100000)')
    parser.add_argument('--no-kea', dest='kea', action='store_false',
                        default=None, help='skip the Kea runs')
    args = parser.parse_args(argv)
    if args.rates is not None and any(rate < 1 for rate in args.rates):
        parser.error('--rates must all be 1 or more')
    if args.seconds is not None and not 1 <= args.seconds <= 60:
        parser.error('--seconds must be 1 to 60')
    return args


def main(argv=None):
    """Run the benchmark from the command line; write and print results."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print('bench_dhcp.py needs root (Mininet and Open vSwitch)')
        return 2
    harness.prepare_process()
    machine = harness.describe_machine()
    results = run(quick=args.quick, rates=args.rates, seconds=args.seconds,
                  meter_rate=args.meter_rate, kea=args.kea)
    paths = harness.publish(results, machine,
                            harness.timestamp() + '-dhcp', markdown,
                            summary_rows)
    print('results: %s and %s' % paths)
    return 0


if __name__ == '__main__':
    sys.exit(main())

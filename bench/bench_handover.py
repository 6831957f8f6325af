"""Hand-over cost: controller time, data-plane gap and TCP survival.

One mobile host ``h1`` moves ``--moves`` times (default 100) among the
cells of the emulation (3 by default), to a random other cell each time,
one move every ``--dwell`` seconds.  Throughout, the correspondent
``ext`` (behind the uplink router) sends it a 1,000 datagram/s UDP probe
stream, ``h1`` sends one back to ``ext``, and an iperf3 TCP session
from ``ext`` to ``h1`` runs at ``--bitrate``.  For each move it records:

- the controller's hand-over record (``GET /tmip/handovers``):
  ``total_ms``, from the packet-in that revealed the move to the last
  commit reply, and its phases;
- ``detect_ms``: from the start of the port move to that packet-in;
- for each probe direction, the data-plane gap (the longest time
  without an arrival, from kernel receive timestamps), the datagrams
  lost, and ``restored_ms``: from that packet-in to the first datagram
  that arrived after it, the part of the gap after the network could
  first see the host at its new port;
- whether the TCP session carried data after the move.

The same moves then run on TMip with the host wired to every cell
(``TmipTopo(prewired=True)``): a move takes the link to the old cell down
and brings the one to the new cell up, as a radio link would, instead of
moving the host's port to another bridge, which takes Open vSwitch 30 to
45 ms.  ``--no-radio`` skips this run.

The same moves then run on the same kind of network with Ryu's
``ryu.app.simple_switch_13`` and flat addressing (static addresses in
10.9.0.0/24, ``r0`` as the gateway), the baseline: there the figure is
how long the moved host stays unreachable.

Run as root from the repository::

    .venv/bin/python bench/bench_handover.py [--moves 100] [--quick]

Results go to bench/results/<time>-handover.json and .md, logs to
/var/tmp/tmip-bench/.  It prints figures and asserts nothing.
"""

import argparse
import math
import os
import random
import sys
import time

import harness
import probe_log
from harness import tmip_topo, tmip_traffic

DOWN_PORT = 9000
UP_PORT = 9001
IPERF_PORT = 5201
FLAT_NETWORK = '10.9.0.0/24'
FLAT_HOST = '10.9.0.1'
FLAT_GATEWAY = '10.9.0.254'
# Windows of one dwell each, just before the first move, show the gaps a
# stream has with no move at all.  Traffic starts a second before them.
QUIET_WINDOWS = 2
# The gap window of a move ends this long before the next move starts.
WINDOW_MARGIN = 0.05

DEFAULTS = {'cells': 3, 'moves': 100, 'dwell': 2.0, 'rate': 1000,
            'bitrate': '20M', 'seed': 1, 'baseline': True, 'radio': True}
QUICK = {'moves': 10}


def move_plan(cells, moves, seed):
    """Return the target cell of each move: a random other cell each time.

    ``h1`` starts in cell 1.
    """
    rng = random.Random(seed)
    plan, current = [], 1
    for _ in range(moves):
        current = rng.choice([cell for cell in range(1, cells + 1)
                              if cell != current])
        plan.append(current)
    return plan


class Scenario:
    """The traffic and the timed moves of one system under test."""

    def __init__(self, net, host, address, run_dir, options):
        self.net = net
        self.host = host
        self.address = address
        self.run_dir = run_dir
        self.options = options
        self.ext = harness.node(net, 'ext')
        self.streams = {}
        self.session = None
        self.moves = []
        self.quiet = []
        self.warmup = QUIET_WINDOWS * options['dwell'] + 1.0

    def start_traffic(self, plan):
        """Start both probe streams and the TCP session."""
        rate = self.options['rate']
        self.streams['down'] = harness.start_stream(
            self.ext, self.host, self.address, DOWN_PORT, self.run_dir,
            rate)
        self.streams['up'] = harness.start_stream(
            self.host, self.ext, tmip_topo.EXTERNAL_HOST_ADDRESS, UP_PORT,
            self.run_dir, rate)
        duration = math.ceil(self.warmup + len(plan)
                             * self.options['dwell'] + 2)
        self.session = tmip_traffic.IperfSession(
            self.ext, self.host, self.address, IPERF_PORT, self.run_dir,
            bitrate=self.options['bitrate'], duration=duration).start()

    def play(self, plan):
        """Run the moves on an absolute schedule, one every dwell."""
        dwell = self.options['dwell']
        begin = time.time() + self.warmup
        for index in range(QUIET_WINDOWS):
            end = begin - index * dwell
            self.quiet.append((end - dwell, end - WINDOW_MARGIN))
        for index, cell in enumerate(plan):
            start_wall = begin + index * dwell
            _sleep_until(start_wall)
            self.moves.append(self._move(index, cell, start_wall))
        _sleep_until(begin + len(plan) * dwell)
        self._check_tcp(self.moves[-1])

    def _move(self, index, cell, start_wall):
        old_switch = tmip_topo.switch_of(self.host)
        if self.moves:
            self._check_tcp(self.moves[-1])
        started_wall, started = time.time(), time.monotonic()
        port = tmip_topo.move(self.net, self.host,
                              harness.node(self.net, 's%d' % cell))
        return {'index': index + 1,
                'from': old_switch.params['cell'], 'to': cell,
                'port': port, 'scheduled_at': start_wall,
                'started_at': started_wall, 'started_mono': started,
                'move_ms': round((time.monotonic() - started) * 1000, 1)}

    def _check_tcp(self, move):
        move['tcp_alive'] = bool(
            self.session.running()
            and self.session.bytes_since(move['started_mono']) > 0)

    def finish(self):
        """Stop the traffic; return whether the TCP session completed."""
        completed = self.session.finish()
        for stream in self.streams.values():
            stream.stop()
        return completed

    def stop(self):
        """Stop whatever traffic still runs, by handle."""
        if self.session is not None:
            self.session.stop()
        for stream in self.streams.values():
            stream.stop()

    def analyse(self):
        """Add each direction's gap and loss to every move; return quiet.

        Returns the figures of the quiet windows before the first move.
        """
        dwell = self.options['dwell']
        quiet = {}
        for direction, stream in self.streams.items():
            arrivals = probe_log.load(stream.log_path, self.options['rate'])
            for move in self.moves:
                start = move['started_at']
                end = move['scheduled_at'] + dwell - WINDOW_MARGIN
                move[direction] = probe_log.window_figures(
                    arrivals, int(start * 1e9), int(end * 1e9))
                if move.get('detect_ms') is not None:
                    detected = start + move['detect_ms'] / 1000.0
                    move[direction]['restored_ms'] = \
                        probe_log.restored_after(arrivals,
                                                 int(detected * 1e9),
                                                 int(end * 1e9))
            quiet[direction] = [probe_log.window_figures(
                arrivals, int(start * 1e9), int(end * 1e9))
                for start, end in self.quiet]
        return quiet


def _sleep_until(moment):
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def _attach_handovers(moves, history, mac):
    """Give each move the controller's record of its hand-over."""
    records = [entry for entry in history if entry.get('mac') == mac]
    for position, move in enumerate(moves):
        until = (moves[position + 1]['started_at']
                 if position + 1 < len(moves) else float('inf'))
        mine = [entry for entry in records
                if move['started_at'] <= (entry.get('started_at') or 0)
                < until and entry.get('to', {}).get('cell') == move['to']]
        committed = [entry for entry in mine
                     if entry['status'] == 'committed']
        chosen = (committed or mine or [None])[0]
        move['handover_records'] = len(mine)
        if chosen is None:
            move['handover'] = None
            continue
        timings = chosen.get('timings', {})
        detected = chosen['started_at'] - (timings.get('queued_ms') or 0) \
            / 1000.0
        move['handover'] = dict(timings, status=chosen['status'],
                                reason=chosen.get('reason'))
        move['detect_ms'] = round((detected - move['started_at']) * 1000, 1)


def run_tmip(options, run_dir, plan, prewired=False):
    """Run the moves on TMip; return its figures.

    With ``prewired``, the host is wired to every cell and a move changes
    which of its links is up (``TmipTopo(prewired=True)``).
    """
    tmip = harness.TmipRun(run_dir, 'bw' if prewired else 'bh',
                           cells=options['cells'],
                           hosts=_one_host(options['cells']),
                           prewired=prewired)
    scenario = None
    try:
        tmip.start()
        host = tmip.node('h1')
        address = harness.host_address(host)
        ext = harness.node(tmip.net, 'ext')
        if tmip_traffic.wait_ping(ext, address, timeout=30) is None:
            raise harness.BenchError('ext gets no reply from h1 (%s)'
                                     % address)
        scenario = Scenario(tmip.net, host, address, run_dir, options)
        scenario.start_traffic(plan)
        scenario.play(plan)
        completed = scenario.finish()
        history = tmip.rest.get('/tmip/handovers')
        counters = tmip.rest.get('/tmip/counters')
        hosts = tmip.rest.get('/tmip/hosts')
        _attach_handovers(scenario.moves, history, host.MAC())
        quiet = scenario.analyse()
        return _figures('tmip_radio' if prewired else 'tmip', scenario,
                        completed, quiet,
                        {'counters': counters,
                         'handover_history': [
                             entry for entry in history
                             if entry.get('mac') == host.MAC()],
                         'hosts_registered': [entry['mac']
                                              for entry in hosts],
                         'controller_rss_mib':
                             tmip.controller.resident_mib(),
                         'setup_timings': tmip.timings})
    finally:
        if scenario is not None:
            scenario.stop()
        tmip.stop()


def _one_host(cells):
    return ':'.join(['1'] + ['0'] * (cells - 1))


def run_baseline(options, run_dir, plan):
    """Run the moves on simple_switch_13 with flat addressing."""
    net = harness.build_network('bf', cells=options['cells'],
                                hosts=_one_host(options['cells']))
    controller = harness.RyuManager('ryu.app.simple_switch_13', run_dir,
                                    rest=False)
    scenario = None
    try:
        controller.start()
        tmip_topo.attach_controller(net, controller.target)
        harness.wait_until(lambda: tmip_topo.bridges_connected(net), 60,
                           'the baseline bridges to connect')
        host = harness.node(net, 'h1')
        _flat_addressing(net, host)
        ext = harness.node(net, 'ext')
        if tmip_traffic.wait_ping(ext, FLAT_HOST, timeout=30) is None:
            raise harness.BenchError('baseline: ext gets no reply from %s'
                                     % FLAT_HOST)
        scenario = Scenario(net, host, FLAT_HOST, run_dir, options)
        scenario.start_traffic(plan)
        scenario.play(plan)
        completed = scenario.finish()
        quiet = scenario.analyse()
        return _figures('baseline', scenario, completed, quiet,
                        {'controller': 'ryu.app.simple_switch_13'})
    finally:
        if scenario is not None:
            scenario.stop()
        net.stop()
        controller.stop()


def _flat_addressing(net, host):
    """Give h1 and r0 static addresses on one flat /24.

    ``r0``'s interface to cell 1 becomes the gateway.  Its interfaces to
    the other cells go down, so that the flat segment has one router
    port, and ``arp_ignore=1`` makes it reply to ARP only for addresses
    of the interface the request came in on.
    """
    router = harness.node(net, 'r0')
    cell_one = harness.node(net, 's1')
    intf = host.defaultIntf().name
    host.cmd('ip addr add %s/24 dev %s' % (FLAT_HOST, intf))
    host.cmd('ip route replace default via %s' % FLAT_GATEWAY)
    router.cmd('sysctl -qw net.ipv4.conf.all.arp_ignore=1')
    for router_intf in router.intfList():
        link = router_intf.link
        if link is None:
            continue
        peer = link.intf2 if link.intf1 is router_intf else link.intf1
        if peer.node is cell_one:
            router.cmd('ip addr add %s/24 dev %s'
                       % (FLAT_GATEWAY, router_intf.name))
        elif peer.node in net.switches:
            router.cmd('ip link set dev %s down' % router_intf.name)


def _figures(system, scenario, completed, quiet, extra):
    moves = scenario.moves
    figures = {'system': system, 'moves': moves, 'quiet_windows': quiet,
               'tcp_alive_after': sum(1 for m in moves if m['tcp_alive']),
               'tcp_session_completed': completed,
               'move_ms': harness.summarize(m['move_ms'] for m in moves)}
    for direction in ('down', 'up'):
        figures[direction] = {
            'gap_ms': harness.summarize(m[direction]['gap_ms']
                                        for m in moves),
            'lost': harness.summarize((m[direction]['lost'] for m in moves),
                                      digits=0),
            'recovered': sum(1 for m in moves if m[direction]['recovered']),
            'restored_ms': harness.summarize(
                m[direction].get('restored_ms') for m in moves),
            'quiet_gap_ms': max((w['gap_ms'] for w in quiet[direction]),
                                default=None)}
    if system != 'baseline':
        records = [m['handover'] for m in moves if m.get('handover')]
        figures['handover'] = {
            key: harness.summarize(r.get(key) for r in records
                                   if r['status'] == 'committed')
            for key in ('total_ms', 'queued_ms', 'prepare_ms',
                        'commit_ms')}
        figures['handover']['committed'] = sum(
            1 for r in records if r['status'] == 'committed')
        figures['detect_ms'] = harness.summarize(m.get('detect_ms')
                                                 for m in moves)
    figures.update(extra)
    return figures


def run(quick=False, run_dir=None, **overrides):
    """Run the benchmark; return its results as a dict."""
    options = dict(DEFAULTS)
    if quick:
        options.update(QUICK)
    options.update({key: value for key, value in overrides.items()
                    if value is not None})
    run_dir = run_dir or harness.new_run_dir('handover')
    plan = move_plan(options['cells'], options['moves'], options['seed'])
    results = {'benchmark': 'handover', 'options': options, 'plan': plan,
               'run_dir': run_dir}
    results['tmip'] = run_tmip(options, harness.new_run_dir('tmip', run_dir),
                               plan)
    if options['radio']:
        results['tmip_radio'] = run_tmip(
            options, harness.new_run_dir('tmip-radio', run_dir), plan,
            prewired=True)
    if options['baseline']:
        results['baseline'] = run_baseline(
            options, harness.new_run_dir('baseline', run_dir), plan)
    return results


# -- reporting


def summary_rows(results):
    """Return [figure, value, target] rows for the overall table."""
    tmip = results['tmip']
    moves = len(tmip['moves'])
    rows = [
        ['controller hand-over total_ms',
         harness.format_stats(tmip['handover']['total_ms']),
         'p50 < 5 ms'],
        ['hand-over phases: queued / prepare / commit (p50)',
         ' / '.join(_p50(tmip['handover'][key]) for key in
                    ('queued_ms', 'prepare_ms', 'commit_ms')) + ' ms', ''],
        ['hand-overs the controller committed',
         '%s for %d moves' % (tmip['counters'].get('handovers', {})
                              .get('committed', '-'), moves),
         '%d' % moves],
        ['port move to packet-in (detect_ms)',
         harness.format_stats(tmip['detect_ms']), ''],
        ['data-plane gap, ext -> h1',
         harness.format_stats(tmip['down']['gap_ms']), 'p50 < 20 ms'],
        ['data-plane gap, h1 -> ext',
         harness.format_stats(tmip['up']['gap_ms']), 'p50 < 20 ms'],
        ['packet-in to the first datagram through, ext -> h1',
         harness.format_stats(tmip['down']['restored_ms']), ''],
        ['packet-in to the first datagram through, h1 -> ext',
         harness.format_stats(tmip['up']['restored_ms']), ''],
        ['probe datagrams lost per move, ext -> h1 / h1 -> ext',
         '%s / %s (p50)' % (_p50(tmip['down']['lost']),
                            _p50(tmip['up']['lost'])), ''],
        ['TCP session alive after move', _tcp_survival(tmip),
         '%d of %d' % (moves, moves)],
    ]
    radio = results.get('tmip_radio')
    if radio:
        rows += [
            ['by link state: controller hand-over total_ms',
             harness.format_stats(radio['handover']['total_ms']), ''],
            ['by link state: link change to packet-in (detect_ms)',
             harness.format_stats(radio['detect_ms']), ''],
            ['by link state: data-plane gap, ext -> h1',
             harness.format_stats(radio['down']['gap_ms']), 'p50 < 20 ms'],
            ['by link state: data-plane gap, h1 -> ext',
             harness.format_stats(radio['up']['gap_ms']), 'p50 < 20 ms'],
            ['by link state: TCP session alive after move',
             _tcp_survival(radio), ''],
        ]
    baseline = results.get('baseline')
    if baseline:
        rows += [
            ['baseline simple_switch_13: unreachable, ext -> h1',
             '%s; recovered within the dwell after %d of %d moves' % (
                 harness.format_stats(baseline['down']['gap_ms']),
                 baseline['down']['recovered'], moves), ''],
            ['baseline simple_switch_13: unreachable, h1 -> ext',
             '%s; recovered within the dwell after %d of %d moves' % (
                 harness.format_stats(baseline['up']['gap_ms']),
                 baseline['up']['recovered'], moves), ''],
            ['baseline simple_switch_13: TCP alive after move',
             '%d of %d' % (baseline['tcp_alive_after'], moves), ''],
        ]
    return rows


def _tcp_survival(figures):
    """Return 'N of M (session completed|failed)' for a TMip run."""
    return '%d of %d (session %s)' % (
        figures['tcp_alive_after'], len(figures['moves']),
        'completed' if figures['tcp_session_completed'] else 'failed')


def _p50(stats):
    value = stats.get('p50') if stats else None
    return '-' if value is None else harness._number(value)


def markdown(results):
    """Return the benchmark's Markdown section: summary and every move."""
    options = results['options']
    lines = ['## Hand-over\n',
             '%d moves among %d cells, one every %.1f s; probe %d '
             'datagrams/s each way; iperf3 at %s.\n'
             % (options['moves'], options['cells'], options['dwell'],
                options['rate'], options['bitrate']),
             harness.markdown_table(['figure', 'value', 'target'],
                                    summary_rows(results))]
    for system in ('tmip', 'tmip_radio', 'baseline'):
        figures = results.get(system)
        if not figures:
            continue
        lines.append('\n### Per move: %s\n' % system)
        header = ['#', 'from', 'to', 'move ms']
        if system != 'baseline':
            header += ['detect ms', 'total ms', 'prepare', 'commit']
        header += ['gap down ms', 'lost down', 'gap up ms', 'lost up',
                   'TCP']
        rows = []
        for move in figures['moves']:
            row = [move['index'], move['from'], move['to'],
                   move['move_ms']]
            if system != 'baseline':
                record = move.get('handover') or {}
                row += [move.get('detect_ms', '-'),
                        record.get('total_ms', '-'),
                        record.get('prepare_ms', '-'),
                        record.get('commit_ms', '-')]
            for direction in ('down', 'up'):
                window = move[direction]
                gap = '%.1f' % window['gap_ms']
                if not window['recovered']:
                    gap = '>= ' + gap
                row += [gap, window['lost']]
            row.append('alive' if move['tcp_alive'] else 'DEAD')
            rows.append(row)
        lines.append(harness.markdown_table(header, rows))
    return '\n'.join(lines)


def parse_arguments(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='10 moves instead of 100')
    parser.add_argument('--moves', type=int,
                        help='number of moves (default 100)')
    parser.add_argument('--cells', type=int,
                        help='number of cells (default 3)')
    parser.add_argument('--dwell', type=float,
                        help='seconds between moves (default 2.0)')
    parser.add_argument('--bitrate',
                        help='iperf3 -b of the TCP session (default 20M)')
    parser.add_argument('--seed', type=int,
                        help='seed of the random move plan (default 1)')
    parser.add_argument('--no-baseline', dest='baseline',
                        action='store_false', default=None,
                        help='skip the simple_switch_13 baseline')
    parser.add_argument('--no-radio', dest='radio',
                        action='store_false', default=None,
                        help='skip the moves by link state (a host wired '
                        'to every cell)')
    args = parser.parse_args(argv)
    if args.moves is not None and args.moves < 1:
        parser.error('--moves must be 1 or more')
    if args.cells is not None and not 2 <= args.cells <= 253:
        parser.error('--cells must be 2 to 253')
    if args.dwell is not None and args.dwell < 1.2:
        parser.error('--dwell must be 1.2 s or more: the TCP check needs '
                     'a whole iperf3 report interval (0.5 s) after a move')
    return args


def main(argv=None):
    """Run the benchmark from the command line; write and print results."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print('bench_handover.py needs root (Mininet and Open vSwitch)')
        return 2
    harness.prepare_process()
    machine = harness.describe_machine()
    results = run(quick=args.quick, moves=args.moves, cells=args.cells,
                  dwell=args.dwell, bitrate=args.bitrate, seed=args.seed,
                  baseline=args.baseline, radio=args.radio)
    paths = harness.publish(results, machine,
                            harness.timestamp() + '-handover', markdown,
                            summary_rows)
    print('results: %s and %s; logs under %s' % (paths + (
        results['run_dir'],)))
    return 0


if __name__ == '__main__':
    sys.exit(main())

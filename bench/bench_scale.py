"""Scale: the rules and register benchmarks, and hand-overs as the
network grows in live bindings and in cells.

Three parts:

- ``bench/bench_rules.py`` (flows and hand-over plans of a 100-cell,
  10,000-host model) and ``bench/bench_mlr.py`` (the register: durable
  allocations, hand-overs, memory, recovery) run as they are, with
  ``--quick`` for bench_mlr in quick mode.  Their figures are read from
  their output;
- bindings: the state file is preloaded with 1,000 / 10,000 / 100,000
  bindings through the register's own ``Register`` and ``Store``,
  spread over the three cells at access ports that exist only in the
  controller's model (ports 100 to 299), so that every switch holds
  their flows.  The controller recovers them at start, and then ``h1``
  moves ``--moves`` times among the cells;
- cells: with 3 / 6 / 12 cells and no other host, ``h1`` moves
  ``--moves`` times among them.

Each case reports the controller's hand-over ``total_ms`` and phases
(p50, p95, max), the time until the bridges held every flow and ``h1``
had its lease, the flow count and the controller's resident memory.

A case waits for the core links and the flows by reading the
controller's log, not ``/tmip/topology`` and ``/tmip/flows``: those
render every binding or every flow, which at 100,000 bindings takes
seconds in which the controller does nothing else.

Run as root from the repository::

    .venv/bin/python bench/bench_scale.py [--quick]

Results go to bench/results/<time>-scale.json and .md.  It prints
figures and asserts nothing.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import time

import harness
from harness import tmip_topo
from tmip_ryu.mlr import Register, Store

# Cells 1-3 get large pools, so that 100,000 bindings fit.  The default
# 10.<cell>.0.0/16 has room for 16,384 /30s.
POOLS = {1: '100.64.0.0/12', 2: '100.80.0.0/12', 3: '100.96.0.0/12'}
FAKE_FIRST_PORT = 100
FAKE_PORTS = 200
DEFAULTS = {'bindings': [1000, 10000, 100000], 'cells': [3, 6, 12],
            'moves': 20, 'dwell': 1.0, 'seed': 1, 'quick_tools': False}
QUICK = {'bindings': [1000, 10000], 'cells': [3, 6], 'moves': 6,
         'quick_tools': True}
# Seconds a case's start may take, from building the network to the
# settled flows.  A controller that is not ready by then is recorded as
# not ready, so that every case stays within minutes.
START_TIMEOUT = 300

_LINK_UP = re.compile(r'core link \S+ <-> \S+ up')
_LINK_DOWN = re.compile(r'core link \S+ <-> \S+ down')
_IN_SYNC = re.compile(r'switch ([0-9a-f]{16}) in sync: (\d+) TMip flows '
                      r'installed')


class ScaleRun(harness.TmipRun):
    """A TmipRun that waits on the controller's log, not on its REST API.

    The flows are awaited before ``h1`` requests its lease, so that the
    controller's last "in sync" line of each switch counts every flow.
    """

    def start(self, dhcp=True, timeout=180):
        """Start everything; return self.  See TmipRun.start."""
        started = time.monotonic()
        deadline = started + timeout

        def left():
            return max(1.0, deadline - time.monotonic())

        self.net = harness.build_network(self.prefix, cells=self.cells,
                                         hosts=self.hosts)
        config_path = os.path.join(self.run_dir, 'tmip.conf')
        with open(config_path, 'w') as config_file:
            config_file.write(tmip_topo.controller_config(
                self.net, state_file=self.state_file, extra=self.extra))
        self.controller = harness.RyuManager(
            'tmip_ryu.apps', self.run_dir, config_path).start(left())
        self.timings['controller_start_s'] = round(
            time.monotonic() - started, 2)
        tmip_topo.attach_controller(self.net, self.controller.target)
        harness.wait_until(
            lambda: tmip_topo.bridges_connected(self.net), left(),
            'the bridges to connect (log %s)' % self.controller.log_path)
        harness.wait_until(
            lambda: self.core_links_up() >= self.cells, left(),
            '%d core links (log %s)' % (self.cells,
                                        self.controller.log_path))
        self.timings['connected_s'] = round(time.monotonic() - started, 2)
        self.wait_flows_settled(left())
        self.timings['flows_s'] = round(time.monotonic() - started, 2)
        if dhcp:
            for host in self.mobile_hosts():
                host.start_dhcp(self.run_dir)
            for host in self.mobile_hosts():
                host.dhcp.wait_bound(timeout=min(60.0, left()))
        self.timings['ready_s'] = round(time.monotonic() - started, 2)
        return self

    def core_links_up(self):
        """Return how many core links the controller's log shows up."""
        text = self.controller.log_text()
        return len(_LINK_UP.findall(text)) - len(_LINK_DOWN.findall(text))

    def flows_settled(self):
        """Tell whether every bridge has the flows its last resync left.

        A bridge counts only once the controller logged that it is in
        sync and no resync has started since.
        """
        expected = {}
        for line in self.controller.log_text().splitlines():
            match = _IN_SYNC.search(line)
            if match:
                expected[int(match.group(1), 16)] = int(match.group(2))
            elif 'resynced' in line or 'reconciled' in line:
                dpid = re.search(r'switch ([0-9a-f]{16})', line)
                if dpid:
                    expected.pop(int(dpid.group(1), 16), None)
        for switch in self.net.switches:
            count = expected.get(int(switch.dpid, 16))
            if count is None or \
                    harness.tmip_flow_count(switch.name) != count:
                return False
        return True


def fake_mac(index):
    """Return the MAC address of preloaded binding number ``index``."""
    return '02:fa:%02x:%02x:%02x:%02x' % (
        index >> 24 & 255, index >> 16 & 255, index >> 8 & 255,
        index & 255)


def preload(path, count):
    """Write ``count`` bindings into a new state file; return seconds.

    Binding ``i`` has home and current cell ``1 + i % 3`` and sits at
    port ``100 + (i // 3) % 200`` of that cell's switch.
    """
    started = time.monotonic()
    store = Store(path, synchronous='NORMAL')
    try:
        register = Register(pools=POOLS, store=store)
        for index in range(count):
            cell = 1 + index % 3
            port = FAKE_FIRST_PORT + (index // 3) % FAKE_PORTS
            result = register.attach(fake_mac(index), cell, cell, port)
            if result.binding is None:
                raise harness.BenchError('preloading binding %d failed: %s'
                                         % (index, result.error))
            if (index + 1) % 10000 == 0:
                register.flush()
        register.flush()
    finally:
        store.close()
    return round(time.monotonic() - started, 2)


def pools_option():
    """Return the ``cell_pools`` config value for POOLS."""
    return ', '.join('%d:%s' % item for item in sorted(POOLS.items()))


def move_among_cells(tmip, moves, dwell, seed):
    """Move h1 among the cells; return the hand-over records, in order."""
    host = tmip.node('h1')
    rng = random.Random(seed)
    current = 1
    records = []
    for _ in range(moves):
        current = rng.choice([cell for cell in range(1, tmip.cells + 1)
                              if cell != current])
        started = time.time()
        tmip_topo.move(tmip.net, host, tmip.node('s%d' % current))
        record = tmip.wait_handover(host.MAC(), current, started,
                                    timeout=max(dwell, 5.0))
        records.append(record)
        time.sleep(max(0.0, started + dwell - time.time()))
    return records


def handover_figures(records):
    """Return summaries of the committed records' timings."""
    committed = [record for record in records
                 if record and record['status'] == 'committed']
    figures = {'moves': len(records), 'committed': len(committed)}
    for key in ('total_ms', 'queued_ms', 'prepare_ms', 'commit_ms'):
        figures[key] = harness.summarize(
            record['timings'].get(key) for record in committed)
    return figures


def case(run_dir, cells, options, preloaded=0):
    """Start TMip, optionally on a preloaded state file, and move h1."""
    state_file = os.path.join(run_dir, 'state.sqlite')
    figures = {'cells': cells, 'bindings_preloaded': preloaded}
    extra = {'cell_pools': pools_option()}
    if preloaded:
        figures['preload_s'] = preload(state_file, preloaded)
    tmip = ScaleRun(run_dir, 'bs', cells=cells,
                           hosts=':'.join(['1'] + ['0'] * (cells - 1)),
                           extra=extra, state_file=state_file)
    try:
        try:
            tmip.start(timeout=START_TIMEOUT)
        except (harness.BenchError, TimeoutError) as error:
            figures['error'] = str(error)
            figures.update(log_figures(tmip))
            return figures
        figures['ready_s'] = tmip.timings['ready_s']
        figures['flows_s'] = tmip.timings['flows_s']
        figures['flows_per_cell_switch'] = tmip_flow_counts(tmip)
        figures['controller_rss_mib_before'] = \
            tmip.controller.resident_mib()
        records = move_among_cells(tmip, options['moves'],
                                   options['dwell'], options['seed'])
        figures['handover'] = handover_figures(records)
        figures['controller_rss_mib_after'] = \
            tmip.controller.resident_mib()
        figures['recovery'] = recovery_line(tmip.controller.log_text())
    finally:
        tmip.stop()
    return figures


def log_figures(tmip):
    """Return what the controller's log shows of a start that stalled."""
    if tmip.controller is None:
        return {}
    text = tmip.controller.log_text()
    return {
        'reconciled': re.findall(r'switch \w+ reconciled: .*', text),
        'disconnects': len(re.findall(r'switch \w+ disconnected', text)),
        'handler_exceptions': text.count('Exception occurred during '
                                         'handler processing'),
        'first_exception': next(iter(re.findall(
            r'^\w*Error: .*$', text, re.M)), None),
        'controller_rss_mib': tmip.controller.resident_mib(),
        'log': tmip.controller.log_path}


def tmip_flow_counts(tmip):
    """Return the TMip flow count of each cell switch."""
    return {str(cell): harness.tmip_flow_count(switch.name)
            for cell, switch in sorted(
                tmip_topo.cell_switches(tmip.net).items())}


def recovery_line(log_text):
    """Return the controller's log line about recovering the register."""
    for line in log_text.splitlines():
        if re.search(r'recovered \d+ bindings', line):
            return line.strip()
    return None


# -- the two pure-Python benchmarks


_RULES_FIGURES = {
    'plan_ms_ro_on': r'route optimisation on ==.*?handover_plan_for_host, '
                     r'\d+ random moves: median ([\d.]+) ms',
    'plan_ms_ro_off': r'reverse tunnelling on ==.*?handover_plan_for_host, '
                      r'\d+ random moves: median ([\d.]+) ms',
    'switch_flows_ms_ro_on': r'route optimisation on ==.*?one switch\'s '
                             r'full flow set: median ([\d.]+) ms',
    'flows_per_switch_ro_on': r'route optimisation on ==.*?flows per '
                              r'switch: min \d+, median (\d+)',
    'network_build_ms': r'Network\(\) again from the same placements: '
                        r'([\d.]+) ms',
}
_MLR_FIGURES = {
    'allocations_per_s_full_flush_100':
        r'synchronous=FULL\s+flush every\s+100:\s+(\d+) /s',
    'handovers_per_s_flush_each': r'flush after each move\s+(\d+) /s',
    'handovers_per_s_flush_100': r'flush every 100 moves\s+(\d+) /s',
    'bytes_per_binding': r'(\d+) bindings:\s+(\d+) B resident',
    'recovery_s': r'(\d+) bindings: recovered in ([\d.]+) s',
}


def run_tool(script, args, run_dir):
    """Run a bench script; return (output text, seconds, exit status)."""
    log_path = os.path.join(run_dir, os.path.basename(script) + '.txt')
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, os.path.join(harness.BENCH_DIR, script)] + args,
        cwd=harness.REPO, capture_output=True, text=True, timeout=1800)
    with open(log_path, 'w') as log:
        log.write(result.stdout + result.stderr)
    return result.stdout, round(time.monotonic() - started, 1), \
        result.returncode


def extract(text, patterns):
    """Return the figures ``patterns`` find in ``text`` (None if absent).

    A pattern with two groups gives the pair (size, value) of its last
    match, so that the largest size wins.
    """
    figures = {}
    for name, pattern in patterns.items():
        matches = list(re.finditer(pattern, text, re.S))
        if not matches:
            figures[name] = None
        elif len(matches[-1].groups()) == 2:
            figures[name] = [float(value) for value in matches[-1].groups()]
        else:
            figures[name] = float(matches[-1].group(1))
    return figures


def run_tools(run_dir, quick):
    """Run bench_rules.py and bench_mlr.py; return their figures."""
    tools = {}
    text, seconds, status = run_tool('bench_rules.py', [], run_dir)
    tools['rules'] = dict(extract(text, _RULES_FIGURES), seconds=seconds,
                          exit_status=status, output=text)
    args = ['--quick'] if quick else []
    text, seconds, status = run_tool('bench_mlr.py', args, run_dir)
    tools['mlr'] = dict(extract(text, _MLR_FIGURES), seconds=seconds,
                        exit_status=status, output=text,
                        quick=bool(args))
    return tools


def run(quick=False, run_dir=None, **overrides):
    """Run the benchmark; return its results as a dict."""
    options = dict(DEFAULTS)
    if quick:
        options.update(QUICK)
    options.update({key: value for key, value in overrides.items()
                    if value is not None})
    run_dir = run_dir or harness.new_run_dir('scale')
    results = {'benchmark': 'scale', 'options': options, 'run_dir': run_dir}
    if options.get('skip_tools'):
        results['tools'] = None
    else:
        results['tools'] = run_tools(run_dir, options['quick_tools'])
    results['bindings'] = []
    for count in options['bindings']:
        results['bindings'].append(case(
            harness.new_run_dir('bindings-%d' % count, run_dir), 3, options,
            preloaded=count))
    results['cells'] = []
    for cells in options['cells']:
        results['cells'].append(case(
            harness.new_run_dir('cells-%d' % cells, run_dir), cells, options))
    return results


# -- reporting


def summary_rows(results):
    """Return [figure, value, target] rows for the overall table."""
    rows = []
    if results['tools'] is not None:
        rows += _tool_rows(results['tools'])
    for entry in results['bindings']:
        rows.append(['hand-over total_ms, %d preloaded bindings'
                     % entry['bindings_preloaded'], _case_value(entry),
                     'p50 < 5 ms'])
    for entry in results['cells']:
        rows.append(['hand-over total_ms, %d cells' % entry['cells'],
                     _case_value(entry), 'p50 < 5 ms'])
    return rows


def _tool_rows(tools):
    """Return the summary rows of bench_rules.py and bench_mlr.py."""
    rules = tools['rules']
    mlr = tools['mlr']
    return [
        ['bench_rules: hand-over plan, 100 cells / 10,000 hosts, RO on / '
         'off (median)', '%s / %s ms' % (rules['plan_ms_ro_on'],
                                         rules['plan_ms_ro_off']), ''],
        ['bench_rules: Network() rebuild at 10,000 hosts',
         '%s ms' % rules['network_build_ms'], ''],
        ['bench_mlr%s: durable allocations/s (FULL, flush per 100)'
         % (' --quick' if mlr['quick'] else ''),
         _figure(mlr['allocations_per_s_full_flush_100']), '20,000/s'],
        ['bench_mlr: register hand-overs/s (flush each / per 100)',
         '%s / %s' % (_figure(mlr['handovers_per_s_flush_each']),
                      _figure(mlr['handovers_per_s_flush_100'])), ''],
        ['bench_mlr: resident bytes per binding; recovery time',
         '%s; %s' % (_sized(mlr['bytes_per_binding'], '%.0f B'),
                     _sized(mlr['recovery_s'], '%.2f s')),
         '< 1 KiB; 1M in < 10 s'],
    ]


def _case_value(entry):
    if 'error' in entry:
        return 'not ready: %s' % entry['error']
    return harness.format_stats(entry['handover']['total_ms'])


def _figure(value):
    return '-' if value is None else '%.0f' % value


def _sized(pair, value_format):
    """Return '<value> at <count> bindings' for a (count, value) pair."""
    if not pair:
        return '-'
    return (value_format + ' at %d bindings') % (pair[1], pair[0])


def markdown(results):
    """Return the benchmark's Markdown section."""
    lines = ['## Scale\n',
             harness.markdown_table(['figure', 'value', 'target'],
                                    summary_rows(results)),
             '\n### Cases\n']
    rows = []
    for entry in results['bindings'] + results['cells']:
        if 'error' in entry:
            rows.append([entry['cells'], entry['bindings_preloaded'],
                         'not ready', '-', entry.get('controller_rss_mib'),
                         '-', '-', '-'])
            continue
        handover = entry['handover']
        rows.append([
            entry['cells'], entry['bindings_preloaded'], entry['ready_s'],
            ', '.join('%s' % count for count in
                      entry['flows_per_cell_switch'].values()),
            entry['controller_rss_mib_after'],
            '%d/%d' % (handover['committed'], handover['moves']),
            harness.format_stats(handover['total_ms']),
            ' / '.join('%s' % (handover[key]['p50'],) for key in
                       ('queued_ms', 'prepare_ms', 'commit_ms'))])
    lines.append(harness.markdown_table(
        ['cells', 'bindings', 'ready s', 'flows per cell switch',
         'RSS MiB', 'committed', 'total_ms', 'queued / prepare / commit '
         'p50 ms'], rows))
    return '\n'.join(lines)


def parse_arguments(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + ' ' +
        __doc__.splitlines()[1].strip())
    parser.add_argument('--quick', action='store_true',
                        help='1,000 and 10,000 bindings, 3 and 6 cells, '
                             '6 moves, bench_mlr.py --quick')
    parser.add_argument('--bindings', type=_counts,
                        help='comma-separated binding counts to preload '
                             '(default 1000,10000,100000)')
    parser.add_argument('--cells', type=_counts,
                        help='comma-separated cell counts (default 3,6,12)')
    parser.add_argument('--moves', type=int,
                        help='moves per case (default 20)')
    parser.add_argument('--skip-tools', action='store_true',
                        help='do not run bench_rules.py and bench_mlr.py')
    args = parser.parse_args(argv)
    if args.cells is not None and any(not 2 <= cells <= 253
                                      for cells in args.cells):
        parser.error('--cells must each be 2 to 253')
    if args.moves is not None and args.moves < 1:
        parser.error('--moves must be 1 or more')
    return args


def _counts(text):
    return [int(part) for part in text.split(',')]


def main(argv=None):
    """Run the benchmark from the command line; write and print results."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print('bench_scale.py needs root (Mininet and Open vSwitch)')
        return 2
    harness.prepare_process()
    machine = harness.describe_machine()
    results = run(quick=args.quick, bindings=args.bindings,
                  cells=args.cells, moves=args.moves,
                  skip_tools=args.skip_tools or None)
    paths = harness.publish(results, machine,
                            harness.timestamp() + '-scale', markdown,
                            summary_rows)
    print('results: %s and %s' % paths)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Helpers the emulation benchmarks share: processes, networks, figures.

Holds:
- ``describe_machine``, the facts a result is recorded with;
- ``RyuManager``, one ``ryu-manager`` process on free ports, stopped by
  its handle, and ``Rest``, GET requests to the TMip REST API;
- ``build_network``, a ``TmipTopo`` network under a name prefix of the
  benchmarks (bridges and hosts named ``b...``), and ``TmipRun``, such a
  network with the TMip controller, ready for traffic;
- ``summarize`` and ``percentile``, the figures every benchmark prints;
- ``new_run_dir`` and ``write_results``: logs go under
  ``/var/tmp/tmip-bench/``, results under ``bench/results/``.

Everything here needs root, Open vSwitch and Mininet, except the figure
helpers.
"""

import datetime
import json
import math
import os
import platform
import re
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
MININET_DIR = os.path.join(REPO, 'mininet')
if MININET_DIR not in sys.path:
    sys.path.insert(0, MININET_DIR)
if REPO not in sys.path:
    sys.path.append(REPO)

import tmip_topo  # noqa: E402  (found through the path set just above)
import tmip_traffic  # noqa: E402
from mininet.log import setLogLevel  # noqa: E402
from openflow_rules import TMIP_COOKIE, TMIP_COOKIE_MASK  # noqa: E402

RYU_MANAGER = os.path.join(os.path.dirname(sys.executable), 'ryu-manager')
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
RUNS_DIR = '/var/tmp/tmip-bench'
FINAL_STATUSES = ('committed', 'aborted', 'failed')


class BenchError(Exception):
    """A benchmark cannot go on; the message names the cause."""


def prepare_process():
    """Set up a benchmark's main process before it builds anything.

    Mininet prints only its warnings and errors, and SIGTERM raises
    KeyboardInterrupt, so that the ``finally`` blocks stop every
    process and network the benchmark started, as Ctrl-C does.
    """
    setLogLevel('warning')
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt()


# -- the machine


def _first_line(args):
    try:
        output = subprocess.run(args, capture_output=True, text=True,
                                timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = output.strip().splitlines()
    return lines[0].strip() if lines else None


def load_average():
    """Return the 1, 5 and 15 minute load averages as a list."""
    with open('/proc/loadavg') as loadavg:
        return [float(value) for value in loadavg.read().split()[:3]]


def other_controllers():
    """Return how many ryu-manager processes this benchmark did not start.

    Other engineers' tests share the machine; their controllers and
    bridges take CPU from the figures.
    """
    count = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) in RyuManager.started_pids:
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as cmdline:
                if b'ryu-manager' in cmdline.read():
                    count += 1
        except OSError:
            continue
    return count


def source_version():
    """Return the repository's commit and whether the code under test
    (tmip_ryu, openflow_rules, mininet) differs from it."""
    commit = _first_line(['git', '-C', REPO, 'rev-parse', '--short',
                          'HEAD'])
    changes = subprocess.run(
        ['git', '-C', REPO, 'status', '--porcelain', '--', 'tmip_ryu',
         'openflow_rules', 'mininet'], capture_output=True,
        text=True).stdout
    return {'commit': commit, 'uncommitted_changes': bool(changes.strip())}


def describe_machine():
    """Return the CPU, kernel, OVS and Python versions and the load."""
    cpu = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    ovs = _first_line(['ovs-vswitchd', '--version']) or 'unknown'
    return {
        'nproc': os.cpu_count(),
        'cpu_model': cpu,
        'kernel': platform.release(),
        'os': _first_line(['sh', '-c', '. /etc/os-release && echo '
                           '"$PRETTY_NAME"']),
        'ovs_version': ovs.split()[-1] if ovs != 'unknown' else ovs,
        'python': platform.python_version(),
        'memory_gib': round(os.sysconf('SC_PAGE_SIZE')
                            * os.sysconf('SC_PHYS_PAGES') / 2 ** 30, 1),
        'load_average': load_average(),
        'other_ryu_managers': other_controllers(),
        'other_bridges': len(other_bridges()),
        'source': source_version(),
    }


def other_bridges():
    """Return the OVS bridges whose names are not the benchmarks' (b...).

    Every bridge shares the one ovs-vswitchd, whose main thread forwards
    the packets of all of them in the userspace datapath.
    """
    output = subprocess.run(['ovs-vsctl', 'list-br'], capture_output=True,
                            text=True).stdout
    return [name for name in output.split()
            if not re.match(r'b[a-z]{2}s\d+$', name)]


class CpuMeter:
    """CPU use of the machine and of some processes between two readings.

    ``processes`` maps names to pids; ovs-vswitchd is always measured.
    ``stop`` returns, for the time since ``start``, the machine's busy
    share of all its CPUs (``machine_busy_pct``), each process's CPU
    time as a share of one CPU (``<name>_pct``, 100 = one core busy) and
    in seconds (``<name>_cpu_s``).
    """

    def __init__(self, processes=None):
        self._pids = {'ovs_vswitchd': _pid_of('ovs-vswitchd')}
        self._pids.update(processes or {})
        self._start = None

    def start(self):
        """Take the first reading; return self."""
        self._start = self._reading()
        return self

    def stop(self):
        """Return the figures since ``start`` as a dict."""
        end = self._reading()
        busy = end['busy'] - self._start['busy']
        total = end['total'] - self._start['total']
        seconds = end['time'] - self._start['time']
        result = {'machine_busy_pct': (round(100.0 * busy / total, 1)
                                       if total else None)}
        ticks = os.sysconf('SC_CLK_TCK')
        for name in self._pids:
            before, after = self._start[name], end[name]
            if before is None or after is None or not seconds:
                result[name + '_pct'] = result[name + '_cpu_s'] = None
                continue
            cpu_seconds = (after - before) / ticks
            result[name + '_cpu_s'] = round(cpu_seconds, 2)
            result[name + '_pct'] = round(100.0 * cpu_seconds / seconds, 1)
        return result

    def _reading(self):
        with open('/proc/stat') as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        total = sum(fields[:8])
        reading = {'busy': total - idle, 'total': total,
                   'time': time.monotonic()}
        for name, pid in self._pids.items():
            reading[name] = _process_ticks(pid)
        return reading


def _process_ticks(pid):
    """Return a process's user plus system CPU time in clock ticks."""
    if pid is None:
        return None
    try:
        with open('/proc/%d/stat' % pid) as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of proc(5).
    return int(fields[11]) + int(fields[12])


def _pid_of(program):
    output = _first_line(['pidof', '-s', program])
    return int(output) if output and output.isdigit() else None


# -- figures


def percentile(values, fraction):
    """Return the value below which ``fraction`` of ``values`` lie.

    Nearest-rank on the sorted values, so the result is always one of
    them; None for no values.
    """
    ordered = sorted(value for value in values if value is not None)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(values, digits=2):
    """Return count, p50, p95, max, min and mean of numbers (None skipped)."""
    numbers = [value for value in values if value is not None]
    if not numbers:
        return {'n': 0, 'p50': None, 'p95': None, 'max': None,
                'min': None, 'mean': None}
    return {'n': len(numbers),
            'p50': round(percentile(numbers, 0.50), digits),
            'p95': round(percentile(numbers, 0.95), digits),
            'max': round(max(numbers), digits),
            'min': round(min(numbers), digits),
            'mean': round(sum(numbers) / len(numbers), digits)}


def format_stats(stats, unit='ms'):
    """Return 'p50 X, p95 Y, max Z unit' for a ``summarize`` dict."""
    if not stats or not stats['n']:
        return 'no data'
    return 'p50 %s, p95 %s, max %s %s' % (
        _number(stats['p50']), _number(stats['p95']),
        _number(stats['max']), unit)


def _number(value):
    if value is None:
        return '-'
    if isinstance(value, float) and value >= 100:
        return '%.0f' % value
    if isinstance(value, float):
        return '%.1f' % value
    return str(value)


# -- files


def timestamp():
    """Return the current local time as 20240131-235959."""
    return datetime.datetime.now().strftime('%Y%m%d-%H%M%S')


def new_run_dir(name, parent=None):
    """Create and return a directory for one benchmark's logs and state."""
    parent = parent or os.path.join(RUNS_DIR, timestamp())
    path = os.path.join(parent, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_results(results, markdown, stem):
    """Write ``<stem>.json`` and ``<stem>.md`` under bench/results/.

    Returns the two paths.
    """
    os.makedirs(RESULTS_DIR, exist_ok=True)
    json_path = os.path.join(RESULTS_DIR, stem + '.json')
    markdown_path = os.path.join(RESULTS_DIR, stem + '.md')
    with open(json_path, 'w') as json_file:
        json.dump(results, json_file, indent=1, sort_keys=True)
        json_file.write('\n')
    with open(markdown_path, 'w') as markdown_file:
        markdown_file.write(markdown)
    return json_path, markdown_path


def print_rows(rows):
    """Print [figure, value, target] rows as aligned text."""
    for figure, value, target in rows:
        print('  %-55s %s%s' % (figure, value,
                                '  (target %s)' % target if target else ''))


def publish(results, machine, stem, markdown, summary_rows):
    """Record the machine in results, write them and print the summary.

    ``markdown`` and ``summary_rows`` are the benchmark's functions of
    the results.  Returns the paths of the JSON and Markdown files.
    """
    results['machine'] = machine
    results['machine']['load_average_end'] = load_average()
    paths = write_results(results, markdown(results), stem)
    print_rows(summary_rows(results))
    return paths


def markdown_table(header, rows):
    """Return a Markdown table with ``header`` and ``rows`` of cells."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(str(cell) for cell in row) + ' |')
    return '\n'.join(lines) + '\n'


# -- processes


def wait_until(predicate, timeout, message, interval=0.2):
    """Call ``predicate`` until it returns a true value; return that value.

    Raises BenchError naming ``message`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError('timed out after %.0f s waiting for %s'
                             % (timeout, message))
        time.sleep(interval)


class Rest:
    """GET requests to a controller's REST API on 127.0.0.1."""

    def __init__(self, port):
        self.base = 'http://127.0.0.1:%d' % port

    def get(self, path, timeout=30):
        """GET ``path``; return the decoded JSON body."""
        with urllib.request.urlopen(self.base + path,
                                    timeout=timeout) as reply:
            return json.loads(reply.read().decode())

    def try_get(self, path, timeout=30):
        """GET ``path``; return None if the request fails."""
        try:
            return self.get(path, timeout)
        except (OSError, urllib.error.URLError, ValueError):
            return None


class RyuManager:
    """One ``ryu-manager`` process on free ports, logging to a run dir.

    ``app`` is the module ryu-manager loads (``tmip_ryu.apps`` or
    ``ryu.app.simple_switch_13``).  OpenFlow listens on 127.0.0.1 only,
    and so does the REST API with ``rest``.  ``start`` waits until the
    OpenFlow port listens and, with ``rest``, ``/tmip/cells`` responds.
    """

    started_pids = set()

    def __init__(self, app, run_dir, config_path=None, rest=True):
        self.app = app
        self.run_dir = run_dir
        self.of_port = tmip_topo.listen_port('127.0.0.1')
        self.rest_port = None
        if rest:
            self.rest_port = tmip_topo.listen_port('127.0.0.1')
        self.log_path = os.path.join(run_dir, 'ryu-manager.log')
        self.args = [RYU_MANAGER, app, '--ofp-listen-host', '127.0.0.1',
                     '--ofp-tcp-listen-port', str(self.of_port)]
        if config_path:
            self.args += ['--config-file', config_path]
        if rest:
            self.args += ['--wsapi-host', '127.0.0.1',
                          '--wsapi-port', str(self.rest_port)]
        self.rest = Rest(self.rest_port) if rest else None
        self.process = None

    @property
    def target(self):
        """The ``ovs-vsctl set-controller`` target of this controller."""
        return 'tcp:127.0.0.1:%d' % self.of_port

    def start(self, timeout=120):
        """Start the process; with REST, wait until the API responds."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.run_dir, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        RyuManager.started_pids.add(self.process.pid)

        def ready():
            if self.process.poll() is not None:
                raise BenchError('ryu-manager %s exited with status %d; '
                                 'see %s' % (self.app,
                                             self.process.returncode,
                                             self.log_path))
            if not tmip_topo.listening(self.of_port):
                return False
            return (self.rest is None
                    or self.rest.try_get('/tmip/cells', timeout=5) is not None)

        wait_until(ready, timeout, 'ryu-manager %s to start (log %s)'
                   % (self.app, self.log_path))
        return self

    def resident_mib(self):
        """Return the process's resident memory in MiB, or None."""
        if self.process is None:
            return None
        try:
            with open('/proc/%d/status' % self.process.pid) as status:
                for line in status:
                    if line.startswith('VmRSS:'):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def log_text(self):
        """Return the process's log so far."""
        with open(self.log_path, errors='replace') as log:
            return log.read()

    def stop(self, timeout=15):
        """Stop the process by its handle; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


# -- networks


def build_network(prefix, **options):
    """Build and start a ``TmipTopo`` network named ``<prefix><letter>``.

    The letter is the first that makes no bridge or interface name clash
    with what exists (a network of another run, say).  Raises BenchError
    when all 26 clash.
    """
    for letter in string.ascii_lowercase:
        topo = tmip_topo.TmipTopo(prefix=prefix + letter, **options)
        try:
            return tmip_topo.build_network(topo)
        except tmip_topo.NameClash:
            continue
    raise BenchError('every name prefix %s[a-z] is in use by bridges or '
                     'interfaces; remove the leftovers of earlier runs'
                     % prefix)


def prefix_of(net):
    """Return the name prefix of a network built by ``build_network``."""
    return net.topo.prefix


def node(net, name):
    """Return the node ``name`` (without prefix) of a network."""
    return net[prefix_of(net) + name]


def host_address(host):
    """Return the IPv4 address configured on a host's interface now."""
    state = tmip_topo.tmip_dhcp.ipv4_state(host, host.defaultIntf().name)
    if state['interface'] is None:
        raise BenchError('%s has no IPv4 address' % host)
    return str(state['interface'].ip)


def tmip_flow_count(bridge):
    """Return how many flows with the TMip cookie marker a bridge holds."""
    output = subprocess.run(
        ['ovs-ofctl', '-O', 'OpenFlow14', 'dump-aggregate', bridge,
         'cookie=%#x/%#x' % (TMIP_COOKIE, TMIP_COOKIE_MASK)],
        capture_output=True, text=True).stdout
    match = re.search(r'flow_count=(\d+)', output)
    return int(match.group(1)) if match else None


def stop_process(process, timeout=5.0):
    """Stop a process started here by its handle; SIGKILL if it stays."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class TmipRun:
    """A TMip network with its controller, started and ready for traffic.

    ``start`` builds ``TmipTopo(cells, hosts, **topo_options)`` under the
    prefix and writes the controller's config (``extra`` adds ``[tmip]``
    options).
    It starts ``ryu-manager tmip_ryu.apps``, connects the bridges and
    waits for every core link.  Then it gives the mobile hosts a lease by
    DHCP and waits until every bridge has the flows the controller
    expects.  ``stop`` undoes all of it, by handle.
    """

    def __init__(self, run_dir, prefix, cells=3, hosts='1', extra=None,
                 state_file=None, **topo_options):
        self.run_dir = run_dir
        self.prefix = prefix
        self.cells = cells
        self.hosts = hosts
        self.topo_options = topo_options
        self.extra = dict(extra or {})
        self.state_file = state_file or os.path.join(run_dir,
                                                     'state.sqlite')
        self.net = None
        self.controller = None
        self.timings = {}

    def start(self, dhcp=True, timeout=180):
        """Start everything; return self.

        ``timeout`` bounds the whole start in seconds, from building the
        network to the settled flows.  A controller that installs the
        flows of many bindings needs minutes.  Raises BenchError when a
        step does not finish in time.
        """
        started = time.monotonic()
        deadline = started + timeout

        def left():
            return max(1.0, deadline - time.monotonic())

        self.net = build_network(self.prefix, cells=self.cells,
                                 hosts=self.hosts, **self.topo_options)
        config_path = os.path.join(self.run_dir, 'tmip.conf')
        with open(config_path, 'w') as config_file:
            config_file.write(tmip_topo.controller_config(
                self.net, state_file=self.state_file, extra=self.extra))
        self.controller = RyuManager('tmip_ryu.apps', self.run_dir,
                                     config_path).start(left())
        self.timings['controller_start_s'] = round(
            time.monotonic() - started, 2)
        tmip_topo.attach_controller(self.net, self.controller.target)
        wait_until(lambda: tmip_topo.bridges_connected(self.net), left(),
                   'the bridges to connect (log %s)'
                   % self.controller.log_path)
        links = 2 * self.cells
        wait_until(lambda: len((self.rest.try_get('/tmip/topology') or {})
                               .get('links', ())) >= links, left(),
                   '%d core links in /tmip/topology (log %s)'
                   % (links, self.controller.log_path))
        self.timings['connected_s'] = round(time.monotonic() - started, 2)
        if dhcp:
            for host in self.mobile_hosts():
                host.start_dhcp(self.run_dir)
            for host in self.mobile_hosts():
                host.dhcp.wait_bound(timeout=min(60.0, left()))
        self.wait_flows_settled(left())
        self.timings['ready_s'] = round(time.monotonic() - started, 2)
        return self

    @property
    def rest(self):
        """The controller's REST client."""
        return self.controller.rest

    def node(self, name):
        """Return a node by its name without prefix (``h1``, ``s2``)."""
        return node(self.net, name)

    def mobile_hosts(self):
        """Return the mobile hosts, in name order."""
        return tmip_topo.mobile_hosts(self.net)

    def flows_settled(self):
        """Tell whether every bridge has as many TMip flows as expected."""
        for switch in self.net.switches:
            expected = self.rest.try_get('/tmip/flows/%d'
                                         % int(switch.dpid, 16))
            if expected is None:
                return False
            if tmip_flow_count(switch.name) != expected['count']:
                return False
        return True

    def wait_flows_settled(self, timeout):
        """Wait until the flow counts match twice in a row, a second apart.

        The controller deletes leftovers only once a switch has settled,
        seconds after it connected, so one match may still change.
        """
        def settled_twice():
            if not self.flows_settled():
                return False
            time.sleep(1.0)
            return self.flows_settled()

        wait_until(settled_twice, timeout, 'the bridges to hold the flows '
                   'the controller expects (log %s)'
                   % self.controller.log_path, interval=0.5)

    def handovers(self, mac, since):
        """Return the final hand-over records of a host started after
        ``since`` (wall clock), oldest first."""
        history = self.rest.try_get('/tmip/handovers') or []
        return [entry for entry in history
                if entry.get('mac') == mac
                and (entry.get('started_at') or 0) >= since
                and entry.get('status') in FINAL_STATUSES]

    def wait_handover(self, mac, cell, since, timeout=10):
        """Return the committed hand-over of ``mac`` to ``cell``, or None.

        Waits up to ``timeout`` seconds for a record started after
        ``since``; returns the last final record to that cell if none
        committed.
        """
        deadline = time.monotonic() + timeout
        found = None
        while time.monotonic() < deadline:
            records = [entry for entry in self.handovers(mac, since)
                       if entry.get('to', {}).get('cell') == cell]
            for entry in records:
                if entry['status'] == 'committed':
                    return entry
            if records:
                found = records[-1]
            time.sleep(0.05)
        return found

    def stop(self):
        """Stop DHCP clients, the network and the controller."""
        if self.net is not None:
            for host in self.mobile_hosts():
                host.stop_dhcp()
            self.net.stop()
            self.net = None
        if self.controller is not None:
            self.controller.stop()


def start_stream(sender, receiver, address, port, run_dir, rate=1000):
    """Start one probe stream whose receiver logs every arrival.

    The sender is ``mininet/probe.py send``; the receiver is
    ``bench/probe_log.py``, which records each datagram's sequence
    number, send time and kernel arrival time.  Returns a ``Stream``.
    """
    stream = Stream(sender, receiver, address, port, run_dir, rate)
    return stream.start()


class Stream:
    """One probe stream from ``sender`` to ``receiver``'s ``port``."""

    def __init__(self, sender, receiver, address, port, run_dir, rate):
        self.sender = sender
        self.receiver = receiver
        self.address = address
        self.port = port
        self.rate = rate
        name = 'stream-%s-%s-%d' % (sender.name, receiver.name, port)
        self.log_path = os.path.join(run_dir, name + '.arrivals')
        self.sender_log = os.path.join(run_dir, name + '.sender.log')
        self.receiver_log = os.path.join(run_dir, name + '.receiver.log')
        self.sender_process = None
        self.receiver_process = None

    def start(self):
        """Start the receiver, wait until it listens, start the sender."""
        with open(self.receiver_log, 'ab') as log:
            self.receiver_process = self.receiver.popen(
                [sys.executable, os.path.join(BENCH_DIR, 'probe_log.py'),
                 '--port', str(self.port), '--output', self.log_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        tmip_traffic.wait_listening(self.receiver, 'udp', self.port)
        with open(self.sender_log, 'ab') as log:
            self.sender_process = self.sender.popen(
                [sys.executable, tmip_traffic.PROBE_SCRIPT, 'send',
                 '--to', self.address, '--port', str(self.port),
                 '--rate', str(self.rate)],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        return self

    def stop(self):
        """Stop the sender, then (after in-flight datagrams) the receiver."""
        stop_process(self.sender_process)
        time.sleep(0.3)
        stop_process(self.receiver_process)

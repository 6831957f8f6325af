"""Demonstrate TMip: a host roams through every cell and keeps its sessions.

Run as root from the repository::

    .venv/bin/python mininet/demo.py            # the scenario
    .venv/bin/python mininet/demo.py --interactive   # Mininet's CLI

The demo starts ``ryu-manager tmip_ryu.apps`` with a config generated for
the network, builds the cells, and brings every host up by DHCP.  Then an
iperf3 TCP session from ``ext`` and one from a host in another cell run
to the roaming host ``h1`` while a 1000 datagram/s UDP probe counts
losses.  ``h1`` moves through every cell and back home.  After each move
the demo prints the hand-over time the controller measured, the probe
datagrams lost, and whether both TCP sessions still carry data.  It ends
with a summary of ``/tmip/topology``, and exits 0 only if both sessions
survived every move.  Everything it started is stopped by its handle,
and only its own bridges are removed; logs stay in the run directory.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import tmip_topo
import tmip_traffic
from mininet.log import setLogLevel

RYU_MANAGER = os.path.join(os.path.dirname(sys.executable), 'ryu-manager')
REPO = os.path.dirname(tmip_topo.MININET_DIR)
IPERF_PORTS = (5201, 5202)
PROBE_PORT = 9000
FINAL_STATUSES = ('committed', 'aborted', 'failed')


class DemoError(Exception):
    """An error that ends the demo; the message names the cause and the fix."""


def say(text):
    """Print one line of the demo's report at once."""
    print(text, flush=True)


def port_is_free(port):
    """Tell whether a TCP port on 127.0.0.1 can be bound."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


class Rest:
    """GET requests to the controller's REST API on 127.0.0.1."""

    def __init__(self, port):
        self.base = 'http://127.0.0.1:%d' % port

    def get(self, path):
        """GET ``path`` and return the decoded JSON body."""
        with urllib.request.urlopen(self.base + path, timeout=5) as reply:
            return json.loads(reply.read().decode())

    def try_get(self, path):
        """GET ``path``; return None if the request fails."""
        try:
            return self.get(path)
        except (OSError, urllib.error.URLError, ValueError):
            return None


def wait_until(predicate, timeout, message, interval=0.2):
    """Call ``predicate`` until it is true; raise DemoError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError('timed out after %.0f s waiting for %s'
                            % (timeout, message))
        time.sleep(interval)


class ControllerProcess:
    """``ryu-manager tmip_ryu.apps``, logging into the run directory."""

    def __init__(self, config_path, of_port, rest_port, run_dir):
        self.args = [RYU_MANAGER, 'tmip_ryu.apps',
                     '--config-file', config_path,
                     '--ofp-tcp-listen-port', str(of_port),
                     '--wsapi-host', '127.0.0.1',
                     '--wsapi-port', str(rest_port)]
        self.log_path = os.path.join(run_dir, 'ryu-manager.log')
        self.rest = Rest(rest_port)
        self.process = None

    def start(self, timeout=30):
        """Start ryu-manager and wait until its REST API responds."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.args, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

        def answers():
            if self.process.poll() is not None:
                raise DemoError('ryu-manager exited with status %d; see %s'
                                % (self.process.returncode, self.log_path))
            return self.rest.try_get('/tmip/cells') is not None

        wait_until(answers, timeout, 'the REST API of ryu-manager (log: %s)'
                   % self.log_path)

    def stop(self, timeout=10):
        """Stop ryu-manager by its pid; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def parse_arguments(argv):
    """Parse the demo's command line."""
    parser = argparse.ArgumentParser(
        description='Roam a host through every TMip cell and report '
                    'hand-over times, probe losses and TCP survival.')
    parser.add_argument('--cells', type=int, default=3,
                        help='number of cells (default 3)')
    parser.add_argument('--hosts', default='1',
                        help='mobile hosts per cell: one number, or one per '
                             'cell as 2:1:1 (default 1)')
    parser.add_argument('--dhcp-client', default='dhclient',
                        choices=sorted(tmip_topo.tmip_dhcp.CLIENTS),
                        help='DHCP client of every host (default dhclient)')
    parser.add_argument('--of-port', type=int, default=6653,
                        help='OpenFlow port of the controller (default 6653)')
    parser.add_argument('--rest-port', type=int, default=8080,
                        help='REST port of the controller on 127.0.0.1 '
                             '(default 8080)')
    parser.add_argument('--prefix', default='',
                        help='text in front of every node name, to run '
                             'beside another network (default none)')
    parser.add_argument('--run-dir', default=None,
                        help='directory for the config, logs and state '
                             '(default: a new one under /var/tmp)')
    parser.add_argument('--prewired', action='store_true',
                        help='wire each host to every cell and move it by '
                             'taking one link down and another up, as a '
                             'radio link would')
    parser.add_argument('--dwell', type=float, default=4.0,
                        help='seconds the host stays in each cell '
                             '(default 4)')
    parser.add_argument('--bitrate', default='20M',
                        help='rate limit of each iperf3 session, iperf3 -b '
                             'syntax (default 20M)')

    parser.add_argument('--no-route-optimisation', action='store_true',
                        help='route through the home cell (the triangle)')
    parser.add_argument('--reverse-tunnelling', action='store_true',
                        help='send a roaming host\'s traffic out of its home '
                             'cell\'s uplink')

    parser.add_argument('--interactive', action='store_true',
                        help='open the Mininet CLI on the network instead '
                             'of playing the scenario')
    parser.add_argument('--verbose', action='store_true',
                        help='show Mininet\'s own progress messages')

    args = parser.parse_args(argv)
    if args.cells < 2 and not args.interactive:
        parser.error('--cells must be 2 or more for the roaming scenario')
    if args.dwell <= 0:
        parser.error('--dwell must be above 0 seconds')
    return args


class Demo:
    """The network, controller and traffic of one demo run."""

    def __init__(self, args):
        self.args = args
        self.run_dir = args.run_dir or tempfile.mkdtemp(prefix='tmip-demo-',
                                                        dir='/var/tmp')
        os.makedirs(self.run_dir, exist_ok=True)
        self.net = None
        self.controller = None
        self.rest = Rest(args.rest_port)
        self.sessions = []
        self.probe = None

    def name(self, node):
        """Return a node's full name, with the run's prefix."""
        return self.args.prefix + node

    # Setting up

    def start(self):
        """Build the cells, start the controller and give hosts leases."""
        for port in (self.args.of_port, self.args.rest_port):
            if not port_is_free(port):
                raise DemoError('port %d on 127.0.0.1 is in use; choose '
                                'another with --of-port or --rest-port'
                                % port)
        self.build()
        config_path = os.path.join(self.run_dir, 'tmip.conf')
        with open(config_path, 'w') as config_file:
            config_file.write(self.config_text())
        self.controller = ControllerProcess(
            config_path, self.args.of_port, self.args.rest_port,
            self.run_dir)
        self.controller.start()
        say('controller up; log %s' % self.controller.log_path)
        self.connect('tcp:127.0.0.1:%d' % self.args.of_port)
        self.start_dhcp()

    def build(self):
        """Build and start the cells, with no controller yet."""
        try:
            topo = tmip_topo.TmipTopo(cells=self.args.cells,
                                      hosts=self.args.hosts,
                                      prefix=self.args.prefix,
                                      dhcp_client=self.args.dhcp_client,
                                      prewired=self.args.prewired)
        except ValueError as problem:
            raise DemoError('invalid topology: %s' % problem)
        try:
            self.net = tmip_topo.build_network(topo)
        except tmip_topo.NameClash as clash:
            raise DemoError('%s (--prefix)' % clash)
        say('run directory: %s' % self.run_dir)
        say('built %d cells, %d mobile hosts, router and ext'
            % (self.args.cells, len(tmip_topo.mobile_hosts(self.net))))

    def config_text(self):
        """Return the controller's config for the built cells."""
        return tmip_topo.controller_config(
            self.net, state_file=os.path.join(self.run_dir, 'state.sqlite'),
            route_optimisation=not self.args.no_route_optimisation,
            reverse_tunnelling=self.args.reverse_tunnelling)

    def connect(self, target):
        """Connect the bridges to ``target``; wait for the core links."""
        tmip_topo.attach_controller(self.net, target)
        try:
            wait_until(lambda: tmip_topo.bridges_connected(self.net), 30,
                       'every bridge to connect to the controller')
        except DemoError as error:
            raise DemoError('%s at %s; OVS reports:\n%s' % (
                error, target, tmip_topo.connection_report(self.net)))
        links = 2 * self.args.cells
        wait_until(lambda: len((self.rest.try_get('/tmip/topology')
                                or {}).get('links', ())) >= links, 30,
                   'the controller to discover %d core links' % links)
        say('bridges connected, %d core links discovered' % links)

    def start_dhcp(self):
        """Start every host's DHCP client and print the leases."""
        started = time.monotonic()
        hosts = tmip_topo.mobile_hosts(self.net)
        for host in hosts:
            host.start_dhcp(self.run_dir)
        for host in hosts:
            state = host.dhcp.wait_bound(timeout=60)
            say('  %-6s %s  %s via %s (%s, %.1f s)' % (
                host.name, host.MAC(), state['interface'], state['router'],
                host.dhcp.name, time.monotonic() - started))

    # The scenario

    def address_of(self, host):
        """Return a host's IPv4 address as text."""
        state = tmip_topo.tmip_dhcp.ipv4_state(host, host.defaultIntf().name)
        return str(state['interface'].ip)

    def play(self):
        """Roam h1 through every cell; return True if TCP survived."""
        roaming = self.net[self.name('h1')]
        peer = self._host_in_other_cell(roaming)
        ext = self.net[self.name('ext')]
        address = self.address_of(roaming)
        cells = list(range(2, self.args.cells + 1)) + [1]
        duration = int(self.args.dwell * len(cells) + 10)

        self._wait_reachable(roaming, address, (ext, peer))
        for client, port in zip((ext, peer), IPERF_PORTS):
            self.sessions.append(tmip_traffic.IperfSession(
                client, roaming, address, port, self.run_dir,
                bitrate=self.args.bitrate, duration=duration).start())
        self.probe = tmip_traffic.ProbeStream(
            ext, roaming, address, PROBE_PORT, self.run_dir).start()
        for session in self.sessions:
            if not session.wait_progress(session.started_at, timeout=10):
                raise DemoError('iperf3 from %s to %s carries no data '
                                'before any move; see %s'
                                % (session.client, roaming,
                                   session.client_log))
        time.sleep(1.0)
        say('%s (%s) roams; iperf3 from %s and %s, probe from %s at 1000/s'
            % (roaming, address, ext, peer, ext))

        survived = True
        for cell in cells:
            survived &= self._move_and_report(roaming, cell)

        finished = [session.finish() for session in self.sessions]
        for session, ok in zip(self.sessions, finished):
            say('iperf3 %s -> %s: %s' % (
                session.client, session.server,
                'completed' if ok else 'FAILED (see %s)'
                % session.client_log))
        totals = self.probe.stop()
        say('probe: %d of %d datagrams received, %d missing'
            % (totals['received'], totals['highest'] + 1,
               totals['missing']))
        return survived and all(finished)

    @staticmethod
    def _wait_reachable(roaming, address, senders, timeout=30):
        """Wait until ``roaming`` replies to ping from each of ``senders``.

        The controller installs tunnels between cells only once the core
        links are known and the switches have settled, a few seconds after
        they connected.
        """
        started = time.monotonic()
        for sender in senders:
            left = timeout - (time.monotonic() - started)
            if tmip_traffic.wait_ping(sender, address, max(left, 1)) is None:
                raise DemoError('%s gets no reply from %s (%s) after %.0f s'
                                % (sender, roaming, address, timeout))
        say('%s reachable from %s after %.1f s' % (
            roaming, ', '.join(str(sender) for sender in senders),
            time.monotonic() - started))

    def _host_in_other_cell(self, roaming):
        home = tmip_topo.switch_of(roaming)
        for host in tmip_topo.mobile_hosts(self.net):
            if tmip_topo.switch_of(host) is not home:
                return host
        raise DemoError('no mobile host outside %s to send from' % home)

    def _move_and_report(self, host, cell):
        """Move ``host`` to ``cell``, wait, print one line; return alive."""
        old_switch = tmip_topo.switch_of(host)
        new_switch = self.net[self.name('s%d' % cell)]
        before = self.probe.wait_fresh_snapshot(time.time())
        moved_wall, moved_at = time.time(), time.monotonic()
        tmip_topo.move(self.net, host, new_switch)
        move_ms = (time.monotonic() - moved_at) * 1000

        handover = self._wait_handover(host, cell, moved_wall)
        time.sleep(max(0.0, moved_at + self.args.dwell - time.monotonic()))
        after = self.probe.wait_fresh_snapshot(time.time())
        alive = [session.running() and session.bytes_since(moved_at) > 0
                 for session in self.sessions]

        lost = after['missing'] - before['missing']
        sent = after['highest'] - before['highest']
        sessions = ', '.join(
            'TCP from %s %s' % (session.client, 'alive' if ok else 'DEAD')
            for session, ok in zip(self.sessions, alive))
        say('move %s %s -> %s: link moved and announced in %.0f ms; %s; '
            'probe lost %d of %d; %s' % (
                host, old_switch, new_switch, move_ms,
                self._describe(handover), lost, sent, sessions))
        return all(alive)

    def _wait_handover(self, host, cell, since):
        """Return the hand-over record of this move, or None."""
        def record():
            history = self.rest.try_get('/tmip/handovers') or []
            for entry in reversed(history):
                if (entry.get('mac') == host.MAC()
                        and entry.get('to', {}).get('cell') == cell
                        and entry.get('started_at', 0) >= since - 1.0
                        and entry.get('status') in FINAL_STATUSES):
                    return entry
            return None

        try:
            return wait_until(record, 10, 'the hand-over record')
        except DemoError:
            return None

    @staticmethod
    def _describe(handover):
        if handover is None:
            return 'no hand-over record in 10 s'
        timings = handover.get('timings', {})
        if handover.get('status') != 'committed':
            return 'hand-over %s (%s)' % (handover.get('status'),
                                          handover.get('reason'))
        return 'hand-over %.1f ms (prepare %.1f, commit %.1f)' % (
            timings.get('total_ms', float('nan')),
            timings.get('prepare_ms', float('nan')),
            timings.get('commit_ms', float('nan')))

    def summary(self):
        """Print a summary of the controller's /tmip/topology."""
        topology = self.rest.try_get('/tmip/topology')
        if topology is None:
            say('topology: the REST API did not answer')
            return
        say('topology: %d switches, %d core links, %d cells, %d hosts, '
            '%d tunnels' % tuple(len(topology.get(key, ())) for key in (
                'switches', 'links', 'cells', 'hosts', 'tunnels')))
        for host in topology.get('hosts', ()):
            say('  host %s %s home cell %s, now cell %s port %s (seq %s)'
                % (host.get('mac'), host.get('address'),
                   host.get('home_cell'), host.get('cell'),
                   host.get('port'), host.get('seq')))

    def interact(self):
        """Open the Mininet CLI with the move, dhcp and leases commands."""
        cli = tmip_topo.TmipCLI
        cli.run_dir = self.run_dir
        cli(self.net)

    # Clean-up

    def stop(self):
        """Stop everything this run started, by handle."""
        if self.probe is not None:
            self.probe.stop()
        for session in self.sessions:
            session.stop()
        if self.net is not None:
            for host in tmip_topo.mobile_hosts(self.net):
                host.stop_dhcp()
            self.net.stop()
            self.net = None
        if self.controller is not None:
            self.controller.stop()


def _terminate(_signum, _frame):
    raise KeyboardInterrupt()


def main(argv=None):
    """Run the demo; return the exit status."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        say('demo.py needs root (Mininet and Open vSwitch); run it with sudo')
        return 2
    if args.verbose:
        setLogLevel('info')
    else:
        # The CLI prints its results at the 'output' level.
        setLogLevel('output' if args.interactive else 'warning')
    signal.signal(signal.SIGTERM, _terminate)
    demo = Demo(args)
    try:
        demo.start()
        if args.interactive:
            demo.interact()
            return 0
        survived = demo.play()
        demo.summary()
        say('result: %s' % ('every TCP session survived every move'
                            if survived else 'a TCP session did not survive'))
        return 0 if survived else 1
    except DemoError as problem:
        say('demo stopped: %s' % problem)
        return 1
    except KeyboardInterrupt:
        say('interrupted; cleaning up')
        return 130
    finally:
        demo.stop()
        say('logs: %s' % demo.run_dir)


if __name__ == '__main__':
    sys.exit(main())

"""Helpers the end-to-end tests share: TMip cells in Mininet, run by tests.

``emulation_factory`` builds networks of ``mininet/tmip_topo.py`` with a
name prefix of their own and stops them after the test.  ``tmip`` starts
such a network with a controller configured for it and brings its hosts
up by DHCP.  Test modules import the fixtures they use by name, with
``emulation_factory`` whenever they use ``tmip``.
"""

import collections
import os
import re
import string
import time

import pytest

from openflow_rules import is_tmip_cookie
from support.ovs import dump_flows
from support.processes import wait_for

# support.processes has put mininet/ on the path.
import tmip_topo
import tmip_traffic

ping = tmip_traffic.ping
wait_ping = tmip_traffic.wait_ping


class Emulation:
    """One started Mininet network of TMip cells, named ``<prefix>...``.

    Node names are the topology's with a prefix such as ``e42a``, so that
    networks of different test runs never share a bridge or interface
    name.  Hosts are numbered as in the topology: ``host(1)`` is the first
    host of cell 1.
    """

    def __init__(self, run_dir, cells=3, hosts=1, dhcp_client='dhclient',
                 host_clients=None, standalone=False, prewired=False):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.cells = cells
        self.net = None
        self.sessions = []
        last_error = None
        for letter in string.ascii_lowercase:
            self.prefix = 'e%02d%s' % (os.getpid() % 100, letter)
            clients = {self.prefix + name: client
                       for name, client in (host_clients or {}).items()}
            topo = tmip_topo.TmipTopo(
                cells=cells, hosts=hosts, prefix=self.prefix,
                standalone=standalone, dhcp_client=dhcp_client,
                host_clients=clients, prewired=prewired)
            try:
                self.net = tmip_topo.build_network(topo)
                break
            except tmip_topo.NameClash as clash:
                last_error = clash
        if self.net is None:
            raise last_error

    def host(self, number):
        """Return mobile host ``h<number>``."""
        return self.net[self.prefix + 'h%d' % number]

    def switch(self, cell):
        """Return the switch of a cell (254: the core switch)."""
        return self.net[self.prefix + 's%d' % cell]

    @property
    def ext(self):
        """The correspondent host behind the router."""
        return self.net[self.prefix + 'ext']

    @property
    def router(self):
        """The Linux router all uplinks lead to."""
        return self.net[self.prefix + 'r0']

    @property
    def switch_names(self):
        """Names of every bridge of the network."""
        return [switch.name for switch in self.net.switches]

    def config(self, **options):
        """Return the controller's ``[tmip]`` text for this network."""
        return tmip_topo.controller_config(self.net, **options)

    def connect(self, controller, timeout=20):
        """Connect every bridge to ``controller`` and wait until they are.

        On a timeout the error shows each bridge's connection state, as
        OVS reports it, and the end of the controller's log.
        """
        tmip_topo.attach_controller(self.net, controller.of_target)
        try:
            wait_for(lambda: tmip_topo.bridges_connected(self.net), timeout,
                     interval=0.2)
        except TimeoutError:
            raise TimeoutError(
                'bridges of %s did not connect to %s within %d s; ryu-manager '
                '%s.\nOVS reports:\n%s\nThe end of %s:\n%s' % (
                    self.prefix, controller.of_target, timeout,
                    controller.state(),
                    tmip_topo.connection_report(self.net),
                    controller.log_path, controller.log_tail(30))) from None

    def start_dhcp(self, hosts=None, timeout=40):
        """Start the DHCP clients of ``hosts`` (default all); wait leases.

        Returns {host name: ``tmip_dhcp.ipv4_state``}.
        """
        hosts = hosts or tmip_topo.mobile_hosts(self.net)
        for host in hosts:
            host.start_dhcp(self.run_dir)
        return {host.name: host.dhcp.wait_bound(timeout) for host in hosts}

    def address(self, host):
        """Return the IPv4 address configured on a host now, as text."""
        state = tmip_topo.tmip_dhcp.ipv4_state(host, host.defaultIntf().name)
        assert state['interface'] is not None, '%s has no address' % host
        return str(state['interface'].ip)

    def iperf(self, client, server, port, **options):
        """Start an iperf3 session to ``server``; it is stopped with us."""
        session = tmip_traffic.IperfSession(
            client, server, self.address(server), port, self.run_dir,
            **options)
        self.sessions.append(session)
        return session.start()

    def move(self, host, cell, announce=True):
        """Move a host's link to the switch of ``cell``; return its port."""
        return tmip_topo.move(self.net, host, self.switch(cell),
                              announce=announce)

    def flow_tables(self):
        """Return {bridge: sorted flows}, without counters."""
        return {name: sorted(dump_flows(name)) for name in self.switch_names}

    def stop(self):
        """Stop DHCP clients and the network; remove its bridges."""
        if self.net is None:
            return
        for session in self.sessions:
            session.stop()
        for host in tmip_topo.mobile_hosts(self.net):
            host.stop_dhcp()
        self.net.stop()
        self.net = None


@pytest.fixture
def emulation_factory(tmp_path):
    """Build emulations for one test; stop each one afterwards."""
    made = []

    def make(**options):
        run_dir = str(tmp_path / ('emulation%d' % len(made)))
        emulation = Emulation(run_dir, **options)
        made.append(emulation)
        return emulation

    yield make
    for emulation in made:
        emulation.stop()


def core_links_seen(controller, expected):
    """Tell whether the controller reports ``expected`` core links."""
    topology = controller.get('/tmip/topology')
    return len(topology.get('links', ())) >= expected


def start_tmip(controller_factory, emulation_factory, dhcp=True,
               route_optimisation=True, reverse_tunnelling=False,
               extra=None, **options):
    """Start cells, a controller configured for them, and DHCP.

    Returns (emulation, controller) once every bridge is connected, the
    controller reports every core link (two directions per cell), with
    ``dhcp`` every mobile host has a lease, and every bridge has the flows
    the controller expects.  The controller corrects flows computed
    before the core links were known only once a switch has settled, a
    few seconds after it connected.
    """
    emulation = emulation_factory(**options)
    controller = controller_factory(emulation.config(
        route_optimisation=route_optimisation,
        reverse_tunnelling=reverse_tunnelling, extra=extra))
    emulation.connect(controller)
    wait_for(lambda: core_links_seen(controller, 2 * emulation.cells), 30,
             interval=0.5, message='the core links of %s in /tmip/topology'
             % emulation.prefix)
    if dhcp:
        emulation.start_dhcp()
    wait_flows_settled(controller, emulation, timeout=30, cookies=False)
    return emulation, controller


@pytest.fixture
def tmip(controller_factory, emulation_factory):
    """Start TMip networks for one test: ``tmip(**options)``."""

    def start(**options):
        return start_tmip(controller_factory, emulation_factory, **options)

    return start


def binding_of(controller, host):
    """Return the controller's binding of a host as a dict, or None."""
    status, body = controller.get_status('/tmip/hosts/%s' % host.MAC())
    return body if status == 200 else None


def wait_binding_cell(controller, host, cell, timeout=10):
    """Wait until the controller places ``host`` in ``cell``."""
    def placed():
        binding = binding_of(controller, host)
        return binding is not None and binding['cell'] == cell

    wait_for(placed, timeout, interval=0.1,
             message='%s in cell %d in /tmip/hosts (log: %s)'
             % (host, cell, controller.log_path))


def handovers_of(controller, host):
    """Return the controller's hand-over records of a host, oldest first."""
    records = [record for record in controller.get('/tmip/handovers')
               if record['mac'] == host.MAC()]
    return sorted(records, key=lambda record: record['started_at'])


def _flow_keys(lines, cookies):
    """Count TMip flows by ([cookie,] table, priority, actions)."""
    keys = collections.Counter()
    for line in lines:
        fields = dict(re.findall(r'(cookie|table|priority)=(\w+)', line))
        cookie = int(fields.get('cookie', '0'), 16)
        if not is_tmip_cookie(cookie):
            continue
        actions = line.partition('actions=')[2].strip()
        key = (int(fields.get('table', 0)),
               int(fields.get('priority', 32768)), actions)
        keys[(cookie,) + key if cookies else key] += 1
    return keys


def flow_differences(controller, emulation, cookies=True):
    """Compare each bridge's TMip flows with the controller's expected set.

    Flows are compared by cookie, table, priority and actions, counted,
    because the controller renders its expected matches in add-flow
    syntax and OVS dumps them in another form (``ip,nw_dst=`` for
    ``eth_type=0x0800,ip_dst=``).  Actions read the same in both.
    ``cookies=False`` ignores cookies: OpenFlow 1.3's modify keeps a
    flow's cookie, so a flow whose kind changed may keep its old cookie
    and still forward right.  Returns a list of sentences, empty when every
    bridge has the flows the controller expects.
    """
    differences = []
    for switch in emulation.net.switches:
        dpid = int(switch.dpid, 16)
        expected = _flow_keys(
            controller.get('/tmip/flows/%d' % dpid)['expected'], cookies)
        actual = _flow_keys(dump_flows(switch.name), cookies)
        for key in sorted(set(expected) | set(actual)):
            if expected[key] != actual[key]:
                differences.append('%s: %s: %d on the switch, %d expected'
                                   % (switch.name, _describe_key(key),
                                      actual[key], expected[key]))
    return differences


def _describe_key(key):
    text = 'table %d priority %d actions %s' % key[-3:]
    if len(key) == 4:
        text = 'cookie %#x %s' % (key[0], text)
    return text


def wait_flows_settled(controller, emulation, timeout=10, cookies=True):
    """Wait until every bridge has the controller's expected flows."""
    last = []

    def settled():
        last[:] = flow_differences(controller, emulation, cookies)
        return not last

    try:
        wait_for(settled, timeout, interval=0.3,
                 message='flows to match /tmip/flows')
    except TimeoutError:
        raise AssertionError('flows differ from /tmip/flows after %d s:\n%s'
                             % (timeout, '\n'.join(last)))


def send_one_frame(host):
    """Make a host send exactly one frame: an ARP request for its gateway.

    Returns the time just before it was sent (``time.monotonic()``).
    """
    gateway = tmip_topo.tmip_dhcp.ipv4_state(
        host, host.defaultIntf().name)['router']
    sent_at = time.monotonic()
    output = host.cmd('arping -q -c 1 -w 1 -i %s %s'
                      % (host.defaultIntf(), gateway))
    return sent_at, output

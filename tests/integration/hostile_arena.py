"""A controller, cells of OVS bridges and namespace hosts to attack.

``Arena`` starts ``ryu-manager tmip_ryu.apps`` on its own ports, adds
bridges 1..N in a line joined by patch ports, and plugs hosts in as
network namespaces.  ``remove()`` deletes exactly what it created: its
namespaces and veths, its bridges, and its controller, stopped by pid.
"""

import itertools
import os
import re

from openflow_rules import TMIP_COOKIE, TMIP_COOKIE_MASK
from support.netns import Host, wait_until
from support.ovs import Bridges, dump_flows, is_connected, run
from support.processes import Controller, wait_for

_arena_numbers = itertools.count()
_host_numbers = itertools.count(1)
_mac_numbers = itertools.count(1)

_N_PACKETS = re.compile(r'n_packets=(\d+)')
_FLOW_KEY_FIELD = re.compile(r'(cookie|table|priority)=(0x[0-9a-f]+|\d+)')
_METER_PACKETS_IN = re.compile(r'packet_in_count:(\d+)')
_METER_BAND_PACKETS = re.compile(r'^\s*0: packet_count:(\d+)', re.MULTILINE)


def fresh_mac():
    """Return a unicast MAC that no other call in this process returns."""
    pid = os.getpid()
    number = next(_mac_numbers)
    return '02:6a:%02x:%02x:%02x:%02x' % ((pid >> 8) & 0xff, pid & 0xff,
                                          number >> 8 & 0xff, number & 0xff)


class Arena:
    """One controller and ``cells`` bridges, with hosts added on demand."""

    def __init__(self, workdir, cells=2, config_text=None):
        self.workdir = workdir
        number = next(_arena_numbers)
        os.makedirs(workdir, exist_ok=True)
        self.tag = 'hx%d%s' % (os.getpid() % 10000, chr(ord('a') + number))
        self.hosts = []
        self.bridges = Bridges(self.tag)
        controller_dir = os.path.join(workdir, 'controller')
        os.makedirs(controller_dir, exist_ok=True)
        self.controller = Controller(config_text, (), controller_dir)
        try:
            self.controller.start()
            self.names = [self.bridges.add(i, i, self.controller.of_target)
                          for i in range(1, cells + 1)]
            for left, right in zip(self.names, self.names[1:]):
                self._patch(left, right)
            for name in self.names:
                wait_for(lambda: is_connected(name), 15,
                         message='%s to connect' % name)
        except BaseException:
            self.remove()
            raise

    def _patch(self, left, right):
        left_port, right_port = left + 'r', right + 'l'
        run('ovs-vsctl', 'add-port', left, left_port, '--', 'set',
            'interface', left_port, 'type=patch',
            'options:peer=%s' % right_port, '--', 'add-port', right,
            right_port, '--', 'set', 'interface', right_port, 'type=patch',
            'options:peer=%s' % left_port)

    def bridge(self, cell):
        """Return the bridge name of a cell."""
        return self.names[cell - 1]

    def add_host(self, cell, mac=None):
        """Plug a new namespace host into a cell's bridge and return it."""
        name = '%sh%d' % (self.tag, next(_host_numbers))
        host = Host(name, mac or fresh_mac(), self.workdir)
        self.hosts.append(host)
        host.attach(self.bridge(cell))
        return host

    def wait_for_links(self, count):
        """Wait until LLDP has found ``count`` link directions."""
        wait_for(lambda: len(self.controller.get('/tmip/topology')['links'])
                 >= count, 30, interval=0.3, message='core links')

    def binding(self, mac):
        """Return the binding of a MAC from REST, or None if unknown."""
        status, body = self.controller.get_status('/tmip/hosts/%s' % mac)
        if status == 404:
            return None
        assert status == 200, body
        return body

    def wait_binding(self, mac, timeout=5, **expected):
        """Wait until the binding of ``mac`` has the ``expected`` fields."""
        def matches():
            binding = self.binding(mac)
            return binding is not None and all(
                binding.get(key) == value for key, value in expected.items())
        return wait_until(matches, timeout, interval=0.1)

    def counters(self):
        """Return the controller's drop counters (hand-over stats left out)."""
        body = self.controller.get('/tmip/counters')
        return {name: value for name, value in body.items()
                if isinstance(value, int)}

    def log_size(self):
        """Return the length of the controller's log so far."""
        return len(self.controller.log_text())

    def log_since(self, size):
        """Return what the controller logged after the first ``size`` chars."""
        return self.controller.log_text()[size:]

    def flow_packets(self, cell, cookie):
        """Return n_packets of the flows with exactly this cookie."""
        text = run('ovs-ofctl', '-O', 'OpenFlow14', 'dump-flows',
                   self.bridge(cell), 'cookie=0x%x/-1' % cookie)
        return sum(int(count) for count in _N_PACKETS.findall(text))

    def meter_stats(self, cell, meter_id):
        """Return (packets into the meter, packets its band dropped)."""
        text = run('ovs-ofctl', '-O', 'OpenFlow13', 'meter-stats',
                   self.bridge(cell), 'meter=%d' % meter_id)
        packets_in = _METER_PACKETS_IN.search(text)
        dropped = _METER_BAND_PACKETS.search(text)
        if packets_in is None or dropped is None:
            raise RuntimeError('no stats for meter %d on %s: %s'
                               % (meter_id, self.bridge(cell), text))
        return int(packets_in.group(1)), int(dropped.group(1))

    def held_flow_keys(self, cell):
        """Return sorted (cookie, table, priority) of a bridge's TMip flows."""
        lines = dump_flows(self.bridge(cell), '0x%x/0x%x'
                           % (TMIP_COOKIE, TMIP_COOKIE_MASK))
        return flow_keys(lines)

    def expected_flow_keys(self, cell):
        """Return the keys of the flows the controller expects on a cell."""
        expected = self.controller.get('/tmip/flows/%d' % cell)['expected']
        return flow_keys(expected)

    def flows_agree(self):
        """Tell whether every bridge has exactly the expected TMip flows."""
        return all(self.held_flow_keys(cell) == self.expected_flow_keys(cell)
                   for cell in range(1, len(self.names) + 1))

    def wait_settled(self, timeout=20):
        """Wait until every bridge has exactly the expected TMip flows.

        Until a switch has settled, the controller only adds flows, so
        leftovers from before link discovery stay for some seconds.
        """
        wait_for(self.flows_agree, timeout, interval=0.5,
                 message='the flows of %s to settle' % self.tag)

    def remove(self):
        """Delete this arena's hosts and bridges and stop its controller."""
        for host in self.hosts:
            host.remove()
        self.hosts.clear()
        self.bridges.remove_all()
        self.controller.stop()


def flow_keys(lines):
    """Return sorted (cookie, table, priority) of ovs-ofctl flow lines.

    Each TMip cookie names the flow's kind and owner, so two equal lists
    mean that no flow is missing and none is left over.
    """
    keys = []
    for line in lines:
        if line.startswith('#') or not line.strip():
            continue
        fields = dict(_FLOW_KEY_FIELD.findall(line))
        keys.append((int(fields['cookie'], 0), int(fields.get('table', 0)),
                     int(fields.get('priority', 32768))))
    return sorted(keys)

"""Open vSwitch installs the encoder's flow-mods as the rules mean them.

Each test speaks OpenFlow to a fresh userspace bridge (no controller,
fail_mode=secure) over its management socket and sends flow-mods that
``ofp_wire`` encoded, alone or inside an OpenFlow 1.4 bundle.  A second
bridge gets the same flows from their ovs-ofctl text, a path that does
not touch the encoder, and ``ovs-ofctl -O OpenFlow14 dump-flows`` must
print the same flows for both.
"""

import dataclasses
import itertools
import os
import socket
import struct

import pytest

from openflow_rules import (
    PACKET_IN_METER_ID, PACKET_IN_RATE_PPS, desired_flows, render_ofctl_all)
from openflow_rules.flow import MATCH_FIELDS, flow_sort_key
from openflow_rules.scenarios import golden_scenarios
from support.fake_switch import FakeDatapath
from support.ovs import dump_flows, run
from tmip_ryu.ofp_render import flow_mod

pytestmark = pytest.mark.integration

_OVS_RUNDIR = os.environ.get('OVS_RUNDIR', '/var/run/openvswitch')
_OFPT_HELLO = 0
_OFPT_ERROR = 1
_OFPT_ECHO_REQUEST = 2
_OFPT_ECHO_REPLY = 3
_bridge_numbers = itertools.count()

# Switch 2 of this scenario has a roaming host attached: its flows use
# every action kind and every match field the pipeline builds, masks
# included.
SCENARIO, DPID = 'star_roaming', 2


class OpenFlowSession:
    """An OpenFlow connection to a bridge's management socket."""

    def __init__(self, bridge, version):
        self.datapath = FakeDatapath(0, version)
        self.errors = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(os.path.join(_OVS_RUNDIR, '%s.mgmt' % bridge))
        self.send(self.datapath.ofproto_parser.OFPHello(self.datapath))

    def close(self):
        self.sock.close()

    def send(self, message):
        """Serialize a message as Ryu's Datapath does and send it."""
        self.datapath.send_msg(message)
        self.sock.sendall(bytes(message.buf))
        return message.xid

    def _receive(self):
        header = self._read(8)
        version, msg_type, length, xid = struct.unpack('!BBHI', header)
        return version, msg_type, xid, header + self._read(length - 8)

    def _read(self, size):
        data = b''
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError('bridge closed the OpenFlow session')
            data += chunk
        return data

    def wait_reply(self, xid):
        """Read messages until the reply to xid; record errors on the way."""
        while True:
            version, msg_type, reply_xid, data = self._receive()
            if msg_type == _OFPT_ECHO_REQUEST:
                self.sock.sendall(struct.pack(
                    '!BBHI', version, _OFPT_ECHO_REPLY, len(data),
                    reply_xid) + data[8:])
            elif msg_type == _OFPT_ERROR:
                self.errors.append((reply_xid, data[8:12].hex()))
                if reply_xid == xid:
                    return msg_type
            elif reply_xid == xid and msg_type != _OFPT_HELLO:
                return msg_type

    def barrier(self):
        """Send a barrier and wait for its reply."""
        parser = self.datapath.ofproto_parser
        return self.wait_reply(self.send(parser.OFPBarrierRequest(
            self.datapath)))

    def send_flow_mods(self, commands):
        """Send (flow, command) flow-mods one by one, behind a barrier."""
        for flow, command in commands:
            self.send(flow_mod(self.datapath, flow, command))
        self.barrier()

    def send_bundle(self, commands):
        """Send (flow, command) flow-mods in one atomic, ordered bundle."""
        ofproto = self.datapath.ofproto
        parser = self.datapath.ofproto_parser
        flags = ofproto.OFPBF_ATOMIC | ofproto.OFPBF_ORDERED

        def control(kind):
            message = parser.OFPBundleCtrlMsg(self.datapath, 1, kind, flags,
                                              [])
            return self.wait_reply(self.send(message))

        control(ofproto.OFPBCT_OPEN_REQUEST)
        for flow, command in commands:
            self.send(parser.OFPBundleAddMsg(
                self.datapath, 1, flags,
                flow_mod(self.datapath, flow, command), []))
        control(ofproto.OFPBCT_CLOSE_REQUEST)
        control(ofproto.OFPBCT_COMMIT_REQUEST)
        self.barrier()


@pytest.fixture
def bridge():
    """Create bridges with the scenario switch's ports; delete them after."""
    created = []
    ports = sorted(golden_scenarios()[SCENARIO].switches[DPID].ports)

    def create():
        name = 'tw%d%02d' % (os.getpid() % 10000, next(_bridge_numbers))
        created.append(name)
        run('ovs-vsctl', 'add-br', name, '--', 'set', 'bridge', name,
            'datapath_type=netdev', 'protocols=OpenFlow13,OpenFlow14',
            'fail_mode=secure')
        for port in ports:
            interface = '%sp%d' % (name, port)
            run('ovs-vsctl', 'add-port', name, interface, '--', 'set',
                'interface', interface, 'type=internal',
                'ofport_request=%d' % port)
        run('ovs-ofctl', '-O', 'OpenFlow13', 'add-meter', name,
            'meter=%d,pktps,band=type=drop,rate=%d'
            % (PACKET_IN_METER_ID, PACKET_IN_RATE_PPS))
        return name

    yield create
    for name in created:
        run('ovs-vsctl', '--if-exists', 'del-br', name, check=False)


def _scenario_flows():
    network = golden_scenarios()[SCENARIO]
    return sorted(desired_flows(DPID, network), key=flow_sort_key)


def _loaded_from_text(bridge, flows, tmp_path):
    """Load flows into a bridge from their ovs-ofctl text; dump them."""
    path = tmp_path / 'flows.ofctl'
    path.write_text(render_ofctl_all(flows))
    run('ovs-ofctl', '-O', 'OpenFlow13', 'add-flows', bridge, str(path))
    return sorted(dump_flows(bridge))


@pytest.mark.parametrize('version, in_bundle', [
    (0x04, False), (0x05, False), (0x05, True),
], ids=['of13', 'of14', 'of14-bundle'])
def test_ovs_installs_adds_as_text_would(bridge, tmp_path, version,
                                                 in_bundle):
    flows = _scenario_flows()
    expected = _loaded_from_text(bridge(), flows, tmp_path)
    target = bridge()
    session = OpenFlowSession(target, version)

    try:
        commands = [(flow, 'add') for flow in flows]
        if in_bundle:
            session.send_bundle(commands)
        else:
            session.send_flow_mods(commands)
    finally:
        session.close()

    assert session.errors == []
    assert len(expected) == len(flows)
    assert sorted(dump_flows(target)) == expected


def test_scenario_switch_uses_every_kind_the_pipeline_builds():
    flows = _scenario_flows()
    actions = {action[0] for flow in flows for action in flow.actions}
    fields = {field for flow in flows for field, _ in flow.match}
    masked = {field for flow in flows for field, value in flow.match
              if isinstance(value, tuple)}

    assert actions == {'output', 'set_field', 'dec_ttl', 'push_mpls',
                       'pop_mpls', 'meter', 'goto_table'}
    assert fields == MATCH_FIELDS - {'eth_dst', 'udp_src'}
    assert masked == {'ipv4_dst'}


@pytest.mark.parametrize('in_bundle', [False, True],
                         ids=['of14', 'of14-bundle'])
def test_ovs_applies_modify_and_strict_delete(bridge, tmp_path,
                                                      in_bundle):
    flows = _scenario_flows()
    deleted = next(flow for flow in flows if flow.match and flow.actions)
    old = next(flow for flow in flows
               if flow.match and flow.actions and flow != deleted)
    modified = dataclasses.replace(old, cookie=old.cookie ^ 0xff,
                                   actions=(('output', 1),))
    final = [flow for flow in flows if flow not in (deleted, old)]
    expected = _loaded_from_text(bridge(), final + [modified], tmp_path)
    target = bridge()
    session = OpenFlowSession(target, 0x05)

    try:
        session.send_flow_mods([(flow, 'add') for flow in flows])
        changes = [(deleted, 'delete'), (modified, 'modify')]
        if in_bundle:
            session.send_bundle(changes)
        else:
            session.send_flow_mods(changes)
    finally:
        session.close()

    dumped = sorted(dump_flows(target))
    assert session.errors == []
    assert len(dumped) == len(flows) - 1
    assert dumped == expected

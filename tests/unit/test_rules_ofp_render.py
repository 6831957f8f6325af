"""Flows survive the trip to OpenFlow bytes and back unchanged.

The controller reconciles a switch by reading its flows back with
flow_from_stats and comparing them with the rules' flows.  A flow that
reads back different, even in the case of a MAC, would be rewritten on
every reconnect.
"""

import pytest
from ryu.ofproto import ofproto_parser

from openflow_rules import Kind, describe_cookie, desired_flows
from openflow_rules import scenarios
from openflow_rules.flow import flow_sort_key
from support.fake_switch import FakeDatapath
from tmip_ryu.ofp_render import flow_from_stats, flow_mod

# OpenFlow 1.3 and 1.4, the versions the controller speaks.
VERSIONS = (0x04, 0x05)


def _read_back(datapath, flow):
    """Encode a flow as an ADD flow-mod, then parse it as a switch would."""
    message = flow_mod(datapath, flow, 'add')
    datapath.send_msg(message)
    version, msg_type, length, xid = ofproto_parser.header(message.buf)
    parsed = ofproto_parser.msg(datapath, version, msg_type, length, xid,
                                bytes(message.buf))
    # A parsed flow-mod has every attribute flow_from_stats reads from a
    # flow stats entry: table, priority, cookie, timeouts, match and
    # instructions.
    return flow_from_stats(datapath.ofproto, parsed)


def _scenario_flows():
    roaming = scenarios.move(scenarios.star(), 'aa:00:00:00:01:00', 2, 2)
    networks = dict(scenarios.golden_scenarios(), roaming_star=roaming)
    for name, network in sorted(networks.items()):
        for dpid in sorted(network.switches):
            for flow in sorted(desired_flows(dpid, network),
                               key=flow_sort_key):
                yield name, dpid, flow


FLOWS = list(_scenario_flows())


@pytest.mark.parametrize('version', VERSIONS, ids=['of13', 'of14'])
def test_every_scenario_flow_reads_back_equal(version):
    datapath = FakeDatapath(1, version)
    for name, dpid, flow in FLOWS:
        assert _read_back(datapath, flow) == flow, (name, dpid)


@pytest.mark.parametrize('version', VERSIONS, ids=['of13', 'of14'])
def test_arp_reply_reads_back_with_normalised_values(version):
    datapath = FakeDatapath(1, version)
    reply = next(flow for _, _, flow in FLOWS
                 if describe_cookie(flow.cookie).kind == Kind.ARP_REPLY)

    read = _read_back(datapath, reply)

    assert read == reply
    assert dict(read.match)['arp_spa'] == dict(reply.match)['arp_spa']
    assert dict(read.match)['arp_sha'] == dict(reply.match)['arp_sha']
    assert ('set_field', 'arp_op', 2) in read.actions
    assert read.actions[-1] == ('output', 'IN_PORT')


def test_scenarios_include_arp_replies():
    replies = [flow for _, _, flow in FLOWS
               if describe_cookie(flow.cookie).kind == Kind.ARP_REPLY]

    assert len(replies) >= 4

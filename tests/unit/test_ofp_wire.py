"""The flow-mod encoder writes the bytes Ryu's OFPFlowMod writes.

Every flow the pipeline builds over the example scenarios, and flows
drawn by hypothesis over every match field and action the rules know,
are encoded both ways for add, modify and delete, OpenFlow 1.3 and 1.4,
and the bytes compared.  Invalid flows raise ValueError.
"""

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ryu.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_4

from openflow_rules import FlowDiff, Settings, desired_flows, scenarios
from openflow_rules.flow import (
    MATCH_FIELDS, SET_FIELDS, flow_sort_key, unchecked_flow)
from support.fake_switch import FakeDatapath, decode_message
from tmip_ryu import ofp_wire
from tmip_ryu.ofp_render import diff_messages, flow_mod, ryu_flow_mod

VERSIONS = (0x04, 0x05)
VERSION_IDS = ['of13', 'of14']
COMMANDS = ('add', 'modify', 'delete')
XID = 0x1234


def _ryu_bytes(datapath, flow, command):
    message = ryu_flow_mod(datapath, flow, command)
    message.set_xid(XID)
    message.serialize()
    return bytes(message.buf)


def _wire_bytes(datapath, flow, command, cache=None):
    message = ofp_wire.flow_mod_message(datapath, flow, command,
                                        cache=cache)
    message.set_xid(XID)
    message.serialize()
    return bytes(message.buf)


def _scenario_networks():
    star = scenarios.star()
    ring = scenarios.ring(4)
    return dict(
        scenarios.golden_scenarios(),
        star_roaming_far=scenarios.move(star, 'aa:00:00:00:03:00', 2, 1),
        ring_roaming=scenarios.move(ring, 'aa:00:00:00:02:00', 4, 2),
        ring_reverse_no_optimisation=scenarios.move(
            scenarios.ring(5, Settings(route_optimisation=False,
                                       reverse_tunnelling=True)),
            'aa:00:00:00:01:00', 3, 2),
        line_unresolved_uplink=scenarios.build_network(
            cells=(1, 2, 3), edges=((1, 2), (2, 3)),
            hosts=((1, 3, 1), (3, 1, 2)), uplinks=((2, False),)),
    )


def _scenario_flows():
    flows = set()
    for network in _scenario_networks().values():
        for dpid in network.switches:
            flows |= desired_flows(dpid, network)
    return sorted(flows, key=flow_sort_key)


SCENARIO_FLOWS = _scenario_flows()


@pytest.mark.parametrize('version', VERSIONS, ids=VERSION_IDS)
@pytest.mark.parametrize('command', COMMANDS)
def test_scenario_flows_encode_as_ryu_does(version, command):
    datapath = FakeDatapath(1, version)

    for flow in SCENARIO_FLOWS:
        assert _wire_bytes(datapath, flow, command) == \
            _ryu_bytes(datapath, flow, command), flow


def test_scenario_flows_cover_every_action_kind():
    kinds = {action[0] for flow in SCENARIO_FLOWS for action in flow.actions}
    ports = {action[1] for flow in SCENARIO_FLOWS for action in flow.actions
             if action[0] == 'output'}

    assert kinds == {'output', 'set_field', 'dec_ttl', 'push_mpls',
                     'pop_mpls', 'meter', 'goto_table'}
    assert {'CONTROLLER', 'IN_PORT'} <= ports


def test_scenario_flows_cover_every_match_field():
    fields = {field for flow in SCENARIO_FLOWS for field, _ in flow.match}
    masked = {field for flow in SCENARIO_FLOWS
              for field, value in flow.match if isinstance(value, tuple)}

    assert fields == MATCH_FIELDS - {'eth_dst', 'udp_src'}
    assert masked == {'ipv4_dst'}


def test_encoder_knows_every_field_of_the_rules():
    assert MATCH_FIELDS | SET_FIELDS <= ofp_wire.OXM_FIELDS


@pytest.mark.parametrize('name', [
    'OFPT_FLOW_MOD', 'OFPFC_ADD', 'OFPFC_DELETE_STRICT', 'OFPP_CONTROLLER',
    'OFPP_IN_PORT', 'OFPP_TABLE', 'OFPP_ANY', 'OFPG_ANY', 'OFP_NO_BUFFER',
    'OFPCML_NO_BUFFER', 'OFPMT_OXM', 'OFPXMC_OPENFLOW_BASIC', 'OFPAT_OUTPUT',
    'OFPAT_SET_FIELD', 'OFPAT_DEC_NW_TTL', 'OFPAT_PUSH_MPLS',
    'OFPAT_POP_MPLS', 'OFPIT_METER', 'OFPIT_APPLY_ACTIONS',
    'OFPIT_GOTO_TABLE'])
def test_encoder_constants_equal_in_both_versions(name):
    assert getattr(ofproto_v1_3, name) == getattr(ofproto_v1_4, name)


# Hypothesis draws flows without Flow's checks, so that it reaches
# values the pipeline never builds: masks on MAC and ARP fields, value
# bits outside a mask, output to TABLE and prerequisites left out.
_macs = st.binary(min_size=6, max_size=6).map(
    lambda raw: ':'.join('%02x' % octet for octet in raw))
_ipv4s = st.binary(min_size=4, max_size=4).map(
    lambda raw: '.'.join(str(octet) for octet in raw))
_uint8 = st.integers(0, 0xff)
_uint16 = st.integers(0, 0xffff)
_uint32 = st.integers(0, 0xffffffff)
_FIELD_VALUES = {
    'in_port': _uint32,
    'eth_dst': _macs | st.tuples(_macs, _macs),
    'eth_src': _macs | st.tuples(_macs, _macs),
    'eth_type': _uint16,
    'ip_proto': _uint8,
    'ipv4_src': _ipv4s | st.tuples(_ipv4s, _ipv4s),
    'ipv4_dst': _ipv4s | st.tuples(_ipv4s, _ipv4s),
    'udp_src': _uint16,
    'udp_dst': _uint16,
    'arp_op': _uint16,
    'arp_spa': _ipv4s | st.tuples(_ipv4s, _ipv4s),
    'arp_tpa': _ipv4s | st.tuples(_ipv4s, _ipv4s),
    'arp_sha': _macs | st.tuples(_macs, _macs),
    'arp_tha': _macs | st.tuples(_macs, _macs),
    'mpls_label': st.integers(0, (1 << 20) - 1),
}
_SET_FIELD_VALUES = {
    'eth_src': _macs, 'eth_dst': _macs, 'mpls_label':
    st.integers(0, (1 << 20) - 1), 'arp_op': _uint16, 'arp_sha': _macs,
    'arp_spa': _ipv4s, 'arp_tha': _macs, 'arp_tpa': _ipv4s,
}
_matches = st.dictionaries(
    st.sampled_from(sorted(_FIELD_VALUES)), st.just(None), max_size=8,
).flatmap(lambda fields: st.fixed_dictionaries(
    {field: _FIELD_VALUES[field] for field in fields},
)).map(lambda fields: tuple(sorted(fields.items())))
_set_fields = st.sampled_from(sorted(_SET_FIELD_VALUES)).flatmap(
    lambda field: _SET_FIELD_VALUES[field].map(
        lambda value: ('set_field', field, value)))
_plain_actions = st.one_of(
    st.tuples(st.just('output'),
              st.sampled_from(['CONTROLLER', 'IN_PORT', 'TABLE'])
              | st.integers(1, 0xffffff00)),
    _set_fields,
    st.just(('dec_ttl',)),
    st.just(('push_mpls', 0x8847)),
    st.tuples(st.just('pop_mpls'), _uint16),
)
_actions = st.tuples(
    st.lists(st.tuples(st.just('meter'), st.integers(1, 0xffff0000)),
             max_size=1),
    st.lists(_plain_actions, max_size=8),
    st.lists(st.tuples(st.just('goto_table'), st.integers(1, 254)),
             max_size=1),
).map(lambda parts: tuple(parts[0] + parts[1] + parts[2]))
_flows = st.builds(
    unchecked_flow, table=st.integers(0, 254), priority=_uint16,
    match=_matches, actions=_actions, cookie=st.integers(0, (1 << 64) - 1))


@settings(max_examples=300, deadline=None)
@given(flow=_flows, command=st.sampled_from(COMMANDS),
       version=st.sampled_from(VERSIONS))
def test_drawn_flows_encode_as_ryu_does(flow, command, version):
    datapath = FakeDatapath(1, version)

    assert _wire_bytes(datapath, flow, command) == \
        _ryu_bytes(datapath, flow, command)


@settings(max_examples=100, deadline=None)
@given(flow=_flows, idle=_uint16, hard=_uint16)
def test_drawn_timeouts_encode_as_ryu_does(flow, idle, hard):
    datapath = FakeDatapath(1, 0x05)
    flow = unchecked_flow(flow.table, flow.priority, flow.match,
                          flow.actions, flow.cookie)
    object.__setattr__(flow, 'idle_timeout', idle)
    object.__setattr__(flow, 'hard_timeout', hard)

    assert _wire_bytes(datapath, flow, 'add') == \
        _ryu_bytes(datapath, flow, 'add')


def _flow(match=(), actions=(), table=0):
    return unchecked_flow(table, 100, match, actions, 0x42)


@pytest.mark.parametrize('flow, named', [
    (_flow(match=(('vlan_vid', 3),)), 'vlan_vid'),
    (_flow(actions=(('group', 1),)), 'group'),
    (_flow(actions=(('set_field', 'tcp_dst', 80),)), 'tcp_dst'),
    (_flow(actions=(('output', 'LOCAL'),)), 'LOCAL'),
    (_flow(actions=(('output', -1),)), '-1'),
    (_flow(actions=(('output', 1 << 32),)), '4294967296'),
    (_flow(actions=(('output',),)), 'output'),
    (_flow(actions=(('dec_ttl', 1),)), 'dec_ttl'),
    (_flow(actions=((),)), r'\(\)'),
    (_flow(match=(('in_port', 'one'),)), 'in_port'),
    (_flow(match=(('in_port', 1 << 32),)), 'in_port'),
    (_flow(match=(('in_port', (1, 1)),)), 'in_port'),
    (_flow(match=(('eth_src', 'aa:bb:cc:dd:ee'),)), 'eth_src'),
    (_flow(match=(('eth_src', 'aa-bb-cc-dd-ee-ff'),)), 'eth_src'),
    (_flow(match=(('eth_src', 'aa:bb:cc:dd:ee:gg'),)), 'eth_src'),
    (_flow(match=(('ipv4_dst', '10.1.0.256'),)), 'ipv4_dst'),
    (_flow(match=(('ipv4_dst', '10.1'),)), 'ipv4_dst'),
    (_flow(match=(('ipv4_dst', ('10.1.0.0', '255.255.0.0', 1)),)),
     'ipv4_dst'),
    (_flow(match=(('eth_type', True),)), 'eth_type'),
    (_flow(match=('eth_type',)), 'eth_type'),
    (_flow(actions=(('set_field', 'eth_dst', ('aa:bb:cc:dd:ee:ff',
                                              'ff:ff:ff:ff:ff:ff')),)),
     'eth_dst'),
    (_flow(actions=(('pop_mpls', 0x10000),)), '65536'),
    (_flow(actions=(('meter', 1 << 32),)), 'meter'),
    (_flow(actions=(('goto_table', 256),)), 'goto_table'),
    (unchecked_flow(0, 1 << 16, (), (), 0), 'out of range'),
])
def test_invalid_flow_raises_naming_it(flow, named):
    datapath = FakeDatapath(1)

    with pytest.raises(ValueError, match=named):
        ofp_wire.flow_mod_message(datapath, flow, 'add', cache=None)


def test_unknown_command_raises_value_error():
    datapath = FakeDatapath(1)

    with pytest.raises(ValueError, match="'replace'"):
        flow_mod(datapath, SCENARIO_FLOWS[0], 'replace')


def test_unsupported_version_raises_value_error():
    datapath = types.SimpleNamespace(
        ofproto=types.SimpleNamespace(OFP_VERSION=0x06))

    with pytest.raises(ValueError, match='0x06'):
        flow_mod(datapath, SCENARIO_FLOWS[0], 'add')


def test_delete_carries_match_but_no_instructions():
    datapath = FakeDatapath(1)
    flow = next(flow for flow in SCENARIO_FLOWS if flow.match and
                flow.actions)

    message = flow_mod(datapath, flow, 'delete')
    datapath.send_msg(message)
    decoded = datapath.sent[-1]

    assert decoded.command == datapath.ofproto.OFPFC_DELETE_STRICT
    assert decoded.instructions == []
    assert dict(decoded.match.items()) == dict(flow.match)


def test_modify_is_sent_as_add():
    datapath = FakeDatapath(1)
    flow = SCENARIO_FLOWS[0]

    assert _wire_bytes(datapath, flow, 'modify') == \
        _wire_bytes(datapath, flow, 'add')


@pytest.mark.parametrize('version', VERSIONS, ids=VERSION_IDS)
def test_message_header_has_version_length_and_xid(version):
    datapath = FakeDatapath(1, version)
    flow = SCENARIO_FLOWS[-1]
    message = flow_mod(datapath, flow, 'add')

    datapath.send_msg(message)
    header = ofproto_parser.header(bytes(message.buf))

    assert isinstance(message, datapath.ofproto_parser.MsgBase)
    assert header == (version, datapath.ofproto.OFPT_FLOW_MOD,
                      len(message.buf), datapath.xid)
    assert message.xid == datapath.xid


def test_unsent_message_serializes_with_xid_zero():
    datapath = FakeDatapath(1)
    message = flow_mod(datapath, SCENARIO_FLOWS[0], 'add')

    message.serialize()

    assert ofproto_parser.header(bytes(message.buf))[3] == 0


def test_bundle_add_bytes_match_ryu():
    datapath = FakeDatapath(1, 0x05)
    parser = datapath.ofproto_parser
    flags = datapath.ofproto.OFPBF_ATOMIC | datapath.ofproto.OFPBF_ORDERED
    flow = next(flow for flow in SCENARIO_FLOWS if len(flow.actions) > 4)
    bundles = []
    for inner in (flow_mod(datapath, flow, 'add'),
                  ryu_flow_mod(datapath, flow, 'add')):
        bundle = parser.OFPBundleAddMsg(datapath, 7, flags, inner, [])
        bundle.set_xid(XID)
        bundle.serialize()
        bundles.append(bytes(bundle.buf))

    assert bundles[0] == bundles[1]


def test_fake_datapath_decodes_bundle_inner():
    datapath = FakeDatapath(1, 0x05)
    parser = datapath.ofproto_parser
    flow = next(flow for flow in SCENARIO_FLOWS if flow.cookie)
    inner = flow_mod(datapath, flow, 'add')

    datapath.send_msg(parser.OFPBundleAddMsg(datapath, 7, 0, inner, []))
    recorded = datapath.of_type('OFPBundleAddMsg')[0].message

    assert type(recorded).__name__ == 'OFPFlowMod'
    assert recorded.cookie == flow.cookie
    assert recorded.xid == datapath.xid


def test_decoded_header_fields_match_flow():
    datapath = FakeDatapath(1)
    flow = next(flow for flow in SCENARIO_FLOWS
                if flow.table == 2 and flow.actions)
    message = flow_mod(datapath, flow, 'add')
    datapath.send_msg(message)

    decoded = decode_message(datapath, message.buf)

    assert (decoded.table_id, decoded.priority, decoded.cookie) == \
        (flow.table, flow.priority, flow.cookie)
    assert decoded.buffer_id == datapath.ofproto.OFP_NO_BUFFER
    assert decoded.out_port == datapath.ofproto.OFPP_ANY
    assert decoded.out_group == datapath.ofproto.OFPG_ANY


def test_diff_messages_orders_deletes_modifies_adds():
    datapath = FakeDatapath(1)
    first, second, third = SCENARIO_FLOWS[:3]
    flow_diff = FlowDiff(add=(first,), modify=(second,), delete=(third,))

    messages = diff_messages(datapath, flow_diff)

    assert [(m.command, m.flow) for m in messages] == [
        ('delete', third), ('modify', second), ('add', first)]
    assert all(isinstance(m, ofp_wire.FlowModMessage) for m in messages)


def test_cache_returns_stored_body_on_resend():
    cache = ofp_wire.BodyCache(8)
    datapath = FakeDatapath(1)
    flow = SCENARIO_FLOWS[0]

    first = _wire_bytes(datapath, flow, 'add', cache)
    second = _wire_bytes(datapath, flow, 'add', cache)

    assert first == second == _ryu_bytes(datapath, flow, 'add')
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_keeps_add_and_delete_apart():
    cache = ofp_wire.BodyCache(8)
    datapath = FakeDatapath(1)
    flow = next(flow for flow in SCENARIO_FLOWS if flow.actions)

    add = _wire_bytes(datapath, flow, 'add', cache)
    delete = _wire_bytes(datapath, flow, 'delete', cache)

    assert add != delete
    assert delete == _ryu_bytes(datapath, flow, 'delete')
    assert len(cache) == 2


def test_cache_evicts_least_recently_used_body():
    cache = ofp_wire.BodyCache(2)
    datapath = FakeDatapath(1)
    first, second, third = SCENARIO_FLOWS[:3]

    for flow in (first, second, first, third):
        _wire_bytes(datapath, flow, 'add', cache)
    _wire_bytes(datapath, first, 'add', cache)

    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (2, 3)


def test_cache_skips_unhashable_flow():
    cache = ofp_wire.BodyCache(8)
    datapath = FakeDatapath(1)
    flow = _flow(match=(('eth_type', 0x0800),
                        ('ipv4_dst', ['10.0.0.0', '255.0.0.0'])))

    with pytest.raises(ValueError, match='ipv4_dst'):
        ofp_wire.flow_mod_message(datapath, flow, 'add', cache=cache)
    assert len(cache) == 0

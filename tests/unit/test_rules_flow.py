"""Flow, make_match and the action vocabulary reject what OpenFlow would."""

import pytest

from openflow_rules import Flow, make_match


def test_make_match_sorts_fields_by_name():
    match = make_match(ipv4_dst='10.1.0.2', eth_type=0x0800, in_port=3)

    assert match == (('eth_type', 0x0800), ('in_port', 3),
                     ('ipv4_dst', '10.1.0.2'))


def test_make_match_lowers_mac_case():
    match = make_match(eth_src='AA:BB:CC:DD:EE:FF')

    assert match == (('eth_src', 'aa:bb:cc:dd:ee:ff'),)


def test_make_match_turns_prefix_into_address_and_mask():
    match = make_match(eth_type=0x0800, ipv4_dst='10.2.3.4/16')

    assert dict(match)['ipv4_dst'] == ('10.2.0.0', '255.255.0.0')


def test_make_match_full_mask_gives_plain_address():
    match = make_match(eth_type=0x0800,
                       ipv4_dst=('10.2.3.4', '255.255.255.255'))

    assert dict(match)['ipv4_dst'] == '10.2.3.4'


@pytest.mark.parametrize('fields, missing', [
    ({'ipv4_dst': '10.1.0.2'}, 'eth_type'),
    ({'eth_type': 0x0806, 'ipv4_src': '10.1.0.2'}, 'eth_type'),
    ({'eth_type': 0x0800, 'udp_dst': 67}, 'ip_proto'),
    ({'eth_type': 0x0800, 'ip_proto': 6, 'udp_dst': 67}, 'ip_proto'),
    ({'mpls_label': 1001}, 'eth_type'),
    ({'arp_tpa': '10.1.0.1'}, 'eth_type'),
])
def test_make_match_rejects_missing_prerequisite(fields, missing):
    with pytest.raises(ValueError, match='needs %s=' % missing):
        make_match(**fields)


@pytest.mark.parametrize('fields', [
    {'vlan_vid': 3},
    {'eth_src': 'aa:bb:cc:dd:ee'},
    {'in_port': 0},
    {'in_port': 'CONTROLLER'},
    {'eth_type': 0x0800, 'ipv4_dst': '10.1.0.256'},
    {'eth_type': 0x8847, 'mpls_label': 1 << 20},
])
def test_make_match_rejects_invalid_field(fields):
    with pytest.raises((ValueError, TypeError)):
        make_match(**fields)


def _flow(actions, table=0, match=()):
    return Flow(table=table, priority=1, match=match, actions=actions,
                cookie=0)


@pytest.mark.parametrize('actions', [
    (),
    (('output', 3),),
    (('output', 'CONTROLLER'),),
    (('output', 'IN_PORT'),),
    (('meter', 1000), ('output', 'CONTROLLER')),
    (('push_mpls', 0x8847), ('set_field', 'mpls_label', 1002),
     ('output', 11)),
    (('pop_mpls', 0x0800), ('goto_table', 2)),
    (('set_field', 'eth_src', '02:00:00:00:00:01'), ('dec_ttl',),
     ('output', 1)),
])
def test_flow_accepts_contract_actions(actions):
    assert _flow(actions).actions == actions


@pytest.mark.parametrize('actions, message', [
    ((('output', 1), ('meter', 1000)), 'meter must be the first'),
    ((('goto_table', 2), ('output', 1)), 'goto_table must be the last'),
    ((('goto_table', 0),), 'out of range'),
    ((('set_field', 'ipv4_dst', '10.0.0.1'),), 'not supported'),
    ((('set_field', 'eth_dst', 'AA:00:00:00:00:01'),), 'lower case'),
    ((('push_mpls', 0x8848),), 'only 0x8847'),
    ((('flood',),), 'unknown action'),
    ((('output', 'TABLE'),), 'must be an int'),
    ((('output',),), 'needs 2 items'),
])
def test_flow_rejects_invalid_actions(actions, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _flow(actions)


def test_flow_rejects_unsorted_match():
    match = (('in_port', 1), ('eth_src', 'aa:bb:cc:dd:ee:ff'))

    with pytest.raises(ValueError, match='make_match'):
        _flow((), match=match)


def test_flow_identity_ignores_actions_and_cookie():
    match = make_match(in_port=1)
    first = Flow(0, 10, match, (), cookie=1)
    second = Flow(0, 10, match, (('output', 2),), cookie=2)

    assert first.identity == second.identity
    assert first != second

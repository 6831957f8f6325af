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
    ({'arp_spa': '10.1.0.2'}, 'eth_type'),
    ({'eth_type': 0x0800, 'arp_sha': 'aa:00:00:00:00:01'}, 'eth_type'),
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
    {'eth_type': 0x0806, 'arp_spa': '10.1.0.256'},
    {'eth_type': 0x0806, 'arp_sha': 'aa:00:00:00:00'},
    {'eth_type': 0x0806, 'arp_op': 1 << 16},
])
def test_make_match_rejects_invalid_field(fields):
    with pytest.raises((ValueError, TypeError)):
        make_match(**fields)


def test_make_match_normalises_arp_sender_fields():
    match = make_match(eth_type=0x0806, arp_sha='AA:00:00:00:00:01',
                       arp_spa='10.1.0.2')

    assert dict(match)['arp_sha'] == 'aa:00:00:00:00:01'
    assert dict(match)['arp_spa'] == '10.1.0.2'


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


ARP = make_match(eth_type=0x0806)


def test_flow_accepts_arp_rewrite_in_arp_flow():
    actions = (('set_field', 'arp_op', 2),
               ('set_field', 'arp_sha', '02:00:00:00:00:01'),
               ('set_field', 'arp_spa', '10.1.0.1'),
               ('set_field', 'arp_tha', 'aa:00:00:00:00:01'),
               ('set_field', 'arp_tpa', '10.1.0.2'),
               ('output', 'IN_PORT'))

    assert _flow(actions, match=ARP).actions == actions


@pytest.mark.parametrize('field, value', [
    ('arp_op', 2), ('arp_sha', '02:00:00:00:00:01'),
    ('arp_spa', '10.1.0.1'), ('arp_tha', 'aa:00:00:00:00:01'),
    ('arp_tpa', '10.1.0.2'),
])
def test_flow_rejects_arp_rewrite_without_arp_match(field, value):
    with pytest.raises(ValueError, match='needs eth_type=0x0806'):
        _flow((('set_field', field, value),),
              match=make_match(eth_type=0x0800))


@pytest.mark.parametrize('field, value, message', [
    ('arp_op', 1 << 16, 'out of range'),
    ('arp_op', -1, 'out of range'),
    ('arp_op', '2', 'must be an int'),
    ('arp_op', True, 'must be an int'),
    ('arp_sha', '02:00:00:00:00', 'invalid MAC'),
    ('arp_tha', 'AA:00:00:00:00:01', 'lower case'),
    ('arp_spa', '10.1.0.256', 'invalid IPv4'),
    ('arp_spa', '10.1.0.0/30', 'invalid IPv4'),
    ('arp_tpa', 167837698, 'must be a str'),
    ('arp_tpa', ('10.1.0.2', '255.255.255.255'), 'must be a str'),
])
def test_flow_rejects_invalid_arp_rewrite_value(field, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _flow((('set_field', field, value),), match=ARP)


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

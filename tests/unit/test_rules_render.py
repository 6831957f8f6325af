"""render_ofctl writes flows in the syntax ovs-ofctl add-flows reads."""

import pytest

from openflow_rules import Flow, make_match, render_ofctl, render_ofctl_all


def _flow(match=(), actions=(), **fields):
    values = dict(table=0, priority=10, cookie=0x54, match=match,
                  actions=actions)
    values.update(fields)
    return Flow(**values)


def test_empty_actions_render_as_drop():
    assert render_ofctl(_flow()) == \
        'table=0,priority=10,cookie=0x0000000000000054,actions=drop'


@pytest.mark.parametrize('fields, text', [
    ({'in_port': 3}, 'in_port=3'),
    ({'eth_type': 0x0806}, 'eth_type=0x0806'),
    ({'eth_type': 0x0800, 'ipv4_src': '10.1.0.2'},
     'eth_type=0x0800,ip_src=10.1.0.2'),
    ({'eth_type': 0x0800, 'ipv4_dst': '10.2.0.0/16'},
     'eth_type=0x0800,ip_dst=10.2.0.0/16'),
    ({'eth_type': 0x0800, 'ipv4_dst': ('10.0.0.1', '255.0.0.255')},
     'eth_type=0x0800,ip_dst=10.0.0.1/255.0.0.255'),
    ({'eth_type': 0x0800, 'ip_proto': 17, 'udp_dst': 67},
     'eth_type=0x0800,ip_proto=17,udp_dst=67'),
    ({'eth_type': 0x8847, 'mpls_label': 1002},
     'eth_type=0x8847,mpls_label=1002'),
    ({'eth_type': 0x0806, 'arp_op': 1, 'arp_tpa': '10.1.0.1'},
     'eth_type=0x0806,arp_op=1,arp_tpa=10.1.0.1'),
    ({'in_port': 1, 'eth_src': 'aa:00:00:00:00:01'},
     'in_port=1,eth_src=aa:00:00:00:00:01'),
    ({'eth_type': 0x0806, 'arp_op': 1, 'arp_sha': 'aa:00:00:00:00:01',
      'arp_spa': '10.1.0.2', 'arp_tpa': '10.1.0.1'},
     'eth_type=0x0806,arp_op=1,arp_spa=10.1.0.2,arp_tpa=10.1.0.1,'
     'arp_sha=aa:00:00:00:00:01'),
])
def test_match_fields_use_ovs_names_in_prerequisite_order(fields, text):
    rendered = render_ofctl(_flow(match=make_match(**fields)))

    assert rendered == ('table=0,priority=10,cookie=0x0000000000000054,'
                        '%s,actions=drop' % text)


@pytest.mark.parametrize('actions, text', [
    ((('output', 3),), 'output:3'),
    ((('output', 'IN_PORT'),), 'IN_PORT'),
    ((('meter', 1000), ('output', 'CONTROLLER')),
     'meter:1000,CONTROLLER:65535'),
    ((('push_mpls', 0x8847), ('set_field', 'mpls_label', 1002),
      ('output', 11)),
     'push_mpls:0x8847,set_field:1002->mpls_label,output:11'),
    ((('pop_mpls', 0x0800), ('goto_table', 2)),
     'pop_mpls:0x0800,goto_table:2'),
    ((('set_field', 'eth_src', '02:00:00:00:00:01'), ('dec_ttl',),
      ('output', 1)),
     'set_field:02:00:00:00:00:01->eth_src,dec_ttl,output:1'),
])
def test_actions_render_in_ovs_syntax(actions, text):
    rendered = render_ofctl(_flow(actions=actions))

    assert rendered.endswith(',actions=' + text)


def test_arp_rewrite_renders_in_ovs_syntax():
    actions = (('set_field', 'arp_op', 2),
               ('set_field', 'arp_sha', '02:00:00:00:00:01'),
               ('set_field', 'arp_spa', '10.1.0.1'),
               ('set_field', 'arp_tha', 'aa:00:00:00:00:01'),
               ('set_field', 'arp_tpa', '10.1.0.2'),
               ('output', 'IN_PORT'))

    rendered = render_ofctl(_flow(match=make_match(eth_type=0x0806),
                                  actions=actions))

    assert rendered.endswith(
        ',actions=set_field:2->arp_op,'
        'set_field:02:00:00:00:00:01->arp_sha,set_field:10.1.0.1->arp_spa,'
        'set_field:aa:00:00:00:00:01->arp_tha,set_field:10.1.0.2->arp_tpa,'
        'IN_PORT')


def test_timeouts_render_only_when_set():
    rendered = render_ofctl(_flow(idle_timeout=30, hard_timeout=60))

    assert 'idle_timeout=30,hard_timeout=60' in rendered


def test_render_all_sorts_by_table_then_priority_descending():
    flows = [_flow(table=2, priority=5), _flow(table=0, priority=1),
             _flow(table=0, priority=9, match=make_match(in_port=1))]

    lines = render_ofctl_all(flows).splitlines()

    assert [line.split(',')[:2] for line in lines] == [
        ['table=0', 'priority=9'], ['table=0', 'priority=1'],
        ['table=2', 'priority=5']]
    assert render_ofctl_all(flows).endswith('\n')

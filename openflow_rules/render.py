"""Render flows as ovs-ofctl text (OpenFlow 1.3 add-flow syntax).

The text loads with `ovs-ofctl -O OpenFlow13 add-flows BRIDGE FILE`.
Open vSwitch names some OXM fields differently from Ryu (ip_src for
ipv4_src), and the table below maps them.
"""

from openflow_rules.flow import flow_sort_key

# Ryu/OXM name -> ovs-ofctl name, in the order fields are written.
_OFCTL_FIELDS = (
    ('in_port', 'in_port'),
    ('eth_src', 'eth_src'),
    ('eth_dst', 'eth_dst'),
    ('eth_type', 'eth_type'),
    ('arp_op', 'arp_op'),
    ('arp_spa', 'arp_spa'),
    ('arp_tpa', 'arp_tpa'),
    ('arp_sha', 'arp_sha'),
    ('ip_proto', 'ip_proto'),
    ('ipv4_src', 'ip_src'),
    ('ipv4_dst', 'ip_dst'),
    ('udp_src', 'udp_src'),
    ('udp_dst', 'udp_dst'),
    ('mpls_label', 'mpls_label'),
)
_FIELD_ORDER = {name: index for index, (name, _) in enumerate(_OFCTL_FIELDS)}
_OFCTL_NAMES = dict(_OFCTL_FIELDS)


def _prefix_length(mask):
    bits = 0
    for octet in mask.split('.'):
        bits = bits << 8 | int(octet)
    inverted = ~bits & 0xffffffff
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


def _render_value(field, value):
    if isinstance(value, tuple):
        address, mask = value
        length = _prefix_length(mask)
        if length is None:
            return '%s/%s' % (address, mask)
        return '%s/%d' % (address, length)
    if field == 'eth_type':
        return '0x%04x' % value
    return str(value)


def _render_action(action):
    name = action[0]
    if name == 'output':
        port = action[1]
        if port == 'CONTROLLER':
            # max_len 65535 is OFPCML_NO_BUFFER: the whole packet, no buffer.
            return 'CONTROLLER:65535'
        if port == 'IN_PORT':
            return 'IN_PORT'
        return 'output:%d' % port
    if name == 'set_field':
        return 'set_field:%s->%s' % (action[2], action[1])
    if name == 'dec_ttl':
        return 'dec_ttl'
    if name in ('push_mpls', 'pop_mpls'):
        return '%s:0x%04x' % (name, action[1])
    if name in ('goto_table', 'meter'):
        return '%s:%d' % (name, action[1])
    raise ValueError('cannot render unknown action %r' % (action,))


def render_ofctl(flow):
    """Return one flow as an ovs-ofctl add-flow line (no newline)."""
    parts = ['table=%d' % flow.table, 'priority=%d' % flow.priority,
             'cookie=0x%016x' % flow.cookie]
    if flow.idle_timeout:
        parts.append('idle_timeout=%d' % flow.idle_timeout)
    if flow.hard_timeout:
        parts.append('hard_timeout=%d' % flow.hard_timeout)
    for field, value in sorted(flow.match,
                               key=lambda pair: _FIELD_ORDER[pair[0]]):
        parts.append('%s=%s' % (_OFCTL_NAMES[field],
                                _render_value(field, value)))
    actions = ','.join(_render_action(action) for action in flow.actions)
    parts.append('actions=%s' % (actions or 'drop'))
    return ','.join(parts)


def render_ofctl_all(flows):
    """Return flows as ovs-ofctl lines, sorted, one per line."""
    return ''.join(render_ofctl(flow) + '\n'
                   for flow in sorted(flows, key=flow_sort_key))

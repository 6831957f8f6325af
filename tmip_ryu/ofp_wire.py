"""Encode ``openflow_rules`` flows straight to OpenFlow flow-mod bytes.

encode_flow_mod() turns a Flow and a command into the body of an
OFPT_FLOW_MOD with ``struct`` and precomputed OXM headers.
FlowModMessage is a Ryu message that puts the OpenFlow header in front
of such a body when it is sent, and flow_mod_message() builds one
through a bounded cache of bodies.  The bytes equal what Ryu's OFPFlowMod
serializes for the same flow (the unit tests compare them flow by flow),
without Ryu's per-field conversions through netaddr and ``oxx_fields``.

OpenFlow 1.3 and 1.4 lay out a flow-mod the same way for everything the
rules use: 1.4's ``importance`` field takes the place of 1.3's padding
and is always 0 here.  A body therefore serves both versions, and only
the header's version byte differs.
"""

import collections
import socket
import struct

from ryu.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_4

# The constants below have the same values in ofproto_v1_3 and
# ofproto_v1_4.
_OFP = ofproto_v1_3
VERSIONS = frozenset((ofproto_v1_3.OFP_VERSION, ofproto_v1_4.OFP_VERSION))

_HEADER = struct.Struct('!BBHI')
# cookie, cookie_mask, table_id, command, idle_timeout, hard_timeout,
# priority, buffer_id, out_port, out_group, flags, then 1.3's padding or
# 1.4's importance.
_FLOW_MOD = struct.Struct('!QQBBHHHIIIHH')
_MATCH_HEADER = struct.Struct('!HH')
_INSTRUCTION_HEADER = struct.Struct('!HH4x')
_INSTRUCTION_METER = struct.Struct('!HHI')
_INSTRUCTION_GOTO_TABLE = struct.Struct('!HHB3x')
_ACTION_HEADER = struct.Struct('!HH4x')
_ACTION_OUTPUT = struct.Struct('!HHIH6x')
_ACTION_ETHERTYPE = struct.Struct('!HHH2x')
_ACTION_SET_FIELD_HEADER = struct.Struct('!HH')
_OXM_HEADER = struct.Struct('!I')
_MAX_MESSAGE_LENGTH = 0xffff

COMMANDS = {
    'add': _OFP.OFPFC_ADD,
    # A modify is sent as an ADD, which replaces the whole entry, cookie
    # included, because OFPFC_MODIFY_STRICT would keep the old cookie.
    'modify': _OFP.OFPFC_ADD,
    'delete': _OFP.OFPFC_DELETE_STRICT,
}

_PORTS = {
    'CONTROLLER': _OFP.OFPP_CONTROLLER,
    'IN_PORT': _OFP.OFPP_IN_PORT,
    'TABLE': _OFP.OFPP_TABLE,
}

# OXM field name -> (OpenFlow basic field number, value kind, maskable).
# These are the fields that openflow_rules can match on or set.
_OXM_FIELDS = {
    'in_port': (0, 'uint32', False),
    'eth_dst': (3, 'mac', True),
    'eth_src': (4, 'mac', True),
    'eth_type': (5, 'uint16', False),
    'ip_proto': (10, 'uint8', False),
    'ipv4_src': (11, 'ipv4', True),
    'ipv4_dst': (12, 'ipv4', True),
    'udp_src': (15, 'uint16', False),
    'udp_dst': (16, 'uint16', False),
    'arp_op': (21, 'uint16', False),
    'arp_spa': (22, 'ipv4', True),
    'arp_tpa': (23, 'ipv4', True),
    'arp_sha': (24, 'mac', True),
    'arp_tha': (25, 'mac', True),
    'mpls_label': (34, 'uint32', False),
}
OXM_FIELDS = frozenset(_OXM_FIELDS)
_VALUE_LENGTHS = {'uint8': 1, 'uint16': 2, 'uint32': 4, 'mac': 6,
                  'ipv4': 4}
_INT_FORMATS = {'uint8': struct.Struct('!B'), 'uint16': struct.Struct('!H'),
                'uint32': struct.Struct('!I')}


def _oxm_header(number, has_mask, value_length):
    """Return the 4-byte OXM TLV header of an OpenFlow basic field."""
    length = value_length * 2 if has_mask else value_length
    return _OXM_HEADER.pack((_OFP.OFPXMC_OPENFLOW_BASIC << 16)
                            | (number << 9) | (int(has_mask) << 8)
                            | length)


# Field name -> (number, kind, plain OXM header, masked OXM header or
# None when the field takes no mask).
_FIELD_CODECS = {
    name: (number, kind,
           _oxm_header(number, False, _VALUE_LENGTHS[kind]),
           _oxm_header(number, True, _VALUE_LENGTHS[kind])
           if maskable else None)
    for name, (number, kind, maskable) in _OXM_FIELDS.items()}


def _mac_bytes(name, value):
    if isinstance(value, str) and len(value) == 17 and \
            value[2::3] == ':::::':
        try:
            return bytes.fromhex(value.replace(':', ''))
        except ValueError:
            pass
    raise ValueError("%s value %r is not a MAC address of the form "
                     "'aa:bb:cc:dd:ee:ff'" % (name, value))


def _ipv4_bytes(name, value):
    if isinstance(value, str):
        try:
            return socket.inet_pton(socket.AF_INET, value)
        except OSError:
            pass
    raise ValueError('%s value %r is not a dotted IPv4 address such as '
                     '10.1.0.2' % (name, value))


def _value_bytes(name, kind, value):
    """Return the wire bytes of one OXM value of a given kind."""
    if kind == 'mac':
        return _mac_bytes(name, value)
    if kind == 'ipv4':
        return _ipv4_bytes(name, value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('%s value %r is not an int' % (name, value))
    try:
        return _INT_FORMATS[kind].pack(value)
    except struct.error:
        raise ValueError('%s value %d does not fit in %d bytes'
                         % (name, value, _VALUE_LENGTHS[kind])) from None


def _oxm_tlv(name, value):
    """Return (field number, OXM TLV bytes) of one match or set-field item.

    A (value, mask) tuple gives a masked TLV, with the value's bits
    outside the mask cleared as Ryu's OFPMatch clears them.
    """
    codec = _FIELD_CODECS.get(name)
    if codec is None:
        raise ValueError('unknown OXM field %r; known fields: %s'
                         % (name, ', '.join(sorted(_FIELD_CODECS))))
    number, kind, plain_header, masked_header = codec
    if not isinstance(value, tuple):
        return number, plain_header + _value_bytes(name, kind, value)
    if masked_header is None or len(value) != 2:
        raise ValueError('%s value %r: only MAC and IPv4 fields take a '
                         '(value, mask) pair' % (name, value))
    mask = _value_bytes(name, kind, value[1])
    masked = bytes(a & b for a, b in zip(_value_bytes(name, kind, value[0]),
                                         mask))
    return number, masked_header + masked + mask


def _padding(length):
    return b'\0' * (-length % 8)


def encode_match(match):
    """Return the ofp_match bytes (OXM type, padded to 8) of a flow match.

    Fields go out in the order of their OXM field numbers, as Ryu's
    OFPMatch sorts them, which puts every prerequisite (eth_type before
    ipv4_dst, say) ahead of the fields that need it.
    """
    tlvs = []
    for pair in match:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError('match item %r is not a (field, value) pair'
                             % (pair,))
        try:
            tlvs.append(_oxm_tlv(*pair))
        except ValueError as error:
            raise ValueError('invalid match field: %s' % error) from None
    tlvs.sort(key=lambda tlv: tlv[0])
    fields = b''.join(tlv for _, tlv in tlvs)
    length = _MATCH_HEADER.size + len(fields)
    return (_MATCH_HEADER.pack(_OFP.OFPMT_OXM, length) + fields
            + _padding(length))


def _encode_output(action):
    port = _PORTS.get(action[1], action[1])
    if isinstance(port, bool) or not isinstance(port, int) or \
            not 0 <= port <= 0xffffffff:
        raise ValueError('output port %r is not a port number or one of %s'
                         % (action[1], ', '.join(sorted(_PORTS))))
    return _ACTION_OUTPUT.pack(_OFP.OFPAT_OUTPUT, _ACTION_OUTPUT.size, port,
                               _OFP.OFPCML_NO_BUFFER)


def _encode_set_field(action):
    _, name, value = action
    if isinstance(value, tuple):
        raise ValueError('set_field %s value %r: a set-field takes no mask'
                         % (name, value))
    try:
        _, tlv = _oxm_tlv(name, value)
    except ValueError as error:
        raise ValueError('invalid set_field: %s' % error) from None
    unpadded = _ACTION_SET_FIELD_HEADER.size + len(tlv)
    padding = _padding(unpadded)
    return (_ACTION_SET_FIELD_HEADER.pack(_OFP.OFPAT_SET_FIELD,
                                          unpadded + len(padding))
            + tlv + padding)


def _encode_ethertype_action(kind, ethertype):
    try:
        return _ACTION_ETHERTYPE.pack(kind, _ACTION_ETHERTYPE.size,
                                      ethertype)
    except struct.error:
        raise ValueError('ethertype %r is not a 16-bit int'
                         % (ethertype,)) from None


_DEC_NW_TTL = _ACTION_HEADER.pack(_OFP.OFPAT_DEC_NW_TTL, _ACTION_HEADER.size)
# Action name -> number of items in its tuple, for the actions that go
# into an apply-actions instruction.
_APPLIED_ACTION_LENGTHS = {'output': 2, 'set_field': 3, 'dec_ttl': 1,
                           'push_mpls': 2, 'pop_mpls': 2}


def encode_action(action):
    """Return the wire bytes of one plain action tuple (no goto or meter)."""
    kind = action[0] if isinstance(action, tuple) and action else None
    if kind not in _APPLIED_ACTION_LENGTHS or \
            len(action) != _APPLIED_ACTION_LENGTHS[kind]:
        raise ValueError('unknown action %r' % (action,))
    if kind == 'output':
        return _encode_output(action)
    if kind == 'set_field':
        return _encode_set_field(action)
    if kind == 'dec_ttl':
        return _DEC_NW_TTL
    if kind == 'push_mpls':
        return _encode_ethertype_action(_OFP.OFPAT_PUSH_MPLS, action[1])
    return _encode_ethertype_action(_OFP.OFPAT_POP_MPLS, action[1])


def _encode_int_instruction(layout, kind, name, value):
    try:
        return layout.pack(kind, layout.size, value)
    except struct.error:
        raise ValueError('%s %r is out of range' % (name, value)) from None


def encode_instructions(actions):
    """Return the instruction bytes of a flow's action tuples.

    The order is Ryu's: each meter, then one apply-actions instruction
    with the plain actions, then the goto-table.
    """
    meters = []
    applied = []
    goto = b''
    for action in actions:
        kind = action[0] if isinstance(action, tuple) and action else None
        if kind == 'meter' and len(action) == 2:
            meters.append(_encode_int_instruction(
                _INSTRUCTION_METER, _OFP.OFPIT_METER, 'meter id', action[1]))
        elif kind == 'goto_table' and len(action) == 2:
            goto = _encode_int_instruction(
                _INSTRUCTION_GOTO_TABLE, _OFP.OFPIT_GOTO_TABLE,
                'goto_table', action[1])
        else:
            applied.append(encode_action(action))
    if applied:
        body = b''.join(applied)
        meters.append(_INSTRUCTION_HEADER.pack(
            _OFP.OFPIT_APPLY_ACTIONS, _INSTRUCTION_HEADER.size + len(body)))
        meters.append(body)
    meters.append(goto)
    return b''.join(meters)


def _encode_body(code, flow):
    instructions = b''
    if code != _OFP.OFPFC_DELETE_STRICT:
        instructions = encode_instructions(flow.actions)
    try:
        head = _FLOW_MOD.pack(
            flow.cookie, 0, flow.table, code, flow.idle_timeout,
            flow.hard_timeout, flow.priority, _OFP.OFP_NO_BUFFER,
            _OFP.OFPP_ANY, _OFP.OFPG_ANY, 0, 0)
    except struct.error as error:
        raise ValueError('flow %r has a field out of range: %s'
                         % (flow, error)) from None
    body = head + encode_match(flow.match) + instructions
    if _HEADER.size + len(body) > _MAX_MESSAGE_LENGTH:
        raise ValueError('flow %r encodes to %d bytes, more than an '
                         'OpenFlow message holds'
                         % (flow, _HEADER.size + len(body)))
    return body


class BodyCache:
    """A bounded map from (command code, flow) to an encoded body.

    The least recently used entry goes when the cache is full.
    """

    def __init__(self, size):
        self.size = size
        self._bodies = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, code, flow):
        """Return the body of a flow-mod, encoding it on a miss."""
        key = (code, flow)
        try:
            body = self._bodies.get(key)
        except TypeError:
            # A flow with an unhashable value, such as a list in its
            # match, cannot be a key, so it is encoded without the cache.
            return _encode_body(code, flow)
        if body is not None:
            self.hits += 1
            self._bodies.move_to_end(key)
            return body
        self.misses += 1
        body = _encode_body(code, flow)
        if self.size > 0:
            self._bodies[key] = body
            if len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return body

    def clear(self):
        """Forget every body and reset the counters."""
        self._bodies.clear()
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._bodies)


def _command_code(command):
    code = COMMANDS.get(command)
    if code is None:
        raise ValueError('unknown flow-mod command %r; expected one of %s'
                         % (command, ', '.join(sorted(COMMANDS))))
    return code


def encode_flow_mod(flow, command):
    """Return the body of an OFPT_FLOW_MOD for a flow: all but the header.

    ``command`` is 'add', 'modify' (sent as an ADD) or 'delete' (strict,
    so that it removes only that one entry).  Raises ValueError naming an
    unknown command, match field or action, or a value out of range.
    """
    return _encode_body(_command_code(command), flow)


class FlowModMessage(ofproto_parser.MsgBase):
    """An OFPT_FLOW_MOD whose body was encoded before it is sent.

    Ryu's Datapath.send_msg and OFPBundleAddMsg treat it like any Ryu
    message: they set its xid, call serialize() and send ``buf``.
    ``flow`` and ``command`` record what it was made from, for logs.
    """

    cls_msg_type = _OFP.OFPT_FLOW_MOD

    def __init__(self, datapath, body, flow=None, command=None):
        super().__init__(datapath)
        self.body = body
        self.flow = flow
        self.command = command

    def serialize(self):
        """Write the OpenFlow header in front of the body into ``buf``."""
        self.version = self.datapath.ofproto.OFP_VERSION
        self.msg_type = self.cls_msg_type
        self.msg_len = _HEADER.size + len(self.body)
        if self.xid is None:
            self.xid = 0
        buf = bytearray(_HEADER.pack(self.version, self.msg_type,
                                     self.msg_len, self.xid))
        buf += self.body
        self.buf = buf

    def __str__(self):
        return ('FlowModMessage(version=%s, xid=%s, command=%s, flow=%s)'
                % (self.version, self.xid, self.command, self.flow))

    __repr__ = __str__


# A hand-over re-sends the bodies of earlier moves when a host returns
# to a cell, and a reconnect re-sends a switch's flows.  Bodies of the
# example scenarios' flows are 48 to 240 bytes, so 4096 of them take
# well under 1 MB.
_CACHE = BodyCache(4096)


def flow_mod_message(datapath, flow, command, cache=_CACHE):
    """Return a FlowModMessage that adds, modifies or deletes one flow.

    Raises ValueError when the datapath speaks an OpenFlow version other
    than 1.3 or 1.4, or as encode_flow_mod() does.
    """
    version = datapath.ofproto.OFP_VERSION
    if version not in VERSIONS:
        raise ValueError('OpenFlow version 0x%02x is not supported: the '
                         'flow-mod encoder speaks 1.3 and 1.4' % version)
    code = _command_code(command)
    if cache is None:
        body = _encode_body(code, flow)
    else:
        body = cache.get(code, flow)
    return FlowModMessage(datapath, body, flow, command)

"""Render ``openflow_rules`` flows as Ryu messages, and read them back.

``openflow_rules`` describes flows as plain data.  This module is the
only place that turns them into OpenFlow 1.3/1.4 messages (flow-mods
through the byte encoder in ``ofp_wire``), and turns the flow statistics
a switch reports back into the same plain data, so that reconciliation
can compare the flows a switch has with those it should have.
"""

from openflow_rules import Flow, make_match
from tmip_ryu.ofp_wire import flow_mod_message

_PORT_NAMES = ('CONTROLLER', 'IN_PORT', 'TABLE')


def _port_number(ofproto, port):
    if port == 'CONTROLLER':
        return ofproto.OFPP_CONTROLLER
    if port == 'IN_PORT':
        return ofproto.OFPP_IN_PORT
    if port == 'TABLE':
        return ofproto.OFPP_TABLE
    return port


def _port_name(ofproto, number):
    for name in _PORT_NAMES:
        if number == _port_number(ofproto, name):
            return name
    return number


def build_match(parser, flow):
    """Return the OFPMatch of a flow."""
    return parser.OFPMatch(**dict(flow.match))


def build_actions(datapath, actions):
    """Return Ryu action objects for plain action tuples (no goto/meter)."""
    ofproto = datapath.ofproto
    parser = datapath.ofproto_parser
    built = []
    for action in actions:
        kind = action[0]
        if kind == 'output':
            port = _port_number(ofproto, action[1])
            built.append(parser.OFPActionOutput(port,
                                                ofproto.OFPCML_NO_BUFFER))
        elif kind == 'set_field':
            built.append(parser.OFPActionSetField(**{action[1]: action[2]}))
        elif kind == 'dec_ttl':
            built.append(parser.OFPActionDecNwTtl())
        elif kind == 'push_mpls':
            built.append(parser.OFPActionPushMpls(action[1]))
        elif kind == 'pop_mpls':
            built.append(parser.OFPActionPopMpls(action[1]))
        else:
            raise ValueError('unknown action %r' % (action,))
    return built


def build_instructions(datapath, actions):
    """Return the instruction list for a flow's action tuples."""
    ofproto = datapath.ofproto
    parser = datapath.ofproto_parser
    instructions = []
    applied = []
    goto = None
    for action in actions:
        if action[0] == 'meter':
            instructions.append(parser.OFPInstructionMeter(action[1]))
        elif action[0] == 'goto_table':
            goto = parser.OFPInstructionGotoTable(action[1])
        else:
            applied.append(action)
    if applied:
        instructions.append(parser.OFPInstructionActions(
            ofproto.OFPIT_APPLY_ACTIONS, build_actions(datapath, applied)))
    if goto is not None:
        instructions.append(goto)
    return instructions


def ryu_flow_mod(datapath, flow, command):
    """Return Ryu's OFPFlowMod of a flow, the reference for ``flow_mod``.

    The controller sends ``flow_mod``'s messages.  This one builds the
    same flow-mod through Ryu's classes, for tests and benchmarks to
    compare with.
    """
    ofproto = datapath.ofproto
    parser = datapath.ofproto_parser
    codes = {'add': ofproto.OFPFC_ADD,
             'modify': ofproto.OFPFC_ADD,
             'delete': ofproto.OFPFC_DELETE_STRICT}
    instructions = []
    if command != 'delete':
        instructions = build_instructions(datapath, flow.actions)
    return parser.OFPFlowMod(
        datapath=datapath, cookie=flow.cookie, table_id=flow.table,
        command=codes[command], idle_timeout=flow.idle_timeout,
        hard_timeout=flow.hard_timeout, priority=flow.priority,
        out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY,
        match=build_match(parser, flow), instructions=instructions)


def flow_mod(datapath, flow, command):
    """Return a flow-mod message that adds, modifies or deletes one flow.

    ``command`` is 'add', 'modify' or 'delete'.  A modify is sent as an
    ADD, which replaces the flow with the same table, priority and match
    whole: OFPFC_MODIFY_STRICT would keep the old cookie (checked on
    OVS 3.1), and the cookie names the flow's kind and owner.  A delete
    is strict, so it removes only that one flow.  The message is a
    ``ofp_wire.FlowModMessage``, encoded without Ryu's OFPFlowMod and
    byte for byte equal to ``ryu_flow_mod``'s.
    """
    return flow_mod_message(datapath, flow, command)


def diff_messages(datapath, flow_diff):
    """Return the flow-mods of a diff: deletes, then modifies, then adds.

    Deleting first keeps a table from having two overlapping flows during
    the change.  Otherwise the order within one switch does not matter,
    because the caller applies the whole diff at once (a bundle) or
    behind a barrier.
    """
    messages = [flow_mod(datapath, f, 'delete') for f in flow_diff.delete]
    messages += [flow_mod(datapath, f, 'modify') for f in flow_diff.modify]
    messages += [flow_mod(datapath, f, 'add') for f in flow_diff.add]
    return messages


def _normalise_value(value):
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return tuple(_normalise_value(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_normalise_value(v) for v in value)
    return value


def _read_actions(ofproto, actions):
    read = []
    for action in actions:
        name = type(action).__name__
        if name == 'OFPActionOutput':
            read.append(('output', _port_name(ofproto, action.port)))
        elif name == 'OFPActionSetField':
            read.append(('set_field', action.key,
                         _normalise_value(action.value)))
        elif name == 'OFPActionDecNwTtl':
            read.append(('dec_ttl',))
        elif name == 'OFPActionPushMpls':
            read.append(('push_mpls', action.ethertype))
        elif name == 'OFPActionPopMpls':
            read.append(('pop_mpls', action.ethertype))
        else:
            read.append(('unknown', name))
    return read


def flow_from_stats(ofproto, stats):
    """Return the Flow that an OFPFlowStats entry describes.

    Raises ValueError for an entry that no TMip flow can be, such as one
    with an action the rules never use.
    """
    actions = []
    goto = []
    for instruction in stats.instructions:
        name = type(instruction).__name__
        if name == 'OFPInstructionMeter':
            actions.insert(0, ('meter', instruction.meter_id))
        elif name == 'OFPInstructionGotoTable':
            goto.append(('goto_table', instruction.table_id))
        elif name == 'OFPInstructionActions':
            actions += _read_actions(ofproto, instruction.actions)
        else:
            actions.append(('unknown', name))
    match = make_match(**{key: _normalise_value(value)
                          for key, value in stats.match.items()})
    return Flow(table=stats.table_id, priority=stats.priority, match=match,
                actions=tuple(actions + goto), cookie=stats.cookie,
                idle_timeout=stats.idle_timeout,
                hard_timeout=stats.hard_timeout)


def delete_stats_entry(datapath, stats):
    """Return a strict delete for a flow entry as the switch reported it."""
    ofproto = datapath.ofproto
    return datapath.ofproto_parser.OFPFlowMod(
        datapath=datapath, table_id=stats.table_id,
        command=ofproto.OFPFC_DELETE_STRICT, priority=stats.priority,
        out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY,
        match=stats.match)

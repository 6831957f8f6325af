"""The TMip pipeline: the flows each switch should hold for a network.

Table 0 classifies each packet by port role and guards host sources,
table 1 switches MPLS labels from core ports, and table 2 routes IPv4
by destination.  At a host's switch, table 0 also replies to the host's
ARP request for its gateway, which keeps working while the controller
is down.  desired_flows() returns every flow of one switch.  It is the
union of the cell flows, which depend on topology and settings only,
and each host's flows, which depend on that host alone.  A hand-over
can therefore recompute one host's flows instead of whole switches.

A flow in table 2 that tunnels out of core port p, or delivers to a host
on port p, comes with a hairpin twin: the same match plus in_port=p, one
priority higher, that outputs to IN_PORT.  OpenFlow drops an output to
the ingress port unless the action names IN_PORT, and packets do need to
leave by the port they came in by.  A home cell on a single core link
sends a roaming host's packets back the way they came, and two hosts
behind one access port (a wireless access point, say) talk through it.
"""

import collections

from openflow_rules.constants import (
    ARP_OP_REPLY, ARP_OP_REQUEST, DHCP_SERVER_PORT, ETH_TYPE_ARP,
    ETH_TYPE_IPV4, ETH_TYPE_MPLS, IP_PROTO_UDP, PACKET_IN_METER_ID,
    PRIORITY_ARP, PRIORITY_ARP_REPLY, PRIORITY_DEFAULT_ROUTE, PRIORITY_DHCP,
    PRIORITY_GATEWAY, PRIORITY_HOST_ROUTE, PRIORITY_LABEL,
    PRIORITY_MOVE_HOLD, PRIORITY_NOT_ROUTED, PRIORITY_POOL, PRIORITY_PORT,
    PRIORITY_REVERSE_TUNNEL, PRIORITY_SOURCE_GUARD, PRIORITY_SPOOF_DROP,
    PRIORITY_TABLE_MISS, PRIORITY_UPLINK_GUARD, TABLE_CLASSIFY, TABLE_LABEL,
    TABLE_ROUTE, label_for_cell)
from openflow_rules.cookies import Kind, cookie_for
from openflow_rules.flow import (Flow, make_match, normalise_ipv4,
                                 unchecked_flow)
from openflow_rules.network import PortRole
from openflow_rules.topology import core_routes

TO_CONTROLLER = (('meter', PACKET_IN_METER_ID), ('output', 'CONTROLLER'))
DROP = ()

# Limited broadcast belongs to its link, and TMip routes no multicast.
# Without these drops both would reach the default route and leave by an
# uplink.
NOT_ROUTED = ('255.255.255.255', ('224.0.0.0', '240.0.0.0'))

# Priorities in table 2 are 100 apart, so a hairpin twin one above its
# flow never outranks a flow of the next level.
HAIRPIN_PRIORITY_OFFSET = 1


class _NetworkView:
    """Indexes, paths and flows derived from one Network, computed once."""

    def __init__(self, network):
        self.network = network
        self.settings = network.settings
        self.routes = core_routes(network)
        self.cell_of_dpid = {dpid: switch.cell
                             for dpid, switch in network.switches.items()}
        self.dpid_of_cell = {cell: dpid
                             for dpid, cell in self.cell_of_dpid.items()}
        self.pool_values = {cell: normalise_ipv4(pool)
                            for cell, pool in network.cell_pools.items()}
        resolved = collections.defaultdict(list)
        for uplink in sorted(network.uplinks,
                             key=lambda uplink: (uplink.dpid, uplink.port)):
            if uplink.resolved:
                resolved[uplink.dpid].append(uplink)
        self.resolved_uplinks = dict(resolved)
        self.cell_flows = {}
        self._host_index = None
        self._tunnels = {}

    def host_index(self):
        """Return (hosts by dpid, roaming hosts by home cell, roaming)."""
        if self._host_index is None:
            by_dpid = collections.defaultdict(list)
            roaming_by_home = collections.defaultdict(list)
            roaming = []
            for host in self.network.hosts.values():
                by_dpid[host.dpid].append(host)
                if self.cell_of_dpid[host.dpid] != host.home_cell:
                    roaming_by_home[host.home_cell].append(host)
                    roaming.append(host)
            self._host_index = (by_dpid, roaming_by_home, roaming)
        return self._host_index

    def tunnel(self, dpid, cell):
        """Return the actions that carry a packet to a cell, or None."""
        key = (dpid, cell)
        if key not in self._tunnels:
            self._tunnels[key] = self._tunnel(dpid, cell)
        return self._tunnels[key]

    def _tunnel(self, dpid, cell):
        dst_dpid = self.dpid_of_cell.get(cell)
        if dst_dpid is None:
            return None
        port = self.routes.port_toward(dpid, dst_dpid)
        if port is None:
            return None
        return (('push_mpls', ETH_TYPE_MPLS),
                ('set_field', 'mpls_label', label_for_cell(cell)),
                ('output', port))


def network_view(network):
    """Return the cached _NetworkView of a network."""
    view = network._derived.get('view')
    if view is None:
        view = _NetworkView(network)
        network._derived['view'] = view
    return view


def _route_flows_for(priority, match, actions, cookie, hairpin=None):
    """Return a table 2 flow, plus its hairpin twin when it needs one.

    hairpin=None gives a twin to tunnels only.
    """
    flow = unchecked_flow(TABLE_ROUTE, priority, match, actions, cookie)
    if hairpin is None:
        hairpin = bool(actions) and actions[0][0] == 'push_mpls'
    if not hairpin:
        return [flow]
    port = actions[-1][1]
    twin = unchecked_flow(
        TABLE_ROUTE, priority + HAIRPIN_PRIORITY_OFFSET,
        tuple(sorted(match + (('in_port', port),))),
        actions[:-1] + (('output', 'IN_PORT'),), cookie)
    return [flow, twin]


def _rewrite_and_output(gateway_mac, eth_dst, port):
    return (('set_field', 'eth_src', gateway_mac),
            ('set_field', 'eth_dst', eth_dst),
            ('dec_ttl',),
            ('output', port))


def _classify_flows(view, switch):
    flows = [
        unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_ARP, make_match(eth_type=ETH_TYPE_ARP),
            TO_CONTROLLER, cookie_for(Kind.ARP)),
        unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_TABLE_MISS, (), TO_CONTROLLER,
            cookie_for(Kind.TABLE_MISS)),
    ]
    for port in switch.ports_with_role(PortRole.ACCESS):
        flows.append(unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_DHCP,
            make_match(in_port=port, eth_type=ETH_TYPE_IPV4,
                       ip_proto=IP_PROTO_UDP, udp_dst=DHCP_SERVER_PORT),
            TO_CONTROLLER, cookie_for(Kind.DHCP, port)))
    for port in switch.ports_with_role(PortRole.CORE):
        flows.append(unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_PORT, make_match(in_port=port),
            (('goto_table', TABLE_LABEL),), cookie_for(Kind.CORE_PORT, port)))
    for port in switch.ports_with_role(PortRole.UPLINK):
        # From an uplink, only traffic to TMip's pools enters: anything
        # else would reach the default route and leave by an uplink again.
        for pool in view.pool_values.values():
            flows.append(unchecked_flow(
                TABLE_CLASSIFY, PRIORITY_PORT,
                make_match(in_port=port, eth_type=ETH_TYPE_IPV4,
                           ipv4_dst=pool),
                (('goto_table', TABLE_ROUTE),),
                cookie_for(Kind.UPLINK_IN, port)))
        flows.append(unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_UPLINK_GUARD, make_match(in_port=port),
            DROP, cookie_for(Kind.UPLINK_GUARD, port)))
    return flows


def _label_flows(view, switch):
    flows = [
        unchecked_flow(
            TABLE_LABEL, PRIORITY_LABEL,
            make_match(eth_type=ETH_TYPE_MPLS,
                       mpls_label=label_for_cell(switch.cell)),
            (('pop_mpls', ETH_TYPE_IPV4), ('goto_table', TABLE_ROUTE)),
            cookie_for(Kind.LABEL_POP, switch.cell)),
        unchecked_flow(
            TABLE_LABEL, PRIORITY_TABLE_MISS, (), DROP,
            cookie_for(Kind.TABLE_MISS)),
    ]
    for dst_dpid, dst_cell in view.cell_of_dpid.items():
        port = view.routes.port_toward(switch.dpid, dst_dpid)
        if port is None:
            continue
        flows.append(unchecked_flow(
            TABLE_LABEL, PRIORITY_LABEL,
            make_match(eth_type=ETH_TYPE_MPLS,
                       mpls_label=label_for_cell(dst_cell)),
            (('output', port),), cookie_for(Kind.LABEL_SWITCH, dst_cell)))
    return flows


def _default_route(view, switch):
    """Return the actions for addresses outside TMip's pools."""
    uplinks = view.resolved_uplinks.get(switch.dpid)
    if uplinks:
        uplink = uplinks[0]
        return _rewrite_and_output(view.settings.gateway_mac,
                                   uplink.next_hop_mac, uplink.port)
    candidates = []
    for dpid in view.resolved_uplinks:
        hops = view.routes.hops(switch.dpid, dpid)
        if hops is not None:
            candidates.append((hops, view.cell_of_dpid[dpid]))
    if not candidates:
        return DROP
    return view.tunnel(switch.dpid, min(candidates)[1])


def _route_flows(view, switch):
    flows = [unchecked_flow(TABLE_ROUTE, PRIORITY_TABLE_MISS, (), DROP,
                            cookie_for(Kind.TABLE_MISS))]
    flows += _route_flows_for(
        PRIORITY_DEFAULT_ROUTE, make_match(eth_type=ETH_TYPE_IPV4),
        _default_route(view, switch),
        cookie_for(Kind.DEFAULT_ROUTE, switch.cell))
    for destination in NOT_ROUTED:
        flows.append(unchecked_flow(
            TABLE_ROUTE, PRIORITY_NOT_ROUTED,
            make_match(eth_type=ETH_TYPE_IPV4, ipv4_dst=destination),
            DROP, cookie_for(Kind.NOT_ROUTED)))
    for cell, pool in view.pool_values.items():
        match = make_match(eth_type=ETH_TYPE_IPV4, ipv4_dst=pool)
        if cell == switch.cell:
            # Addresses of this pool that no host is bound to.
            flows.append(unchecked_flow(
                TABLE_ROUTE, PRIORITY_POOL, match, DROP,
                cookie_for(Kind.OWN_POOL, cell)))
            continue
        # A cell that cannot be reached gets an explicit drop, so its
        # addresses never fall through to the default route.
        actions = view.tunnel(switch.dpid, cell) or DROP
        flows += _route_flows_for(PRIORITY_POOL, match, actions,
                                  cookie_for(Kind.POOL_ROUTE, cell))
    return flows


def cell_flows(dpid, network):
    """Return the flows of a switch that depend on no particular host."""
    view = network_view(network)
    flows = view.cell_flows.get(dpid)
    if flows is None:
        switch = network.switches[dpid]
        flows = frozenset(_classify_flows(view, switch)
                          + _label_flows(view, switch)
                          + _route_flows(view, switch))
        view.cell_flows[dpid] = flows
    return flows


def _destination(address):
    """Return the match of IPv4 packets to an address.

    Host fields were validated by HostPlacement, so host matches are built
    here as sorted tuples without make_match's checks.
    """
    return (('eth_type', ETH_TYPE_IPV4), ('ipv4_dst', address))


def _arp_reply(gateway_mac, host):
    """Return the flow that replies to a host's ARP request for its gateway.

    The switch turns the request into the reply in place and sends it back
    out of the host's port, so the host keeps its gateway resolved while
    the controller is away.  Because the match pins the sender's port, MAC
    and address, RFC 5227 probes (sender 0.0.0.0) and every other ARP
    frame still reach the controller.  So does the host's first request at
    another switch, from which the controller detects the move.
    """
    match = (('arp_op', ARP_OP_REQUEST), ('arp_sha', host.mac),
             ('arp_spa', host.address), ('arp_tpa', host.gateway),
             ('eth_src', host.mac), ('eth_type', ETH_TYPE_ARP),
             ('in_port', host.port))
    actions = (('set_field', 'eth_dst', host.mac),
               ('set_field', 'eth_src', gateway_mac),
               ('set_field', 'arp_op', ARP_OP_REPLY),
               ('set_field', 'arp_sha', gateway_mac),
               ('set_field', 'arp_spa', host.gateway),
               ('set_field', 'arp_tha', host.mac),
               ('set_field', 'arp_tpa', host.address),
               ('output', 'IN_PORT'))
    return unchecked_flow(TABLE_CLASSIFY, PRIORITY_ARP_REPLY, match,
                          actions, cookie_for(Kind.ARP_REPLY, host.mac))


def _local_host_flows(view, host, roaming):
    mac = host.mac
    flows = [
        _arp_reply(view.settings.gateway_mac, host),
        unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_SOURCE_GUARD,
            (('eth_src', mac), ('eth_type', ETH_TYPE_IPV4),
             ('in_port', host.port), ('ipv4_src', host.address)),
            (('goto_table', TABLE_ROUTE),),
            cookie_for(Kind.SOURCE_GUARD, mac)),
        unchecked_flow(
            TABLE_CLASSIFY, PRIORITY_SPOOF_DROP,
            (('eth_src', mac), ('in_port', host.port)), DROP,
            cookie_for(Kind.SPOOF_DROP, mac)),
        unchecked_flow(
            TABLE_ROUTE, PRIORITY_GATEWAY, _destination(host.gateway),
            TO_CONTROLLER, cookie_for(Kind.GATEWAY, mac)),
    ]
    flows += _route_flows_for(
        PRIORITY_HOST_ROUTE, _destination(host.address),
        _rewrite_and_output(view.settings.gateway_mac, mac, host.port),
        cookie_for(Kind.DELIVER, mac), hairpin=True)
    if roaming and view.settings.reverse_tunnelling:
        # in_port limits this to packets straight from the host, so a
        # packet that comes back after the home cell routed it cannot be
        # sent home again.
        actions = view.tunnel(host.dpid, host.home_cell)
        if actions is not None:
            flows.append(unchecked_flow(
                TABLE_ROUTE, PRIORITY_REVERSE_TUNNEL,
                (('eth_type', ETH_TYPE_IPV4), ('in_port', host.port),
                 ('ipv4_src', host.address)),
                actions, cookie_for(Kind.REVERSE_TUNNEL, mac)))
    return flows


def _host_flows(view, dpid, host):
    host_cell = view.cell_of_dpid[host.dpid]
    roaming = host_cell != host.home_cell
    if host.dpid == dpid:
        return _local_host_flows(view, host, roaming)
    if not roaming:
        return []
    match = _destination(host.address)
    actions = view.tunnel(dpid, host_cell)
    if view.cell_of_dpid[dpid] == host.home_cell:
        # The home cell drops what it cannot tunnel: its own pool route
        # would drop it too, and an explicit flow reads better in dumps.
        return _route_flows_for(PRIORITY_HOST_ROUTE, match, actions or DROP,
                                cookie_for(Kind.HOME_TUNNEL, host.mac))
    if view.settings.route_optimisation and actions is not None:
        return _route_flows_for(PRIORITY_HOST_ROUTE, match, actions,
                                cookie_for(Kind.ROUTE_OPTIMISED, host.mac))
    return []


def host_flow_changes(network, old, new):
    """Return {dpid: (flows before, flows after)} for one host's change.

    old and new are the host's placements before and after (None when it
    is absent), in the same topology and settings.  Only switches whose
    flows for this host differ are returned.  The switches that can hold
    a host's flows are its current and home switches and, while it roams
    with route optimisation on, every other switch.
    """
    view = network_view(network)
    candidates = set()
    for host in (old, new):
        if host is None:
            continue
        candidates.add(host.dpid)
        home_dpid = view.dpid_of_cell.get(host.home_cell)
        if home_dpid is not None:
            candidates.add(home_dpid)
        roaming = view.cell_of_dpid[host.dpid] != host.home_cell
        if roaming and view.settings.route_optimisation:
            candidates.update(view.cell_of_dpid)
    changes = {}
    for dpid in candidates:
        before = _host_flows(view, dpid, old) if old is not None else []
        after = _host_flows(view, dpid, new) if new is not None else []
        if before != after:
            changes[dpid] = (before, after)
    return changes


def move_hold_flow(mac, port, seconds):
    """Return the flow that drops a host's data frames at its new port.

    While a hand-over to that port runs, every frame of the host there
    would otherwise reach the controller by table-miss, up to the
    packet-in meter's rate, and delay the replies the hand-over waits
    for.  ARP and DHCP still reach the controller (higher priorities).
    The hand-over deletes the flow when it commits; ``seconds`` is a hard
    timeout in case it never does.
    """
    return Flow(table=TABLE_CLASSIFY, priority=PRIORITY_MOVE_HOLD,
                match=make_match(in_port=port, eth_src=mac), actions=DROP,
                cookie=cookie_for(Kind.MOVE_HOLD, mac), hard_timeout=seconds)


def host_flows(dpid, network, host):
    """Return the flows a host owns on a switch.

    host is a HostPlacement, which need not be in network.hosts: the
    hand-over plans use this to compute a host's flows after a move.
    """
    if dpid not in network.switches:
        raise KeyError('switch %d is not in the network' % dpid)
    if host is None:
        return frozenset()
    return frozenset(_host_flows(network_view(network), dpid, host))


def desired_flows(dpid, network):
    """Return every flow switch dpid should hold, table-miss flows included.

    Raises KeyError when the network has no switch dpid.
    """
    if dpid not in network.switches:
        raise KeyError('switch %d is not in the network' % dpid)
    view = network_view(network)
    by_dpid, roaming_by_home, roaming = view.host_index()
    cell = view.cell_of_dpid[dpid]
    hosts = {host.mac: host for host in by_dpid.get(dpid, ())}
    for host in roaming_by_home.get(cell, ()):
        hosts[host.mac] = host
    if view.settings.route_optimisation:
        for host in roaming:
            hosts[host.mac] = host
    flows = list(cell_flows(dpid, network))
    for host in hosts.values():
        flows.extend(_host_flows(view, dpid, host))
    return frozenset(flows)


def all_desired_flows(network):
    """Return the desired flows of every switch, by dpid."""
    return {dpid: desired_flows(dpid, network) for dpid in network.switches}

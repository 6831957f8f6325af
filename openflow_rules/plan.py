"""Differences between flow sets, and hand-over plans built from them.

Defines diff(), apply_diff(), handover_plan() and
handover_plan_for_host().  A plan is a list of SwitchChanges, to apply
one switch after another, in order.
"""

from openflow_rules.flow import FlowDiff, SwitchChange, flow_sort_key
from openflow_rules.flow import normalise_mac
from openflow_rules.pipeline import (
    desired_flows, host_flow_changes, network_view)

# Plan order of a switch by its role in one host's hand-over.  Downstream
# switches come first, so every step forwards the host's packets to a
# switch whose flows already lead to the host.
_RANK_NEW = 0
_RANK_HOME = 1
_RANK_OTHER = 2
_RANK_OLD = 3


def _by_identity(flows, name):
    indexed = {}
    for flow in flows:
        identity = (flow.table, flow.priority, flow.match)
        if identity in indexed and indexed[identity] != flow:
            raise ValueError('the %s flows hold two different flows with '
                             'identity %r: %r and %r'
                             % (name, identity, indexed[identity], flow))
        indexed[identity] = flow
    return indexed


def _same_entry_changed(old, new):
    """Tell whether two flows of one identity differ in anything else."""
    return (old.actions != new.actions or old.cookie != new.cookie
            or old.idle_timeout != new.idle_timeout
            or old.hard_timeout != new.hard_timeout)


def diff(before, after):
    """Return the FlowDiff that turns one flow set into another.

    Flows are the same entry when their (table, priority, match) are
    equal.  A same entry with other actions, cookie or timeouts is a
    modify.  Each list is sorted by table, priority and match.
    """
    remaining = _by_identity(before, 'before')
    add = []
    modify = []
    for identity, flow in _by_identity(after, 'after').items():
        old = remaining.pop(identity, None)
        if old is None:
            add.append(flow)
        elif _same_entry_changed(old, flow):
            modify.append(flow)
    delete = list(remaining.values())
    return FlowDiff(_sorted(add), _sorted(modify), _sorted(delete))


def _sorted(flows):
    """Return flows of distinct identities in flow_sort_key order."""
    if len(flows) < 2:
        return tuple(flows)
    try:
        # Faster, and the same order whenever it does not raise, because
        # the identities differ.  It raises when an IPv4 field is a str in
        # one match and an (address, mask) tuple in the other.
        return tuple(sorted(flows, key=_identity_order))
    except TypeError:
        return tuple(sorted(flows, key=flow_sort_key))


def _identity_order(flow):
    return (flow.table, -flow.priority, flow.match)


def apply_diff(flows, flow_diff):
    """Return the flows of a switch after a FlowDiff is applied to them.

    Raises ValueError when a modify or delete names no flow in flows,
    which means the diff was computed against other flows.
    """
    indexed = _by_identity(flows, 'current')
    for flow in flow_diff.delete:
        if indexed.pop(flow.identity, None) is None:
            raise ValueError('cannot delete %r: no such flow' % (flow,))
    for flow in flow_diff.modify:
        if flow.identity not in indexed:
            raise ValueError('cannot modify %r: no such flow' % (flow,))
        indexed[flow.identity] = flow
    for flow in flow_diff.add:
        indexed[flow.identity] = flow
    return frozenset(indexed.values())


def _same_apart_from_hosts(before, after):
    return (before.switches == after.switches
            and before.links == after.links
            and before.uplinks == after.uplinks
            and before.cell_pools == after.cell_pools
            and before.settings == after.settings)


def _same_host(old, new):
    # Networks made by replace_host share their unchanged placements, so
    # the identity test settles most hosts without comparing fields.
    return old is new or old == new


def _resync_plan(before, after):
    plan = []
    for dpid in sorted(after.switches):
        old = desired_flows(dpid, before) if dpid in before.switches else ()
        change = diff(old, desired_flows(dpid, after))
        if change:
            plan.append(SwitchChange(dpid, change))
    return plan


def _rank(dpid, old, new, home_dpids):
    if new is not None and dpid == new.dpid:
        return _RANK_NEW
    if old is not None and dpid == old.dpid:
        return _RANK_OLD
    if dpid in home_dpids:
        return _RANK_HOME
    return _RANK_OTHER


def _host_plan(network, old, new):
    """Return the ordered changes that move one host from old to new."""
    view = network_view(network)
    home_dpids = {view.dpid_of_cell.get(host.home_cell)
                  for host in (old, new) if host is not None}
    changes = []
    switch_flows = host_flow_changes(network, old, new)
    for dpid, (before, after) in switch_flows.items():
        rank = _rank(dpid, old, new, home_dpids)
        changes.append(((rank, dpid),
                        SwitchChange(dpid, diff(before, after))))
    changes.sort(key=lambda item: item[0])
    return [change for _, change in changes]


def handover_plan(before, after):
    """Return the switch changes that turn network before into after.

    When only hosts differ, each changed host (in MAC order) gets its own
    steps: its new switch first, then its home switch and the others,
    then its old switch.  Applied one at a time, these never drop or loop
    a packet to the host that before or after would deliver.  A switch
    may then appear once per host.  When switches, links, uplinks, pools
    or settings differ too, no order is safe for every change, and the
    plan is a resync of every switch whose flows change, in dpid order.
    Switches missing from after are left out: they cannot be programmed.
    """
    if not _same_apart_from_hosts(before, after):
        return _resync_plan(before, after)
    changed = sorted(mac for mac in before.hosts.keys() | after.hosts.keys()
                     if not _same_host(before.hosts.get(mac),
                                       after.hosts.get(mac)))
    plan = []
    for mac in changed:
        plan.extend(_host_plan(before, before.hosts.get(mac),
                               after.hosts.get(mac)))
    return plan


def handover_plan_for_host(network_before, mac, new_placement):
    """Return the plan that moves one host, touching only its flows.

    new_placement None means the host leaves (its lease expired).  The
    result equals handover_plan(network_before, network_after) where
    network_after differs from network_before in this host alone, but it
    costs time in proportion to the switches rather than the hosts.
    """
    mac = normalise_mac(mac)
    if new_placement is not None:
        if getattr(new_placement, 'mac', None) != mac:
            raise ValueError('new placement %r is not for host %s'
                             % (new_placement, mac))
        network_before.check_host(new_placement)
    old = network_before.hosts.get(mac)
    if old == new_placement:
        return []
    return _host_plan(network_before, old, new_placement)

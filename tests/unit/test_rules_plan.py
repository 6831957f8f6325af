"""diff and hand-over plans: what changes, on which switch, in what order."""

import dataclasses

import pytest

from openflow_rules import (
    Flow, FlowDiff, Kind, Settings, all_desired_flows, apply_diff,
    describe_cookie, desired_flows, diff, handover_plan,
    handover_plan_for_host, make_match)
from openflow_rules import scenarios
from openflow_rules.flow import flow_sort_key

ROAMER = 'aa:00:00:00:01:00'


def _flow(port, priority=10, actions=(), cookie=1, idle_timeout=0):
    return Flow(0, priority, make_match(in_port=port), actions, cookie,
                idle_timeout=idle_timeout)


def test_diff_of_equal_sets_is_empty():
    flows = {_flow(1), _flow(2)}

    result = diff(flows, set(flows))

    assert not result
    assert len(result) == 0


def test_diff_finds_add_modify_delete_by_identity():
    before = {_flow(1), _flow(2), _flow(3)}
    after = {_flow(1), _flow(2, actions=(('output', 5),)), _flow(4)}

    result = diff(before, after)

    assert result.add == (_flow(4),)
    assert result.modify == (_flow(2, actions=(('output', 5),)),)
    assert result.delete == (_flow(3),)


@pytest.mark.parametrize('changed', [
    {'cookie': 2}, {'idle_timeout': 30}])
def test_diff_counts_cookie_or_timeout_change_as_modify(changed):
    old = _flow(1)
    new = dataclasses.replace(old, **changed)

    result = diff({old}, {new})

    assert result == FlowDiff(modify=(new,))


def test_diff_counts_priority_change_as_add_and_delete():
    result = diff({_flow(1, priority=10)}, {_flow(1, priority=20)})

    assert result.add == (_flow(1, priority=20),)
    assert result.delete == (_flow(1, priority=10),)


def test_diff_order_ignores_input_order():
    flows = [_flow(port) for port in (5, 3, 9, 1)]

    forward = diff((), flows)
    backward = diff((), list(reversed(flows)))

    assert forward.add == backward.add
    assert [dict(flow.match)['in_port'] for flow in forward.add] == \
        [1, 3, 5, 9]


def test_diff_rejects_two_flows_with_one_identity():
    with pytest.raises(ValueError, match='two different flows'):
        diff({_flow(1), _flow(1, cookie=2)}, ())


def test_apply_diff_turns_before_into_after():
    network = scenarios.star()
    moved = scenarios.move(network, ROAMER, 2, 2)
    before, after = desired_flows(1, network), desired_flows(1, moved)

    assert apply_diff(before, diff(before, after)) == after


def test_apply_diff_rejects_delete_of_missing_flow():
    with pytest.raises(ValueError, match='no such flow'):
        apply_diff(set(), FlowDiff(delete=(_flow(1),)))


def _apply_plan(tables, plan):
    tables = dict(tables)
    for change in plan:
        tables[change.dpid] = apply_diff(tables[change.dpid], change.diff)
    return tables


def _moves():
    """Yield (name, before, after, mac) for each hand-over case."""
    for optimise in (True, False):
        for reverse in (False, True):
            settings = Settings(route_optimisation=optimise,
                                reverse_tunnelling=reverse)
            tag = ' ro=%s rt=%s' % (optimise, reverse)
            star = scenarios.star(settings)
            roaming = scenarios.move(star, ROAMER, 2, 2)
            farther = scenarios.move(roaming, ROAMER, 3, 2)
            other_port = scenarios.move(star, ROAMER, 1, 2)
            ring = scenarios.ring(4, settings)
            ring_moved = scenarios.move(ring, ROAMER, 3, 2)
            yield 'leave home' + tag, star, roaming, ROAMER
            yield 'foreign to foreign' + tag, roaming, farther, ROAMER
            yield 'back home' + tag, farther, star, ROAMER
            yield 'other port same switch' + tag, star, other_port, ROAMER
            yield 'expire roaming' + tag, roaming, roaming.remove_host(
                ROAMER), ROAMER
            yield 'attach roaming' + tag, roaming.remove_host(ROAMER), \
                roaming, ROAMER
            yield 'ring move' + tag, ring, ring_moved, ROAMER


MOVES = list(_moves())
MOVE_IDS = [name for name, _, _, _ in MOVES]


@pytest.mark.parametrize('name, before, after, mac', MOVES, ids=MOVE_IDS)
def test_plan_reaches_desired_flows(name, before, after, mac):
    plan = handover_plan(before, after)

    tables = _apply_plan(all_desired_flows(before), plan)

    assert tables == all_desired_flows(after)


@pytest.mark.parametrize('name, before, after, mac', MOVES, ids=MOVE_IDS)
def test_plan_for_host_equals_full_diff(name, before, after, mac):
    full = {}
    for dpid in after.switches:
        change = diff(desired_flows(dpid, before), desired_flows(dpid, after))
        if change:
            full[dpid] = change

    plan = handover_plan_for_host(before, mac, after.hosts.get(mac))

    assert {change.dpid: change.diff for change in plan} == full
    assert len(plan) == len(full)
    assert plan == handover_plan(before, after)


def test_plan_lists_only_switches_whose_flows_change():
    network = scenarios.star(Settings(route_optimisation=False))

    plan = handover_plan(network, scenarios.move(network, ROAMER, 2, 2))

    assert [change.dpid for change in plan] == [2, 1]


def test_plan_order_new_home_others_old():
    roaming = scenarios.move(scenarios.star(), ROAMER, 2, 2)

    plan = handover_plan(roaming, scenarios.move(roaming, ROAMER, 3, 2))

    assert [change.dpid for change in plan] == [3, 1, 4, 2]


def test_plan_back_home_puts_home_first():
    roaming = scenarios.move(scenarios.star(), ROAMER, 2, 2)

    plan = handover_plan(roaming, scenarios.star())

    assert [change.dpid for change in plan][0] == 1
    assert [change.dpid for change in plan][-1] == 2


def _arp_replies(flows):
    return [flow for flow in flows
            if describe_cookie(flow.cookie).kind == Kind.ARP_REPLY]


def test_plan_moves_arp_reply_with_host():
    star = scenarios.star()
    roaming = scenarios.move(star, ROAMER, 2, 2)

    plan = handover_plan_for_host(star, ROAMER, roaming.hosts[ROAMER])

    changes = {change.dpid: change.diff for change in plan}
    [added] = _arp_replies(changes[2].add)
    [deleted] = _arp_replies(changes[1].delete)
    assert dict(added.match)['in_port'] == 2
    assert dict(deleted.match)['in_port'] == 1
    assert not _arp_replies(changes[2].delete + changes[2].modify)
    assert not _arp_replies(changes[1].add + changes[1].modify)


def test_plan_for_expired_host_deletes_arp_reply():
    roaming = scenarios.move(scenarios.star(), ROAMER, 2, 2)

    plan = handover_plan_for_host(roaming, ROAMER, None)

    deleted = [flow for change in plan for flow in change.diff.delete]
    assert [change.dpid for change in plan
            if _arp_replies(change.diff.delete)] == [2]
    assert len(_arp_replies(deleted)) == 1


def test_plan_to_other_port_replaces_arp_reply():
    star = scenarios.star()
    moved = scenarios.move(star, ROAMER, 1, 2)

    [change] = handover_plan_for_host(star, ROAMER, moved.hosts[ROAMER])

    [added] = _arp_replies(change.diff.add)
    [deleted] = _arp_replies(change.diff.delete)
    assert dict(added.match)['in_port'] == 2
    assert dict(deleted.match)['in_port'] == 1


def test_plan_of_unchanged_network_is_empty():
    network = scenarios.star()

    assert handover_plan(network, scenarios.star()) == []
    assert handover_plan_for_host(network, ROAMER,
                                  network.hosts[ROAMER]) == []


def test_plan_moves_several_hosts_one_after_another():
    network = scenarios.star()
    after = scenarios.move(scenarios.move(network, ROAMER, 2, 2),
                           'aa:00:00:00:03:00', 1, 2)

    plan = handover_plan(network, after)

    assert _apply_plan(all_desired_flows(network), plan) == \
        all_desired_flows(after)
    assert [change.dpid for change in plan] == [2, 3, 4, 1, 1, 2, 4, 3]


def test_topology_change_gives_resync_in_dpid_order():
    before = scenarios.ring(4)
    after = dataclasses.replace(before, links=frozenset(
        link for link in before.links
        if {link.src_dpid, link.dst_dpid} != {1, 4}))

    plan = handover_plan(before, after)

    # Cell 3 reaches every cell by the same paths as before.
    assert [change.dpid for change in plan] == [1, 2, 4]
    assert _apply_plan(all_desired_flows(before), plan) == \
        all_desired_flows(after)


def test_plan_for_host_rejects_placement_on_core_port():
    network = scenarios.star()
    host = dataclasses.replace(network.hosts[ROAMER], dpid=2, port=11)

    with pytest.raises(ValueError, match='not an access port'):
        handover_plan_for_host(network, ROAMER, host)


def test_plan_for_host_rejects_address_of_other_host():
    network = scenarios.star()
    host = dataclasses.replace(network.hosts[ROAMER],
                               mac='aa:00:00:00:09:09')

    with pytest.raises(ValueError, match='share the address 10.1.0.2'):
        handover_plan_for_host(network, host.mac, host)


def test_plan_for_host_rejects_placement_for_other_mac():
    network = scenarios.star()

    with pytest.raises(ValueError, match='is not for host'):
        handover_plan_for_host(network, 'aa:00:00:00:09:09',
                               network.hosts[ROAMER])


def test_diff_sorts_mixed_address_matches():
    flows = [Flow(2, 600, make_match(eth_type=0x0800, ipv4_dst=value), (),
                  1)
             for value in ('255.255.255.255', '224.0.0.0/4', '10.0.0.1')]

    added = diff((), flows).add

    assert list(added) == sorted(flows, key=flow_sort_key)

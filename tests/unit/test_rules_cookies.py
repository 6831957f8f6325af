"""Cookies name each flow's kind and owner, and select one host's flows."""

import pytest

from openflow_rules import (
    TMIP_COOKIE, TMIP_COOKIE_MASK, Kind, all_desired_flows, cookie_for,
    describe_cookie, host_cookie, kind_cookie)
from openflow_rules import scenarios
from openflow_rules.cookies import HOST_KINDS, KINDS


def _roaming_star():
    network = scenarios.star()
    return scenarios.move(network, 'aa:00:00:00:01:00', 2, 2)


def test_every_flow_carries_tmip_marker():
    for flows in all_desired_flows(_roaming_star()).values():
        for flow in flows:
            assert flow.cookie & TMIP_COOKIE_MASK == TMIP_COOKIE


def test_ryu_lldp_cookie_is_not_tmip():
    assert 0 & TMIP_COOKIE_MASK != TMIP_COOKIE
    assert describe_cookie(0).kind is None


_KINDS_WITHOUT_OWNER = {Kind.TABLE_MISS, Kind.ARP, Kind.NOT_ROUTED}


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_describe_cookie_returns_kind_and_owner(kind):
    if kind in HOST_KINDS:
        owner = 'aa:00:00:00:01:00'
    elif kind in _KINDS_WITHOUT_OWNER:
        owner = None
    else:
        owner = 3

    description = describe_cookie(cookie_for(kind, owner))

    assert description.kind == kind
    assert description.owner == owner


def test_describe_cookie_reads_well_in_logs():
    cookie = cookie_for(Kind.DELIVER, 'aa:00:00:00:01:00')

    assert str(describe_cookie(cookie)) == 'deliver host aa:00:00:00:01:00'
    assert str(describe_cookie(cookie_for(Kind.POOL_ROUTE, 2))) == \
        'pool_route cell 2'


def test_cookie_for_rejects_unknown_kind():
    with pytest.raises(ValueError, match='unknown flow kind'):
        cookie_for('flood')


def test_cookie_for_rejects_missing_owner():
    with pytest.raises(ValueError, match='needs a cell number'):
        cookie_for(Kind.POOL_ROUTE)


def _selected(cookie_and_mask, flows):
    cookie, mask = cookie_and_mask
    return {flow for flow in flows if flow.cookie & mask == cookie}


def test_host_cookie_selects_exactly_that_hosts_flows():
    network = _roaming_star()
    mac = 'aa:00:00:00:01:00'
    for dpid, flows in all_desired_flows(network).items():
        owned = {flow for flow in flows
                 if describe_cookie(flow.cookie).owner == mac}

        assert _selected(host_cookie(mac), flows) == owned


def test_host_cookie_kinds_per_switch():
    network = _roaming_star()
    flows = all_desired_flows(network)
    mac = 'aa:00:00:00:01:00'

    kinds = {dpid: {describe_cookie(flow.cookie).kind
                    for flow in _selected(host_cookie(mac), flows[dpid])}
             for dpid in flows}

    assert kinds[2] == {Kind.ARP_REPLY, Kind.SOURCE_GUARD,
                        Kind.SPOOF_DROP, Kind.GATEWAY, Kind.DELIVER}
    assert kinds[1] == {Kind.HOME_TUNNEL}
    assert kinds[3] == {Kind.ROUTE_OPTIMISED}
    assert kinds[4] == {Kind.ROUTE_OPTIMISED}


def test_host_mask_excludes_cell_flows():
    # A cell-owned flow whose owner bits equal the host's MAC bits must
    # still fall outside the host's mask.
    mac = '00:00:00:00:00:02'
    cell_flow_cookie = cookie_for(Kind.POOL_ROUTE, 2)
    cookie, mask = host_cookie(mac)

    assert cell_flow_cookie & mask != cookie


def test_kind_cookie_selects_one_kind():
    network = _roaming_star()
    flows = all_desired_flows(network)[1]

    selected = _selected(kind_cookie(Kind.LABEL_SWITCH), flows)

    assert {describe_cookie(flow.cookie).kind for flow in selected} == \
        {Kind.LABEL_SWITCH}
    assert len(selected) == 3


def test_existing_kind_codes_never_change():
    # Switches keep flows across controller restarts and upgrades, so a
    # renumbered kind would orphan every flow of that kind.
    codes = {kind: (cookie_for(kind, owner) >> 48) & 0xff
             for kind, owner in ((Kind.ARP, None),
                                 (Kind.REVERSE_TUNNEL, 'aa:00:00:00:01:00'),
                                 (Kind.ARP_REPLY, 'aa:00:00:00:01:00'))}

    assert codes[Kind.ARP] == 0x02
    assert codes[Kind.REVERSE_TUNNEL] == 0x17
    assert codes[Kind.ARP_REPLY] == 0x18


def test_arp_reply_is_a_host_kind():
    cookie, mask = host_cookie('aa:00:00:00:01:00')

    assert Kind.ARP_REPLY in HOST_KINDS
    assert cookie_for(Kind.ARP_REPLY, 'aa:00:00:00:01:00') & mask == cookie

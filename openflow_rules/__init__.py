"""The TMip OpenFlow pipeline as pure rules: no Ryu, no switch, no I/O.

From a Network (switches, core links, uplinks, host bindings, settings)
it computes the flows each switch should hold, the differences to apply
on a hand-over, and ovs-ofctl text of those flows.  The walker follows
packets through the computed tables to prove where they go.
"""

from openflow_rules.constants import (
    GATEWAY_MAC_DEFAULT, PACKET_IN_METER_ID, PACKET_IN_RATE_PPS,
    TABLE_CLASSIFY, TABLE_LABEL, TABLE_ROUTE, TABLES, cell_for_label,
    label_for_cell)
from openflow_rules.cookies import (
    TMIP_COOKIE, TMIP_COOKIE_MASK, CookieDescription, Kind, cookie_for,
    describe_cookie, host_cookie, is_tmip_cookie, kind_cookie)
from openflow_rules.flow import Flow, FlowDiff, SwitchChange, make_match
from openflow_rules.network import (
    ACCESS, CORE, UPLINK, CoreLink, HostPlacement, Network, PortRole,
    Settings, Switch, Uplink, core_link_pair, default_pool)
from openflow_rules.pipeline import (
    all_desired_flows, cell_flows, desired_flows, host_flows,
    move_hold_flow)
from openflow_rules.plan import (
    apply_diff, diff, handover_plan, handover_plan_for_host)
from openflow_rules.render import render_ofctl, render_ofctl_all

__all__ = [
    'ACCESS', 'CORE', 'CookieDescription', 'CoreLink', 'Flow', 'FlowDiff',
    'GATEWAY_MAC_DEFAULT', 'HostPlacement', 'Kind', 'Network',
    'PACKET_IN_METER_ID', 'PACKET_IN_RATE_PPS', 'PortRole', 'Settings',
    'Switch', 'SwitchChange', 'TABLES', 'TABLE_CLASSIFY', 'TABLE_LABEL',
    'TABLE_ROUTE', 'TMIP_COOKIE', 'TMIP_COOKIE_MASK', 'UPLINK', 'Uplink',
    'all_desired_flows', 'apply_diff', 'cell_flows', 'cell_for_label',
    'cookie_for', 'core_link_pair', 'default_pool', 'describe_cookie',
    'desired_flows', 'diff', 'handover_plan', 'handover_plan_for_host',
    'host_cookie', 'host_flows', 'is_tmip_cookie', 'kind_cookie',
    'label_for_cell', 'make_match', 'move_hold_flow', 'render_ofctl',
    'render_ofctl_all',
]

"""Frames during and around a move, and back-to-back moves.

Open vSwitch may pass up frames it received at a port just before that
port moved to another bridge, and these must not move the host back.  A
move requested while the last one is being applied must run, not be
dropped.  While a move runs, the host's data frames at its new port are
dropped by a flow there rather than sent to the controller.  A link
going down or up as a host leaves or arrives starts no resync.
"""

import types

from ryu.lib.packet import dhcp as ryu_dhcp

from openflow_rules import constants
from test_controller_app import (  # noqa: F401 - app is a fixture
    HOST, _run_greenthreads, _two_cells_with_host, app, connect,
    finish_resyncs, installed, link, packet_in)
from test_packets_frames import arp_frame, dhcp_request_frame

# The host's ARP request for its gateway: any frame from a known host at
# a new place starts a move there.
HOST_ARP = arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST)


def three_cells_in_a_row(app):
    """Connect switches 1-2-3 in a line and attach HOST at 1 port 2."""
    switches = tuple(connect(app, dpid) for dpid in (1, 2, 3))
    link(app, 1, 1, 2, 1)
    link(app, 2, 2, 3, 1)
    packet_in(app, switches[0], 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    _run_greenthreads(app, switches)
    return switches


def moved_from_one_to_two(app):
    """Attach HOST at switch 1 port 2, then move it to switch 2 port 3."""
    one, two = _two_cells_with_host(app)
    packet_in(app, two, 3, HOST_ARP)
    _run_greenthreads(app, (one, two))
    assert (app.register.get(HOST).dpid, app.register.get(HOST).port) == \
        (2, 3)
    return one, two


def port_status(app, datapath, port_no, reason, link_down=False):
    """Deliver a port status message to the controller."""
    state = datapath.ofproto.OFPPS_LINK_DOWN if link_down else 0
    ev = types.SimpleNamespace(msg=types.SimpleNamespace(
        datapath=datapath, reason=reason,
        desc=types.SimpleNamespace(port_no=port_no, state=state,
                                   hw_addr='0a:00:00:00:01:02')))
    app.port_status_handler(ev)


def delete_port(app, datapath, port_no):
    port_status(app, datapath, port_no, datapath.ofproto.OFPPR_DELETE)


def test_move_during_apply_runs_next(app):
    switches = three_cells_in_a_row(app)
    _, two, three = switches
    # The frame from switch 3 arrives while the thread of the move to
    # switch 2 is releasing the frames it held, after the commit.
    release = app._release_held

    def release_then_see_host_elsewhere(mac):
        app._release_held = release
        release(mac)
        packet_in(app, three, 3, HOST_ARP)
    app._release_held = release_then_see_host_elsewhere

    packet_in(app, two, 3, HOST_ARP)
    _run_greenthreads(app, switches, rounds=40)

    assert app.register.get(HOST).dpid == 3
    assert [r['status'] for r in app.coordinator.history()] == \
        ['committed', 'committed']
    assert not app.handover_threads


def test_deleted_port_frame_is_dropped(app):
    one, two = moved_from_one_to_two(app)
    delete_port(app, one, 2)

    packet_in(app, one, 2, HOST_ARP)
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 2
    assert 2 not in app.state.ports[1]
    assert app.counters['frames_from_deleted_ports'] == 1


def test_readded_port_frame_moves_host(app):
    one, two = moved_from_one_to_two(app)
    delete_port(app, one, 2)
    port_status(app, one, 2, one.ofproto.OFPPR_ADD)

    packet_in(app, one, 2, HOST_ARP)
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1


def _is_move_hold(message):
    return type(message).__name__ == 'OFPFlowMod' and \
        message.priority == constants.PRIORITY_MOVE_HOLD


def test_move_hold_lasts_until_commit(app):
    one, two = _two_cells_with_host(app)

    packet_in(app, two, 3, HOST_ARP)
    first = two.sent[0]
    _run_greenthreads(app, (one, two))

    ofproto = two.ofproto
    assert _is_move_hold(first)
    assert first.command == ofproto.OFPFC_ADD
    assert dict(first.match.items()) == {'in_port': 3, 'eth_src': HOST}
    assert first.instructions == []
    assert first.hard_timeout > 2 * app.settings.handover_timeout
    adds = [m.message for m in two.of_type('OFPBundleAddMsg')]
    deleted = [m for m in adds if _is_move_hold(m)]
    assert [m.command for m in deleted] == [ofproto.OFPFC_DELETE_STRICT]
    assert app.register.get(HOST).dpid == 2
    assert installed(app, 2) == app.desired_flows(2)
    assert not app.move_holds


def test_aborted_move_deletes_its_hold(app):
    one, two = _two_cells_with_host(app)

    packet_in(app, two, 3, HOST_ARP)
    _run_greenthreads(app, (one, two), rounds=1)
    failing = two.of_type('OFPBundleAddMsg')[0]
    app.tracker.on_error(2, failing.xid, 'error type 17 code 0')
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1
    holds = [m for m in two.of_type('OFPFlowMod') if _is_move_hold(m)]
    assert [m.command for m in holds] == \
        [two.ofproto.OFPFC_ADD, two.ofproto.OFPFC_DELETE_STRICT]
    assert not app.move_holds


def test_queued_move_moves_the_hold(app):
    switches = three_cells_in_a_row(app)
    _, two, three = switches

    packet_in(app, two, 3, HOST_ARP)
    packet_in(app, three, 3, HOST_ARP)
    _run_greenthreads(app, switches, rounds=40)

    ofproto = two.ofproto
    at_two = [m.command for m in two.of_type('OFPFlowMod')
              if _is_move_hold(m)]
    at_three = [m for m in three.of_type('OFPFlowMod') if _is_move_hold(m)]
    assert app.register.get(HOST).dpid == 3
    assert at_two == [ofproto.OFPFC_ADD, ofproto.OFPFC_DELETE_STRICT]
    assert [m.command for m in at_three] == [ofproto.OFPFC_ADD]
    assert dict(at_three[0].match.items())['in_port'] == 3
    assert not app.move_holds
    for datapath in switches:
        assert installed(app, datapath.id) == app.desired_flows(datapath.id)


def test_link_state_change_skips_resync(app):
    # A host leaving a cell takes the link down (a radio link lost); the
    # switch's ports stay the same, so its flows need no resync.
    one, two = moved_from_one_to_two(app)
    network = app.state.network()
    one.sent.clear()

    port_status(app, one, 2, one.ofproto.OFPPR_MODIFY, link_down=True)

    assert not app.sync_busy()
    assert app.state.network() is network
    finish_resyncs(app)
    assert one.sent == []


def test_new_port_gets_its_flows(app):
    one, two = moved_from_one_to_two(app)
    one.sent.clear()

    port_status(app, one, 4, one.ofproto.OFPPR_ADD)
    finish_resyncs(app)

    matched_ports = [dict(message.match.items()).get('in_port')
                     for message in one.sent
                     if type(message).__name__ == 'OFPFlowMod']
    assert 4 in matched_ports


def test_unplugging_host_port_waits_for_move(app):
    # The cable left the port with the host on it: the host's flows stay
    # there until its move takes them away, and the move resyncs.
    one, two = _two_cells_with_host(app)
    network = app.state.network()

    delete_port(app, one, 2)

    assert not app.sync_busy()
    assert app.state.network() is network
    packet_in(app, two, 3, HOST_ARP)
    _run_greenthreads(app, (one, two))
    finish_resyncs(app)
    assert app.register.get(HOST).dpid == 2
    assert 2 not in app.state.network().switches[1].ports


def test_deleting_empty_port_resyncs_switch(app):
    one, two = moved_from_one_to_two(app)
    finish_resyncs(app)
    one.sent.clear()

    delete_port(app, one, 3)
    finish_resyncs(app)

    assert any(type(message).__name__ == 'OFPFlowMod'
               and dict(message.match.items()).get('in_port') == 3
               for message in one.sent)


def test_frame_from_down_link_is_dropped(app):
    one, two = moved_from_one_to_two(app)
    port_status(app, one, 2, one.ofproto.OFPPR_MODIFY, link_down=True)

    packet_in(app, one, 2, HOST_ARP)
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 2
    assert app.counters['frames_from_down_ports'] == 1
    assert len(app.coordinator.history()) == 1


def test_frame_after_link_up_moves_host(app):
    one, two = moved_from_one_to_two(app)
    port_status(app, one, 2, one.ofproto.OFPPR_MODIFY, link_down=True)
    port_status(app, one, 2, one.ofproto.OFPPR_MODIFY)

    packet_in(app, one, 2, HOST_ARP)
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1
    assert 'frames_from_down_ports' not in app.counters


def test_frame_after_down_window_moves_host(app):
    # A returning host can announce itself before the link-up status
    # arrives.  Once the short window after the link went down is over,
    # that frame moves the host.
    one, two = moved_from_one_to_two(app)
    port_status(app, one, 2, one.ofproto.OFPPR_MODIFY, link_down=True)
    app.down_ports[(1, 2)] -= 0.3

    packet_in(app, one, 2, HOST_ARP)
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1

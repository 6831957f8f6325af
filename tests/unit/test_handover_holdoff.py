"""Frames from the place a host has just left, and back-to-back moves.

Open vSwitch may pass up frames it received at a port just before that
port moved.  They must not move the host back unless the host is really
there; and a move requested while the last one is being applied must
run, not be dropped.
"""

import time
import types

import pytest
from ryu.lib import hub
from ryu.lib.packet import dhcp as ryu_dhcp

from test_controller_app import (HOST, FakeWsgi, _run_greenthreads, connect,
                                 link, packet_in)
from test_packets_frames import arp_frame, dhcp_request_frame
from tmip_ryu.apps import controller as controller_module
from tmip_ryu.config import TmipSettings

HOLDOFF_MS = 60


def make_app(tmp_path, monkeypatch, holdoff_ms):
    settings = TmipSettings(state_file=str(tmp_path / 'state.sqlite'),
                            move_back_holdoff_ms=holdoff_ms)
    monkeypatch.setattr(controller_module, 'load_settings', lambda: settings)
    monkeypatch.setattr(controller_module, 'check_listen_ports',
                        lambda: None)
    monkeypatch.setattr(controller_module, 'SETTLE_SECONDS', 0.0)
    return controller_module.TmipController(wsgi=FakeWsgi())


@pytest.fixture
def make(tmp_path, monkeypatch):
    apps = []

    def build(holdoff_ms=HOLDOFF_MS):
        apps.append(make_app(tmp_path, monkeypatch, holdoff_ms))
        return apps[-1]
    yield build
    for app in apps:
        for thread in app.threads:
            hub.kill(thread)


def moved_from_one_to_two(app):
    """Attach HOST at switch 1 port 2, then move it to switch 2 port 3."""
    one = connect(app, 1)
    two = connect(app, 2)
    link(app, 1, 1, 2, 1)
    packet_in(app, one, 2, dhcp_request_frame(ryu_dhcp.DHCP_DISCOVER,
                                              mac=HOST))
    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, (one, two))
    assert (app.register.get(HOST).dpid, app.register.get(HOST).port) == \
        (2, 3)
    return one, two


def delete_port(app, datapath, port_no):
    ofproto = datapath.ofproto
    app.port_status_handler(types.SimpleNamespace(msg=types.SimpleNamespace(
        datapath=datapath, reason=ofproto.OFPPR_DELETE,
        desc=types.SimpleNamespace(port_no=port_no,
                                   hw_addr='0a:00:00:00:01:02'))))


def wait_past_holdoff(app, switches, holdoff_ms=HOLDOFF_MS):
    deadline = time.monotonic() + holdoff_ms / 1000.0 + 0.05
    while time.monotonic() < deadline:
        _run_greenthreads(app, switches, rounds=1)
        hub.sleep(0.005)
    _run_greenthreads(app, switches)


def committed(app):
    return [record for record in app.coordinator.history()
            if record['status'] == 'committed']


def test_stale_frame_from_deleted_old_port_does_not_move_host_back(make):
    app = make()
    one, two = moved_from_one_to_two(app)

    packet_in(app, one, 2, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    delete_port(app, one, 2)
    wait_past_holdoff(app, (one, two))

    binding = app.register.get(HOST)
    assert (binding.dpid, binding.port) == (2, 3)
    assert len(committed(app)) == 1
    assert app.counters['frames_from_left_place'] == 1
    assert app.counters['stale_frames_from_left_place'] == 1


def test_host_back_at_old_port_moves_after_holdoff(make):
    app = make()
    one, two = moved_from_one_to_two(app)

    packet_in(app, one, 2, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, (one, two))
    still_at_two = app.register.get(HOST).dpid == 2
    wait_past_holdoff(app, (one, two))

    binding = app.register.get(HOST)
    assert still_at_two
    assert (binding.dpid, binding.port) == (1, 2)
    assert len(committed(app)) == 2


def test_frame_after_holdoff_moves_host_back_at_once(make):
    app = make()
    one, two = moved_from_one_to_two(app)
    wait_past_holdoff(app, (one, two))

    packet_in(app, one, 2, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1
    assert app.counters.get('frames_from_left_place', 0) == 0


def test_zero_holdoff_moves_host_back_at_once(make):
    app = make(holdoff_ms=0)
    one, two = moved_from_one_to_two(app)

    packet_in(app, one, 2, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, (one, two))

    assert app.register.get(HOST).dpid == 1


def test_move_requested_while_last_one_is_applied_runs(make):
    app = make()
    one = connect(app, 1)
    two = connect(app, 2)
    three = connect(app, 3)
    link(app, 1, 1, 2, 1)
    link(app, 2, 2, 3, 1)
    switches = (one, two, three)
    packet_in(app, one, 2, dhcp_request_frame(ryu_dhcp.DHCP_DISCOVER,
                                              mac=HOST))
    # The frame from switch 3 arrives while the thread of the move to
    # switch 2 is releasing the frames it held, after the commit.
    release = app._release_held

    def release_then_see_host_elsewhere(mac):
        app._release_held = release
        release(mac)
        packet_in(app, three, 3, arp_frame(1, '10.1.0.2', '10.1.0.1',
                                           mac=HOST))
    app._release_held = release_then_see_host_elsewhere

    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, switches, rounds=40)

    assert app.register.get(HOST).dpid == 3
    assert [r['status'] for r in app.coordinator.history()] == \
        ['committed', 'committed']
    assert not app.handover_threads

"""TmipController with fake datapaths: what it sends for each event.

The switches are ``FakeDatapath`` objects with Ryu's real encoders; the
integration tests check the same behaviour against Open vSwitch.
"""

import types

import pytest
from ryu.lib import hub
from ryu.lib.packet import dhcp as ryu_dhcp
from ryu.ofproto import ofproto_v1_3, ofproto_v1_4

import openflow_rules as rules
from support.fake_switch import FakeDatapath
from test_packets_frames import arp_frame, dhcp_request_frame
from tmip_ryu.apps import controller as controller_module
from tmip_ryu.config import TmipSettings
from tmip_ryu.packets import parse_frame

HOST = '02:00:00:00:0a:01'
OTHER = '02:00:00:00:0b:02'
GATEWAY_MAC = '02:00:00:00:00:01'
DHCPRELEASE = 7


class FakeWsgi:
    """Stands in for ryu.app.wsgi.WSGIApplication: records controllers."""

    def __init__(self):
        self.registered = []

    def register(self, controller, data=None):
        self.registered.append(controller)


def event(**fields):
    return types.SimpleNamespace(msg=types.SimpleNamespace(**fields))


@pytest.fixture
def app(tmp_path, monkeypatch):
    settings = TmipSettings(state_file=str(tmp_path / 'state.sqlite'))
    monkeypatch.setattr(controller_module, 'load_settings', lambda: settings)
    monkeypatch.setattr(controller_module, 'check_listen_ports',
                        lambda: None)
    monkeypatch.setattr(controller_module, 'SETTLE_SECONDS', 0.0)
    app = controller_module.TmipController(wsgi=FakeWsgi())
    yield app
    for thread in app.threads:
        hub.kill(thread)


def connect(app, dpid, ports=(1, 2, 3), version=ofproto_v1_4.OFP_VERSION,
            held=()):
    """Walk a fake switch through features, port and flow replies."""
    datapath = FakeDatapath(dpid, version)
    app.switch_features_handler(event(datapath=datapath))
    port_list = [types.SimpleNamespace(port_no=p,
                                       hw_addr='0a:00:00:00:%02x:%02x'
                                       % (dpid, p)) for p in ports]
    app.port_desc_handler(event(datapath=datapath, body=port_list))
    app.flow_stats_handler(event(datapath=datapath, body=list(held),
                                 flags=0))
    finish_resyncs(app)
    return datapath


def finish_resyncs(app, limit=10000):
    """Let the switches' resync green threads run until they are done."""
    for _ in range(limit):
        hub.sleep(0)
        if not app.sync_busy():
            return
    raise AssertionError('resyncs still running after %d yields' % limit)


def link(app, a, a_port, b, b_port):
    """Report both directions of a core link, as LLDP discovery does."""
    for src, src_port, dst, dst_port in ((a, a_port, b, b_port),
                                         (b, b_port, a, a_port)):
        ev = types.SimpleNamespace(link=types.SimpleNamespace(
            src=types.SimpleNamespace(dpid=src, port_no=src_port),
            dst=types.SimpleNamespace(dpid=dst, port_no=dst_port)))
        app.link_add_handler(ev)
    finish_resyncs(app)


def packet_in(app, datapath, port, data):
    app.packet_in_handler(event(datapath=datapath, match={'in_port': port},
                                data=data))


def packet_outs(datapath):
    """Return (out_port, parsed frame) for each packet-out sent."""
    outs = []
    for message in datapath.of_type('OFPPacketOut'):
        outs.append((message.actions[0].port, parse_frame(message.data)))
    return outs


def installed(app, dpid):
    return app.switches[dpid].installed


def test_connect_installs_desired_flows_and_meter(app):
    datapath = connect(app, 1)

    meters = datapath.of_type('OFPMeterMod')
    assert [m.meter_id for m in meters] == [rules.PACKET_IN_METER_ID]
    mods = datapath.of_type('OFPFlowMod')
    assert len(mods) == len(app.desired_flows(1))
    assert installed(app, 1) == app.desired_flows(1)


def test_reconnect_sends_only_the_difference(app):
    first = connect(app, 1)
    # A host brings every kind of host flow, its ARP reply flow included.
    packet_in(app, first, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    held = app.desired_flows(1)
    cookie, mask = rules.host_cookie(HOST)
    assert any(f.cookie & mask == cookie for f in held)
    app.state_change_handler(types.SimpleNamespace(datapath=first))
    stats = _stats_for(first, held)
    # The switch kept every flow but one.
    missing = sorted(held, key=rules.flow.flow_sort_key)[0]

    second = connect(app, 1, held=[s for f, s in stats if f != missing])

    mods = second.of_type('OFPFlowMod')
    assert len(mods) == 1
    assert mods[0].command == second.ofproto.OFPFC_ADD
    assert mods[0].priority == missing.priority


def _stats_for(datapath, flows):
    """Build OFPFlowStats entries as a switch would report ``flows``."""
    from tmip_ryu.ofp_render import build_instructions, build_match
    parser = datapath.ofproto_parser
    stats = []
    for flow in flows:
        entry = parser.OFPFlowStats(
            table_id=flow.table, duration_sec=0, duration_nsec=0,
            priority=flow.priority, idle_timeout=flow.idle_timeout,
            hard_timeout=flow.hard_timeout, flags=0, cookie=flow.cookie,
            packet_count=0, byte_count=0,
            match=build_match(parser, flow),
            instructions=build_instructions(datapath, flow.actions))
        stats.append((flow, entry))
    return stats


def test_first_frame_registers_host_and_installs_its_flows(app):
    datapath = connect(app, 1)
    datapath.take()

    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))

    binding = app.register.get(HOST)
    assert binding.home_cell == 1
    assert (binding.dpid, binding.port) == (1, 2)
    cookie, mask = rules.host_cookie(HOST)
    host_mods = [m for m in datapath.of_type('OFPFlowMod')
                 if m.cookie & mask == cookie]
    assert host_mods


def test_discover_gets_offer_of_home_address(app):
    datapath = connect(app, 1)
    datapath.take()

    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))

    [(port, offer)] = packet_outs(datapath)
    binding = app.register.get(HOST)
    assert port == 2
    assert offer.dhcp.yiaddr == str(binding.address)
    assert offer.dhcp_message_type == ryu_dhcp.DHCP_OFFER


def test_ack_waits_for_group_commit(app):
    datapath = connect(app, 1)
    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    binding = app.register.get(HOST)
    datapath.take()

    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_REQUEST, mac=HOST,
        options=[(54, binding.gateway.packed),
                 (50, binding.address.packed)]))

    assert packet_outs(datapath) == []
    app.flush_register()
    [(port, ack)] = packet_outs(datapath)
    assert ack.dhcp_message_type == ryu_dhcp.DHCP_ACK
    assert app.register.pending_writes == 0


def test_arp_for_gateway_answered_with_gateway_mac(app):
    datapath = connect(app, 1)
    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    binding = app.register.get(HOST)
    datapath.take()

    packet_in(app, datapath, 2, arp_frame(1, str(binding.address),
                                          str(binding.gateway), mac=HOST))

    [(port, reply)] = packet_outs(datapath)
    assert port == 2
    assert reply.arp.src_mac == GATEWAY_MAC
    assert reply.arp.src_ip == str(binding.gateway)


def test_arp_probe_not_answered(app):
    datapath = connect(app, 1)
    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    binding = app.register.get(HOST)
    datapath.take()

    packet_in(app, datapath, 2, arp_frame(1, '0.0.0.0',
                                          str(binding.gateway), mac=HOST))

    assert packet_outs(datapath) == []


@pytest.mark.parametrize('source', [
    'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '00:00:00:00:00:00',
    GATEWAY_MAC])
def test_non_host_sources_are_not_registered(app, source):
    datapath = connect(app, 1)

    packet_in(app, datapath, 2, arp_frame(1, '10.1.0.6', '10.1.0.5',
                                          mac=source))

    assert len(app.register) == 0
    assert app.counters.get('malformed_frames', 0) + \
        app.counters.get('frames_from_non_host_sources', 0) == 1


def test_frame_from_switch_port_mac_is_not_a_host(app):
    datapath = connect(app, 1)
    port_mac = '0a:00:00:00:01:03'

    packet_in(app, datapath, 2, arp_frame(1, '10.1.0.6', '10.1.0.5',
                                          mac=port_mac))

    assert app.register.get(port_mac) is None


def test_frame_on_core_port_is_not_a_host(app):
    one = connect(app, 1)
    connect(app, 2)
    link(app, 1, 1, 2, 1)

    packet_in(app, one, 1, arp_frame(1, '10.1.0.6', '10.1.0.5', mac=HOST))

    assert app.register.get(HOST) is None


@pytest.mark.parametrize('data', [
    b'', b'\x00' * 5, b'\xff' * 13,
    bytes.fromhex('ffffffffffff020000000a010800') + b'\x45\x00',
    bytes.fromhex('ffffffffffff020000000a010806') + b'\x00\x01\x08',
])
def test_malformed_frames_are_counted_and_change_nothing(app, data):
    datapath = connect(app, 1)
    datapath.take()

    packet_in(app, datapath, 2, data)

    assert len(app.register) == 0
    assert datapath.sent == []
    assert app.counters.get('malformed_frames', 0) + \
        app.counters.get('frames_from_non_host_sources', 0) == 1


def test_packet_in_from_unknown_switch_is_dropped(app):
    stranger = FakeDatapath(9)

    packet_in(app, stranger, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))

    assert app.register.get(HOST) is None
    assert app.counters['packet_in_unknown_switch'] == 1


def _bundle_controls(datapath):
    return [(m.type, m.bundle_id) for m in
            datapath.of_type('OFPBundleCtrlMsg')]


def _answer_bundles(app, datapaths):
    """Reply to every bundle control and barrier message not yet answered.

    Messages stay in ``datapath.sent`` so that tests can inspect them.
    """
    for datapath in datapaths:
        answered = getattr(datapath, 'answered', set())
        datapath.answered = answered
        for message in datapath.sent:
            name = type(message).__name__
            if name in ('OFPBundleCtrlMsg', 'OFPBarrierRequest') and \
                    message.xid not in answered:
                answered.add(message.xid)
                app.tracker.on_reply(datapath.id, message.xid)


def _two_cells_with_host(app, version=ofproto_v1_4.OFP_VERSION):
    one = connect(app, 1, version=version)
    two = connect(app, 2, version=version)
    link(app, 1, 1, 2, 1)
    packet_in(app, one, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    one.take()
    two.take()
    return one, two


def _run_greenthreads(app, switches, rounds=20):
    for _ in range(rounds):
        hub.sleep(0)
        _answer_bundles(app, switches)


def record_commit_order(datapaths):
    """Return a list that fills with dpids as bundle commits are sent."""
    order = []
    for datapath in datapaths:
        original = datapath.send_msg

        def recording(message, datapath=datapath, original=original):
            if type(message).__name__ == 'OFPBundleCtrlMsg' and \
                    message.type == datapath.ofproto.OFPBCT_COMMIT_REQUEST:
                order.append(datapath.id)
            return original(message)
        datapath.send_msg = recording
    return order


def test_move_commits_bundles_new_cell_first(app):
    one, two = _two_cells_with_host(app)
    order = record_commit_order((one, two))

    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, (one, two))

    binding = app.register.get(HOST)
    assert (binding.dpid, binding.port) == (2, 3)
    assert binding.seq == 1
    assert order == [2, 1]
    assert app.coordinator.history()[-1]['status'] == 'committed'
    assert installed(app, 1) == app.desired_flows(1)
    assert installed(app, 2) == app.desired_flows(2)


def test_move_on_openflow13_uses_barriers(app):
    one, two = _two_cells_with_host(app, ofproto_v1_3.OFP_VERSION)

    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    sent = []
    for _ in range(20):
        hub.sleep(0)
        for datapath in (one, two):
            for message in datapath.take():
                sent.append((datapath.id, type(message).__name__))
                if type(message).__name__ == 'OFPBarrierRequest':
                    app.tracker.on_reply(datapath.id, message.xid)

    assert ('OFPBundleCtrlMsg' not in {name for _, name in sent})
    assert app.register.get(HOST).dpid == 2
    # Each switch's flow-mods come before its barrier.
    for dpid in (1, 2):
        names = [name for d, name in sent if d == dpid]
        last_barrier = len(names) - 1 - names[::-1].index('OFPBarrierRequest')
        assert 'OFPFlowMod' in names
        assert 'OFPFlowMod' not in names[last_barrier:]


def test_switch_error_aborts_move_and_keeps_binding(app):
    one, two = _two_cells_with_host(app)
    before = app.register.get(HOST)
    flows_before = installed(app, 2)

    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    for _ in range(10):
        hub.sleep(0)
    # The new cell's switch rejects the first flow-mod of its bundle.
    failing = [m for m in two.sent
               if type(m).__name__ == 'OFPBundleAddMsg'][0]
    app.tracker.on_error(2, failing.xid, 'error type 17 code 0')
    _run_greenthreads(app, (one, two))

    binding = app.register.get(HOST)
    assert (binding.dpid, binding.port) == (before.dpid, before.port)
    assert binding.seq == before.seq
    assert app.coordinator.history()[-1]['status'] == 'aborted'
    assert installed(app, 2) == flows_before
    discards = [m for m in one.sent + two.sent
                if type(m).__name__ == 'OFPBundleCtrlMsg' and
                m.type == one.ofproto.OFPBCT_DISCARD_REQUEST]
    assert discards


def test_release_removes_binding_and_host_flows(app):
    datapath = connect(app, 1)
    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    binding = app.register.get(HOST)
    datapath.take()

    packet_in(app, datapath, 2, dhcp_request_frame(
        DHCPRELEASE, mac=HOST, ciaddr=str(binding.address),
        dst_ip=str(binding.gateway), eth_dst=GATEWAY_MAC,
        options=[(54, binding.gateway.packed)]))

    assert app.register.get(HOST) is None
    cookie, mask = rules.host_cookie(HOST)
    assert not [f for f in installed(app, 1) if f.cookie & mask == cookie]
    deletes = [m for m in datapath.of_type('OFPFlowMod')
               if m.command == datapath.ofproto.OFPFC_DELETE_STRICT]
    assert deletes


def test_host_learned_on_later_core_port_is_released(app):
    one = connect(app, 1)
    connect(app, 2)
    packet_in(app, one, 1, arp_frame(1, '0.0.0.0', '10.1.0.1', mac=HOST))
    assert app.register.get(HOST) is not None

    link(app, 1, 1, 2, 1)

    assert app.register.get(HOST) is None
    assert len(app.register) == 0


def test_roaming_move_commits_new_then_home_then_old(app):
    switches = [connect(app, dpid) for dpid in (1, 2, 3, 4)]
    for cell in (1, 2, 3):
        link(app, cell, 1, 4, cell)
    first, second, third, _ = switches
    packet_in(app, first, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    packet_in(app, second, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, switches)
    assert app.register.get(HOST).dpid == 2
    order = record_commit_order(switches)

    packet_in(app, third, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    _run_greenthreads(app, switches)

    assert app.register.get(HOST).dpid == 3
    assert order[0] == 3
    assert order[-1] == 2
    assert 1 in order[1:-1]
    for datapath in switches:
        assert installed(app, datapath.id) == app.desired_flows(datapath.id)


def test_frames_during_move_are_held_then_sent_on(app):
    one, two = _two_cells_with_host(app)
    packet_in(app, two, 3, arp_frame(1, '10.1.0.2', '10.1.0.1', mac=HOST))
    data_frame = arp_frame(2, '10.1.0.2', '10.9.9.9', mac=HOST)

    for _ in range(3):
        packet_in(app, two, 3, data_frame)
    held = len(app.held_frames[HOST])
    _run_greenthreads(app, (one, two))

    assert held == 3
    assert HOST not in app.held_frames
    table = two.ofproto.OFPP_TABLE
    resent = [m for m in two.of_type('OFPPacketOut')
              if m.actions[0].port == table]
    assert len(resent) == 3
    assert all(m.data == data_frame for m in resent)


def _preload(app, count, dpid=1):
    """Register ``count`` hosts at switch ``dpid``, as a recovered file."""
    for index in range(count):
        mac = '02:00:00:01:%02x:%02x' % (index >> 8, index & 255)
        result = app.register.attach(mac, dpid, dpid, 100 + index % 50)
        app.state.place(result.binding)


def _connect_without_resync(app, dpid):
    datapath = FakeDatapath(dpid)
    app.switch_features_handler(event(datapath=datapath))
    ports = [types.SimpleNamespace(port_no=p, hw_addr='0a:00:00:00:%02x:%02x'
                                   % (dpid, p)) for p in (1, 2, 3)]
    app.port_desc_handler(event(datapath=datapath, body=ports))
    app.flow_stats_handler(event(datapath=datapath, body=[], flags=0))
    return datapath


def test_other_green_threads_run_during_large_resync(app, monkeypatch):
    monkeypatch.setattr(controller_module, 'SYNC_BATCH', 20)
    _preload(app, 200)
    ticks_while_busy = []

    def ticker():
        while True:
            ticks_while_busy.append(app.sync_busy())
            hub.sleep(0)

    thread = hub.spawn(ticker)
    _connect_without_resync(app, 1)
    finish_resyncs(app)
    hub.kill(thread)

    assert ticks_while_busy.count(True) > 50
    assert installed(app, 1) == app.desired_flows(1)
    assert len(installed(app, 1)) > 1000


def test_dhcp_answered_while_resync_runs(app, monkeypatch):
    monkeypatch.setattr(controller_module, 'SYNC_BATCH', 20)
    _preload(app, 200)
    datapath = _connect_without_resync(app, 1)
    for _ in range(5):
        hub.sleep(0)
    assert app.sync_busy()

    packet_in(app, datapath, 2, dhcp_request_frame(
        ryu_dhcp.DHCP_DISCOVER, mac=HOST))
    offers = [frame for port, frame in packet_outs(datapath) if port == 2]
    busy_after_offer = app.sync_busy()
    finish_resyncs(app)

    assert busy_after_offer
    assert offers[0].dhcp_message_type == ryu_dhcp.DHCP_OFFER
    cookie, mask = rules.host_cookie(HOST)
    assert [f for f in installed(app, 1) if f.cookie & mask == cookie]
    assert installed(app, 1) == app.desired_flows(1)


def test_host_released_during_resync_keeps_no_flows(app, monkeypatch):
    monkeypatch.setattr(controller_module, 'SYNC_BATCH', 20)
    _preload(app, 200)
    victim = app.register.get('02:00:00:01:00:c7')
    datapath = _connect_without_resync(app, 1)
    for _ in range(3):
        hub.sleep(0)

    app.sync_host(app.register.release(victim.mac) or victim, gone=True)
    finish_resyncs(app)

    cookie, mask = rules.host_cookie(victim.mac)
    sent = [m for m in datapath.of_type('OFPFlowMod')
            if m.cookie & mask == cookie and
            m.command == datapath.ofproto.OFPFC_ADD]
    assert not [f for f in installed(app, 1) if f.cookie & mask == cookie]
    assert sent == []


def test_link_to_unconnected_switch_does_not_raise(app):
    connect(app, 1)

    link(app, 1, 1, 2, 1)
    two = connect(app, 2)
    finish_resyncs(app)

    assert app.state.network().links == rules.core_link_pair(1, 1, 2, 1)
    assert installed(app, 1) == app.desired_flows(1)
    assert installed(app, 2) == app.desired_flows(2)
    assert two.of_type('OFPFlowMod')


def test_resync_leaves_moving_host_to_its_handover(app, monkeypatch):
    monkeypatch.setattr(controller_module, 'SYNC_BATCH', 20)
    monkeypatch.setattr(controller_module, 'HANDOVER_PRIORITY_SECONDS', 0)
    _preload(app, 200)
    mover = '02:00:00:01:00:05'
    cookie, mask = rules.host_cookie(mover)
    app.moving_to[mover] = (1, 105)
    datapath = _connect_without_resync(app, 1)
    for _ in range(300):
        hub.sleep(0)
    sent_while_moving = [m for m in datapath.of_type('OFPFlowMod')
                         if m.cookie & mask == cookie]

    del app.moving_to[mover]
    finish_resyncs(app)

    assert sent_while_moving == []
    assert [f for f in installed(app, 1) if f.cookie & mask == cookie]
    assert installed(app, 1) == app.desired_flows(1)

"""Hosts move between TMip cells and keep their address and sessions."""

import itertools
import time

import pytest

from emulation import (binding_of, emulation_factory,  # noqa: F401
                       handovers_of, ping, send_one_frame, tmip,
                       wait_binding_cell, wait_flows_settled, wait_ping)
import tmip_topo

pytestmark = pytest.mark.integration


def test_hosts_in_different_cells_ping_each_other(tmip):
    emulation, _controller = tmip(cells=3, hosts=1)
    hosts = [emulation.host(n) for n in (1, 2, 3)]

    for source, target in itertools.permutations(hosts, 2):
        assert ping(source, emulation.address(target), count=3,
                    timeout=2) >= 2, (source, target)


@pytest.mark.parametrize('prewired', [False, True], ids=['cable', 'radio'])
def test_tcp_session_survives_moves_a_b_c_a(tmip, prewired):
    emulation, controller = tmip(cells=3, hosts=1, prewired=prewired)
    roaming, peer = emulation.host(1), emulation.host(2)
    session = emulation.iperf(peer, roaming, 5201, duration=16)
    assert session.wait_progress(session.started_at)

    for cell in (2, 3, 1):
        moved_at = time.monotonic()
        emulation.move(roaming, cell)
        assert session.wait_progress(moved_at, timeout=8), cell
        wait_binding_cell(controller, roaming, cell)

    assert session.finish()
    committed = [record for record in handovers_of(controller, roaming)
                 if record['status'] == 'committed']
    assert [record['to']['cell'] for record in committed] == [2, 3, 1]


def test_two_quick_moves_converge_on_last_cell(tmip):
    emulation, controller = tmip(cells=3, hosts=1)
    roaming, peer = emulation.host(1), emulation.host(2)
    address = emulation.address(roaming)
    # The roaming host keeps sending, so each move is seen at once.
    pinger = roaming.popen(['ping', '-n', '-q', '-i', '0.02',
                            emulation.address(peer)])
    try:
        emulation.move(roaming, 2)
        emulation.move(roaming, 3)
        wait_binding_cell(controller, roaming, 3)
    finally:
        pinger.terminate()
        pinger.wait()

    assert ping(peer, address, count=3, timeout=2) >= 2
    switch, port = tmip_topo.attachment(roaming)
    assert switch is emulation.switch(3)
    assert binding_of(controller, roaming)['port'] == port
    wait_flows_settled(controller, emulation)


def test_silent_host_reachable_after_one_frame(tmip):
    emulation, controller = tmip(cells=2, hosts=1)
    silent, peer = emulation.host(1), emulation.host(2)
    address = emulation.address(silent)

    emulation.move(silent, 2, announce=False)
    unreachable = ping(peer, address, count=2, timeout=1)
    send_one_frame(silent)
    delay = wait_ping(peer, address, timeout=10)

    assert unreachable == 0
    assert delay is not None
    wait_binding_cell(controller, silent, 2, timeout=1)


def test_moves_leave_no_leftover_flows(tmip):
    emulation, controller = tmip(cells=3, hosts=1)
    roaming, peer = emulation.host(1), emulation.host(2)
    address = emulation.address(roaming)
    home_port = tmip_topo.attachment(roaming)[1]
    before = emulation.flow_tables()

    for cell in (2, 3, 1):
        emulation.move(roaming, cell)
        wait_binding_cell(controller, roaming, cell)
        assert ping(peer, address, count=2, timeout=2) >= 1, cell
        wait_flows_settled(controller, emulation)

    assert tmip_topo.attachment(roaming)[1] == home_port
    assert emulation.flow_tables() == before

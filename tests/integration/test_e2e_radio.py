"""Hosts wired to every cell move by link state, as a radio link would.

In these networks (``TmipTopo(prewired=True)``) no port is added or
deleted when a host moves: its link to the old cell goes down and the
link to the new cell comes up.  The TCP session across such moves is
tested with the others in ``test_e2e_mobility.py``.
"""

import subprocess
import time

import pytest

from emulation import (binding_of, emulation_factory,  # noqa: F401
                       ping, tmip, wait_binding_cell, wait_flows_settled)
from support.ovs import run
import tmip_topo

pytestmark = pytest.mark.integration


def link_state(switch, host):
    """Return OVS's link_state of the host's port on ``switch``."""
    name = '%s-eth%d' % (switch.name, tmip_topo.FIRST_HOST_PORT
                         + int(host.name.rsplit('h', 1)[1]) - 1)
    return run('ovs-vsctl', 'get', 'Interface', name, 'link_state').strip()


def test_radio_move_changes_link_state_only(tmip):
    emulation, controller = tmip(cells=3, hosts=1, prewired=True)
    roaming, peer = emulation.host(1), emulation.host(2)
    address = emulation.address(roaming)
    before = emulation.flow_tables()

    assert emulation.move(roaming, 3) == tmip_topo.FIRST_HOST_PORT
    wait_binding_cell(controller, roaming, 3)

    assert ping(peer, address, count=3, timeout=2) >= 2
    assert tmip_topo.attachment(roaming) == (emulation.switch(3),
                                             tmip_topo.FIRST_HOST_PORT)
    assert binding_of(controller, roaming)['port'] == \
        tmip_topo.FIRST_HOST_PORT
    states = {cell: link_state(emulation.switch(cell), roaming)
              for cell in (1, 2, 3)}
    assert states == {1: 'down', 2: 'down', 3: 'up'}

    emulation.move(roaming, 1)
    wait_binding_cell(controller, roaming, 1)
    wait_flows_settled(controller, emulation)
    assert emulation.flow_tables() == before


def test_radio_hub_sends_no_frames(tmip, tmp_path):
    # A frame of the hub's own (IPv6 neighbour discovery, spanning tree)
    # would reach the cell's switch and look like a new host there.
    emulation, controller = tmip(cells=2, hosts=1, prewired=True)
    roaming = emulation.host(1)
    port_name = '%s-eth%d' % (emulation.switch(2).name,
                              tmip_topo.FIRST_HOST_PORT)
    capture = tmp_path / 'arrived.txt'
    with open(capture, 'w') as output:
        tcpdump = subprocess.Popen(
            ['tcpdump', '-l', '-n', '-e', '-Q', 'in', '-i', port_name],
            stdout=output, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        emulation.move(roaming, 2, announce=False)
        time.sleep(3)
        # The host's own announcement shows that the capture works.
        tmip_topo.send_announcement(roaming)
        time.sleep(0.5)
    finally:
        tcpdump.terminate()
        tcpdump.wait()

    frames = [line for line in capture.read_text().splitlines() if line]
    assert [line for line in frames if roaming.MAC() not in line] == []
    assert any(roaming.MAC() in line for line in frames)

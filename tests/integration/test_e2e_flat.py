"""The emulation on its own: cells as plain learning switches, no TMip.

These tests prove what the TMip tests take for granted.  TCP crosses two
userspace bridges (checksum offload off), and the router forwards.
``move`` keeps a host's interface, MAC and address, and a TCP session
survives a move.  The generated config names the ports OVS assigned.
Hosts get static addresses on one flat 10.9.0.0/24 segment, and each DHCP
client is checked against a plain Kea server.
"""

import ast
import json
import os
import subprocess
import time

import pytest

from emulation import emulation_factory, ping  # noqa: F401 (fixture)
from support.processes import REPO
import tmip_topo
import tmip_traffic

pytestmark = pytest.mark.integration


def _flat(emulation_factory, hosts=1):
    emulation = emulation_factory(cells=3, hosts=hosts, standalone=True)
    for number in range(1, 3 * hosts + 1):
        host = emulation.host(number)
        host.cmd('ip addr add 10.9.0.%d/24 dev %s'
                 % (number, host.defaultIntf()))
    return emulation


def test_checksum_offload_is_off_on_every_node_interface(emulation_factory):
    emulation = _flat(emulation_factory)
    nodes = [emulation.host(n) for n in (1, 2, 3)]
    nodes += [emulation.ext, emulation.router]

    for node in nodes:
        for intf in node.intfNames():
            if intf == 'lo':
                continue
            features = node.cmd('ethtool -k %s' % intf)
            assert 'tx-checksumming: off' in features, (node, intf)
            assert 'rx-checksumming: off' in features, (node, intf)


def test_mobile_host_has_no_address_and_no_ipv6(emulation_factory):
    emulation = emulation_factory(cells=1, hosts=1, standalone=True)
    host = emulation.host(1)

    assert 'inet ' not in host.cmd('ip -4 addr show dev %s'
                                   % host.defaultIntf())
    assert 'inet6' not in host.cmd('ip -6 addr show')


def test_tcp_crosses_two_bridges(emulation_factory):
    emulation = _flat(emulation_factory)
    session = emulation.iperf(emulation.host(1), emulation.host(2), 5201,
                              bitrate='0', duration=3)

    assert session.finish()
    total = sum(size for _start, _end, size in session.intervals())
    assert total > 1_000_000


def test_router_forwards_between_ext_and_cell(emulation_factory):
    emulation = _flat(emulation_factory)
    host = emulation.host(1)
    # Stand in for the controller's uplink address of cell 1.
    host.cmd('ip addr add 172.16.1.1/30 dev %s' % host.defaultIntf())
    host.cmd('ip route replace default via 172.16.1.2')
    host.cmd('ip addr add 10.1.0.2/32 dev %s' % host.defaultIntf())

    assert ping(emulation.ext, '10.1.0.2', count=3, timeout=2) == 3


def test_move_keeps_interface_mac_and_address(emulation_factory):
    emulation = _flat(emulation_factory)
    host = emulation.host(1)
    intf = host.defaultIntf()
    mac_before = host.cmd('cat /sys/class/net/%s/address' % intf).strip()

    port = emulation.move(host, 3)

    assert tmip_topo.switch_of(host) is emulation.switch(3)
    assert host.defaultIntf() is intf
    assert host.cmd('cat /sys/class/net/%s/address' % intf).strip() == \
        mac_before
    assert '10.9.0.1/24' in host.cmd('ip -4 addr show dev %s' % intf)
    switch_intf = emulation.switch(3).intfs[port]
    ports_s1 = subprocess.run(['ovs-vsctl', 'list-ports',
                               emulation.switch(1).name],
                              capture_output=True, text=True).stdout
    ports_s3 = subprocess.run(['ovs-vsctl', 'list-ports',
                               emulation.switch(3).name],
                              capture_output=True, text=True).stdout
    assert switch_intf.name in ports_s3.split()
    assert switch_intf.name not in ports_s1.split()
    assert tmip_topo.openflow_port(switch_intf) == port
    assert ping(emulation.host(2), '10.9.0.1', count=10, timeout=1) >= 1


def test_announcement_leaves_arp_cache_alone(emulation_factory, tmp_path):
    emulation = _flat(emulation_factory)
    host, peer = emulation.host(1), emulation.host(2)
    assert ping(host, '10.9.0.2', count=1, timeout=2) == 1
    switch_port = '%s-eth3' % emulation.switch(1).name
    capture = tmp_path / 'announcement.txt'
    with open(capture, 'w') as output:
        tcpdump = subprocess.Popen(
            ['tcpdump', '-l', '-n', '-e', '-Q', 'in', '-i', switch_port,
             'arp'], stdout=output, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        sent = tmip_topo.send_announcement(host)
        time.sleep(0.5)
    finally:
        tcpdump.terminate()
        tcpdump.wait()

    assert sent
    assert 'Request who-has 10.9.0.1 tell 10.9.0.1' in capture.read_text()
    assert peer.MAC() in host.cmd('ip neigh show 10.9.0.2')


def test_announcement_needs_an_address(emulation_factory):
    emulation = emulation_factory(cells=2, hosts=1, standalone=True)

    assert not tmip_topo.send_announcement(emulation.host(1))


def test_tcp_session_survives_moves_in_flat_network(emulation_factory):
    emulation = _flat(emulation_factory)
    roaming = emulation.host(1)
    session = emulation.iperf(emulation.host(2), roaming, 5202, duration=8)
    assert session.wait_progress(session.started_at)

    for cell in (2, 3, 1):
        moved_at = time.monotonic()
        emulation.move(roaming, cell)
        # Learning switches find the host again from its next frames; OVS
        # may keep forwarding by the old MAC entry until it revalidates its
        # datapath flows (about half a second, measured here).
        assert ping(roaming, '10.9.0.2', count=10, timeout=1) >= 1
        assert session.wait_progress(moved_at, timeout=5), cell

    assert session.finish()


def _start_kea(server, run_dir):
    """Run kea-dhcp4 in ``server`` for 10.9.0.0/24; return its handle."""
    intf = server.defaultIntf().name
    server.cmd('ip addr add 10.9.0.1/24 dev %s' % intf)
    config = {'Dhcp4': {
        'interfaces-config': {'interfaces': [intf]},
        'lease-database': {'type': 'memfile', 'persist': False},
        'valid-lifetime': 120, 'renew-timer': 60, 'rebind-timer': 100,
        'subnet4': [{'id': 1, 'subnet': '10.9.0.0/24',
                     'pools': [{'pool': '10.9.0.50 - 10.9.0.60'}],
                     'option-data': [{'name': 'routers',
                                      'data': '10.9.0.1'}]}],
        'loggers': [{'name': 'kea-dhcp4', 'severity': 'INFO',
                     'output_options': [{'output': os.path.join(
                         run_dir, 'kea.log')}]}]}}
    config_path = os.path.join(run_dir, 'kea.json')
    with open(config_path, 'w') as config_file:
        json.dump(config, config_file)
    env = dict(os.environ, KEA_PIDFILE_DIR=run_dir, KEA_LOCKFILE_DIR=run_dir)
    with open(os.path.join(run_dir, 'kea.out'), 'wb') as log:
        process = server.popen(['kea-dhcp4', '-c', config_path], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    tmip_traffic.wait_listening(server, 'udp', 67)
    return process


@pytest.mark.parametrize('client', ['dhclient', 'udhcpc', 'dhcpcd'])
def test_dhcp_client_leases_and_renews_from_plain_server(
        emulation_factory, tmp_path, client):
    # The client plumbing on its own: a Kea server on the same segment.
    emulation = emulation_factory(cells=1, hosts=2, standalone=True,
                                  dhcp_client=client)
    kea = _start_kea(emulation.host(2), str(tmp_path))
    try:
        host = emulation.host(1)
        dhcp = host.start_dhcp(str(tmp_path))
        state = dhcp.wait_bound(timeout=40)
        renewed_at = time.time()
        dhcp.renew()
        renewed = dhcp.wait_bound(timeout=40, since=renewed_at)
    finally:
        kea.terminate()
        kea.wait()

    assert str(state['interface']) == '10.9.0.50/24'
    assert str(state['router']) == '10.9.0.1'
    assert str(state['broadcast']) == '10.9.0.255'
    assert renewed['interface'] == state['interface']
    assert dhcp.pid() is not None
    dhcp.stop()
    assert dhcp.pid() is None


def test_config_names_the_uplink_ports_ovs_assigned(emulation_factory):
    from tmip_ryu.config import parse_uplink

    emulation = emulation_factory(cells=3, hosts=1, standalone=True)
    text = emulation.config(state_file='/nonexistent/state.sqlite')

    lines = dict(line.split(' = ', 1) for line in text.splitlines()
                 if ' = ' in line)
    uplinks = [parse_uplink(entry) for entry in lines['uplinks'].split(',')]
    assert [u.dpid for u in uplinks] == [1, 2, 3]
    for uplink in uplinks:
        switch = emulation.switch(uplink.dpid)
        router_side = [intf for intf in switch.intfList()
                       if intf.link and emulation.router in
                       (intf.link.intf1.node, intf.link.intf2.node)]
        assert tmip_topo.openflow_port(router_side[0]) == uplink.port
        assert str(uplink.interface) == '172.16.%d.1/30' % uplink.dpid
        assert str(uplink.next_hop) == '172.16.%d.2' % uplink.dpid
    assert text.startswith('[tmip]\n')
    assert lines['route_optimisation'] == 'true'
    assert lines['reverse_tunnelling'] == 'false'
    assert lines['state_file'] == '/nonexistent/state.sqlite'


# Loads the file as Debian's ``mn --custom`` does (exec, no __file__) in
# Debian's Python, builds ``--topo tmip,2,...`` and stops it.  ``mn``
# itself is not run: on any error it calls Mininet's cleanup, which kills
# every ryu-manager on the machine.
_MN_CUSTOM_CHECK = r'''
import sys
from mininet.net import Mininet
from mininet.util import buildTopo
customs = {}
path = sys.argv[1]
exec(compile(open(path).read(), path, 'exec'), customs, customs)
topo = buildTopo(customs['topos'], 'tmip,2,prefix=%s' % sys.argv[2])
clashes = customs['existing_names'](topo)
assert not clashes, clashes
assert customs['CLI'].__name__ == 'TmipCLI'
assert hasattr(customs['CLI'], 'do_move')
net = Mininet(topo=topo, controller=None)
net.start()
try:
    print(sorted(node for node in net))
finally:
    net.stop()
'''


def test_topology_loads_as_mn_custom_file():
    prefix = 'm%02d' % (os.getpid() % 100)
    path = os.path.join(REPO, 'mininet', 'tmip_topo.py')

    result = subprocess.run(['/usr/bin/python3', '-c', _MN_CUSTOM_CHECK,
                             path, prefix], capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 0, result.stderr
    names = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    expected = [prefix + name for name in
                ('ext', 'h1', 'h2', 'r0', 's1', 's2', 's254')]
    assert names == expected

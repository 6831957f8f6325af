"""Ports the tests and benchmarks give ryu-manager to listen on."""

import socket

from support.processes import tmip_topo


def _ephemeral_start():
    with open('/proc/sys/net/ipv4/ip_local_port_range') as ports:
        return int(ports.read().split()[0])


def test_ports_below_ephemeral_range():
    ports = [tmip_topo.listen_port() for _ in range(50)]
    assert all(1024 <= port < _ephemeral_start() for port in ports)


def test_ports_never_repeat():
    ports = [tmip_topo.listen_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_port_binds_on_every_address():
    port = tmip_topo.listen_port()
    with socket.socket() as server:
        server.bind(('0.0.0.0', port))


def test_listening_needs_listen_state():
    port = tmip_topo.listen_port('127.0.0.1')
    with socket.socket() as server:
        server.bind(('127.0.0.1', port))
        assert not tmip_topo.listening(port)
        server.listen()
        assert tmip_topo.listening(port)
    assert not tmip_topo.listening(port)


def test_listening_sees_ipv6_sockets():
    port = tmip_topo.listen_port('::1')
    with socket.socket(socket.AF_INET6) as server:
        server.bind(('::1', port))
        server.listen()
        assert tmip_topo.listening(port)

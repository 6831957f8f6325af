"""Frame builders and a binding stand-in shared by the responder tests.

The builders make the frames a DHCP client, a host's ARP stack or ping
send, with ``ryu.lib.packet``.  The tests in this module check that each
builder's frame parses back to what it was built from.
"""

import ipaddress
import time
from dataclasses import dataclass, field

from ryu.lib.packet import arp, dhcp, ethernet, icmp, ipv4, packet, udp
from ryu.lib.packet import vlan

from tmip_ryu.packets import parse_frame

HOST_MAC = '02:00:00:00:0a:01'
OTHER_MAC = '02:00:00:00:0b:02'
GATEWAY_MAC = '02:00:00:00:00:01'
BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'
HOST_NETWORK = '10.1.0.4/30'      # gateway 10.1.0.5, host 10.1.0.6
START = 1_700_000_000.0


@dataclass
class StandInBinding:
    """The attributes of a register binding that the responders read."""

    mac: str = HOST_MAC
    network: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network(HOST_NETWORK))
    home_cell: int = 1
    cell: int = 1
    dpid: int = 1
    port: int = 1
    lease_start: float = START
    lease_time: int = 3600
    client_id: bytes | None = None
    seq: int = 0
    state: str = 'attached'

    @property
    def gateway(self):
        return self.network.network_address + 1

    @property
    def address(self):
        return self.network.network_address + 2

    @property
    def broadcast(self):
        return self.network.broadcast_address

    @property
    def netmask(self):
        return self.network.netmask


class FakeClock:
    """A clock that stays where the test puts it."""

    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now


def serialize(*protocols):
    """Serialise ryu protocol headers into frame bytes."""
    frame = packet.Packet()
    for protocol in protocols:
        frame.add_protocol(protocol)
    frame.serialize()
    return bytes(frame.data)


def dhcp_request_frame(message_type, *, mac=HOST_MAC, xid=0x3903f326,
                       flags=0, ciaddr='0.0.0.0', options=(),
                       src_ip=None, dst_ip='255.255.255.255',
                       eth_dst=BROADCAST_MAC, chaddr=None, vlans=()):
    """Build a client's DHCP message as an Ethernet frame.

    ``options`` are (code, value) pairs after option 53; ``src_ip``
    defaults to ciaddr, as clients send it.
    """
    option_list = [dhcp.option(53, bytes([message_type]), 1)]
    option_list += [dhcp.option(code, value, len(value))
                    for code, value in options]
    message = dhcp.dhcp(dhcp.DHCP_BOOT_REQUEST, chaddr or mac,
                        options=dhcp.options(option_list=option_list),
                        xid=xid, flags=flags, ciaddr=ciaddr)
    headers = [ethernet.ethernet(dst=eth_dst, src=mac,
                                 ethertype=0x8100 if vlans else 0x0800)]
    headers += vlans
    headers += [ipv4.ipv4(src=src_ip or ciaddr, dst=dst_ip, proto=17),
                udp.udp(68, 67), message]
    return serialize(*headers)


def arp_frame(opcode, src_ip, dst_ip, *, mac=HOST_MAC, arp_mac=None,
              eth_dst=BROADCAST_MAC, dst_mac='00:00:00:00:00:00'):
    """Build an ARP request or reply from ``mac``."""
    return serialize(
        ethernet.ethernet(dst=eth_dst, src=mac, ethertype=0x0806),
        arp.arp_ip(opcode, arp_mac or mac, src_ip, dst_mac, dst_ip))


def echo_request_frame(src_ip, dst_ip, *, mac=HOST_MAC,
                       eth_dst=GATEWAY_MAC, ident=0x1d2c, seq=7,
                       payload=bytes(range(56)), ttl=64, vlans=()):
    """Build an ICMP echo request, as ping sends it."""
    headers = [ethernet.ethernet(dst=eth_dst, src=mac,
                                 ethertype=0x8100 if vlans else 0x0800)]
    headers += vlans
    headers += [ipv4.ipv4(src=src_ip, dst=dst_ip, proto=1, ttl=ttl),
                icmp.icmp(icmp.ICMP_ECHO_REQUEST, 0, 0,
                          icmp.echo(ident, seq, payload))]
    return serialize(*headers)


def test_dhcp_builder_round_trips():
    frame = parse_frame(dhcp_request_frame(
        3, options=[(50, bytes([10, 1, 0, 6])), (55, b'\x01\x03')]))

    assert frame.error is None
    assert frame.dhcp_message_type == 3
    assert frame.dhcp.chaddr == HOST_MAC
    assert frame.dhcp_options[50] == bytes([10, 1, 0, 6])
    assert frame.dhcp_options[55] == b'\x01\x03'
    assert frame.udp.dst_port == 67


def test_dhcp_builder_with_vlan_round_trips():
    frame = parse_frame(dhcp_request_frame(
        1, vlans=[vlan.vlan(pcp=3, vid=42, ethertype=0x0800)]))

    assert frame.error is None
    assert frame.ethertype == 0x0800
    assert frame.vlans[0].vid == 42
    assert frame.vlans[0].pcp == 3
    assert frame.dhcp_message_type == 1


def test_arp_builder_round_trips():
    frame = parse_frame(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5'))

    assert frame.error is None
    assert frame.arp.opcode == arp.ARP_REQUEST
    assert frame.arp.src_mac == HOST_MAC
    assert frame.arp.src_ip == '10.1.0.6'
    assert frame.arp.dst_ip == '10.1.0.5'


def test_echo_builder_round_trips():
    frame = parse_frame(echo_request_frame('10.1.0.6', '10.1.0.5'))

    assert frame.error is None
    assert frame.icmp.type == icmp.ICMP_ECHO_REQUEST
    assert frame.icmp.data.id == 0x1d2c
    assert frame.icmp.data.seq == 7
    assert frame.icmp.data.data == bytes(range(56))


def test_stand_in_binding_has_tmip_layout():
    binding = StandInBinding()

    assert str(binding.gateway) == '10.1.0.5'
    assert str(binding.address) == '10.1.0.6'
    assert str(binding.broadcast) == '10.1.0.7'
    assert str(binding.netmask) == '255.255.255.252'
    assert time.time() > binding.lease_start

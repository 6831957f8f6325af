"""DhcpServer against frames captured from real DHCP clients.

The frames were captured on a veth from ISC dhclient 4.4.3-P1 and BusyBox
udhcpc 1.35.0 (Debian 12) talking to this server for a host with MAC
02:00:00:00:0a:01 and the /30 10.1.0.4/30.  Each frame is written as the
bytes up to chaddr, the options area, and its total length: every other
byte of these frames was zero.
"""

import pytest

from test_packets_frames import (
    BROADCAST_MAC, GATEWAY_MAC, HOST_MAC, START, FakeClock, StandInBinding)
from tmip_ryu.dhcp_server import DHCPACK, DHCPNAK, DHCPOFFER, DhcpServer
from tmip_ryu.packets import parse_frame

# Ethernet, IPv4 and UDP headers, then BOOTP up to the end of chaddr.
HEADER_LEN = 14 + 20 + 8 + 34
OPTIONS_OFFSET = 14 + 20 + 8 + 236


def captured_dhcp_frame(header, options, length):
    """Rebuild a captured frame from its non-zero parts."""
    header, options = bytes.fromhex(header), bytes.fromhex(options)
    assert len(header) == HEADER_LEN
    frame = (header + bytes(OPTIONS_OFFSET - HEADER_LEN) + options)
    return frame + bytes(length - len(frame))


# dhclient: DHCPDISCOVER.
DHCLIENT_DISCOVER = captured_dhcp_frame(
    'ffffffffffff020000000a01080045100148000000008011399600000000ffff'
    'ffff004400430134259901010600be86c3420000000000000000000000000000'
    '000000000000020000000a01',
    options='638253633501010c02766d370d011c02030f06770c2c2f1a792aff',
    length=342)

# dhclient: DHCPREQUEST in SELECTING state.
DHCLIENT_SELECTING = captured_dhcp_frame(
    'ffffffffffff020000000a01080045100148000000008011399600000000ffff'
    'ffff0044004301340e1d01010600be86c3420000000000000000000000000000'
    '000000000000020000000a01',
    options='6382536335010336040a01000532040a0100060c02766d370d011c02030f0677'
            '0c2c2f1a792aff',
    length=342)

# dhclient: DHCPREQUEST in RENEWING state, unicast through its UDP socket with
# transmit checksum offload on, so the UDP checksum is partial.
DHCLIENT_RENEWING = captured_dhcp_frame(
    '020000000001020000000a01080045000148804440004011a5540a0100060a01'
    '0005004400430134155201010600be86c342000000000a010006000000000000'
    '000000000000020000000a01',
    options='638253633501030c02766d370d011c02030f06770c2c2f1a792aff',
    length=342)

# dhclient -r: DHCPRELEASE, unicast.
DHCLIENT_RELEASE = captured_dhcp_frame(
    '020000000001020000000a01080045000148891d400040119c7b0a0100060a01'
    '0005004400430134155201010600ec7df560000000000a010006000000000000'
    '000000000000020000000a01',
    options='6382536335010736040a0100050c02766dff',
    length=342)

# dhclient restarted with its lease: DHCPREQUEST in INIT-REBOOT state.
DHCLIENT_INIT_REBOOT = captured_dhcp_frame(
    'ffffffffffff020000000a01080045100148000000008011399600000000ffff'
    'ffff0044004301340d190101060074e718260000000000000000000000000000'
    '000000000000020000000a01',
    options='6382536335010332040a0100060c02766d370d011c02030f06770c2c2f1a792a'
            'ff',
    length=342)

# dhclient restarted with a lease of 10.9.0.6 from another network.
DHCLIENT_FOREIGN_INIT_REBOOT = captured_dhcp_frame(
    'ffffffffffff020000000a01080045100148000000008011399600000000ffff'
    'ffff0044004301340db301010600f14a93280000000000000000000000000000'
    '000000000000020000000a01',
    options='6382536335010332040a0900060c02766d370d011c02030f06770c2c2f1a792a'
            'ff',
    length=342)

# udhcpc -x hostname:h1 -O 6: DHCPDISCOVER with client identifier,
# maximum message size, vendor class and parameter request list.
UDHCPC_DISCOVER = captured_dhcp_frame(
    'ffffffffffff020000000a0108004500014800000000401179a600000000ffff'
    'ffff004400430134874901010600f73539170000000000000000000000000000'
    '000000000000020000000a01',
    options='638253633501013902024037070103060c0f1c2a0c0268313c0c756468637020'
            '312e33352e303d0701020000000a01ff',
    length=342)

# udhcpc: DHCPREQUEST in SELECTING state.
UDHCPC_SELECTING = captured_dhcp_frame(
    'ffffffffffff020000000a0108004500014800000000401179a600000000ffff'
    'ffff0044004301346fcd01010600f73539170000000000000000000000000000'
    '000000000000020000000a01',
    options='6382536335010332040a01000636040a0100053902024037070103060c0f1c2a'
            '0c0268313c0c756468637020312e33352e303d0701020000000a01ff',
    length=342)

# udhcpc: DHCPREQUEST in RENEWING state (partial UDP checksum).
UDHCPC_RENEWING = captured_dhcp_frame(
    '020000000001020000000a01080045000148610040004011c4980a0100060a01'
    '0005004400430134155201010600f7353917000000000a010006000000000000'
    '000000000000020000000a01',
    options='638253633501033902024037070103060c0f1c2a0c0268313c0c756468637020'
            '312e33352e303d0701020000000a01ff',
    length=342)

LEASE = 600


@pytest.fixture
def server():
    return DhcpServer(GATEWAY_MAC, LEASE, clock=FakeClock(START + 10),
                      extra_options={6: bytes([10, 0, 0, 53])})


@pytest.fixture
def binding():
    return StandInBinding()


def decide(server, binding, data):
    return server.handle(parse_frame(data), binding)


def reply_of(decision):
    frame = parse_frame(decision.reply)
    assert frame.error is None
    return frame


@pytest.mark.parametrize('data', [
    DHCLIENT_DISCOVER, DHCLIENT_SELECTING, DHCLIENT_RENEWING,
    DHCLIENT_RELEASE, DHCLIENT_INIT_REBOOT, DHCLIENT_FOREIGN_INIT_REBOOT,
    UDHCPC_DISCOVER, UDHCPC_SELECTING, UDHCPC_RENEWING,
])
def test_captured_frame_parses_cleanly(data):
    frame = parse_frame(data)

    assert frame.error is None
    assert frame.dhcp.chaddr == HOST_MAC
    assert frame.dhcp_message_type is not None


def test_unicast_renewals_have_partial_checksum():
    assert parse_frame(DHCLIENT_RENEWING).partial_checksum is True
    assert parse_frame(UDHCPC_RENEWING).partial_checksum is True
    assert parse_frame(DHCLIENT_DISCOVER).partial_checksum is False


def test_dhclient_discover_gets_unicast_offer(server, binding):
    decision = decide(server, binding, DHCLIENT_DISCOVER)
    reply = reply_of(decision)

    assert decision.action == 'offer'
    assert reply.dhcp_message_type == DHCPOFFER
    assert reply.dhcp.xid == 0xbe86c342
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.dhcp_options[6] == bytes([10, 0, 0, 53])


def test_dhclient_selecting_gets_ack(server, binding):
    decision = decide(server, binding, DHCLIENT_SELECTING)
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert decision.renew is True
    assert decision.client_id is None
    assert reply.dhcp_message_type == DHCPACK
    assert reply.dhcp.xid == 0xbe86c342
    assert reply.dhcp_options[51] == LEASE.to_bytes(4, 'big')


def test_dhclient_renewing_gets_unicast_ack(server, binding):
    decision = decide(server, binding, DHCLIENT_RENEWING)
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert 'RENEWING' in decision.reason
    assert reply.dhcp.ciaddr == '10.1.0.6'
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC


def test_dhclient_release_releases(server, binding):
    decision = decide(server, binding, DHCLIENT_RELEASE)

    assert decision.action == 'release'
    assert decision.reply is None


def test_dhclient_init_reboot_gets_ack(server, binding):
    decision = decide(server, binding, DHCLIENT_INIT_REBOOT)

    assert decision.action == 'ack'
    assert 'INIT-REBOOT' in decision.reason
    assert reply_of(decision).dhcp.yiaddr == '10.1.0.6'


def test_dhclient_foreign_lease_gets_broadcast_nak(server, binding):
    decision = decide(server, binding, DHCLIENT_FOREIGN_INIT_REBOOT)
    reply = reply_of(decision)

    assert decision.action == 'nak'
    assert reply.dhcp_message_type == DHCPNAK
    assert reply.eth.dst == BROADCAST_MAC
    assert reply.ipv4.dst == '255.255.255.255'


def test_udhcpc_discover_gets_client_id_echoed(server, binding):
    decision = decide(server, binding, UDHCPC_DISCOVER)
    options = reply_of(decision).dhcp_options

    assert decision.action == 'offer'
    assert decision.client_id == b'\x01\x02\x00\x00\x00\x0a\x01'
    assert options[61] == b'\x01\x02\x00\x00\x00\x0a\x01'
    assert options[6] == bytes([10, 0, 0, 53])


def test_udhcpc_selecting_gets_ack(server, binding):
    decision = decide(server, binding, UDHCPC_SELECTING)

    assert decision.action == 'ack'
    assert decision.client_id == b'\x01\x02\x00\x00\x00\x0a\x01'
    assert reply_of(decision).dhcp.yiaddr == '10.1.0.6'


def test_udhcpc_renewing_gets_unicast_ack(server, binding):
    decision = decide(server, binding, UDHCPC_RENEWING)
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC

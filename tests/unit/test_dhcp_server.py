"""DhcpServer: the reply to each client message in each client state."""

import ipaddress

import pytest
from ryu.lib.packet import arp, vlan

from test_packets_frames import (
    BROADCAST_MAC, GATEWAY_MAC, HOST_MAC, OTHER_MAC, START, FakeClock,
    StandInBinding, arp_frame, dhcp_request_frame)
from tmip_ryu.dhcp_server import (
    DHCPACK, DHCPDECLINE, DHCPDISCOVER, DHCPINFORM, DHCPNAK, DHCPOFFER,
    DHCPRELEASE, DHCPREQUEST, DhcpServer)
from tmip_ryu.packets import parse_frame

LEASE = 3600
GATEWAY = bytes([10, 1, 0, 5])
ADDRESS = bytes([10, 1, 0, 6])
FOREIGN_ADDRESS = bytes([10, 9, 0, 6])
OTHER_SERVER = bytes([10, 9, 0, 5])
CLIENT_ID = b'\x01\x02\x00\x00\x00\x0a\x01'


def seconds(value):
    return value.to_bytes(4, 'big')


@pytest.fixture
def clock():
    return FakeClock(START + 100)


@pytest.fixture
def server(clock):
    return DhcpServer(GATEWAY_MAC, LEASE, clock=clock)


@pytest.fixture
def binding():
    return StandInBinding()


def handle(server, binding, message_type, **fields):
    """Run one client message through the server."""
    return server.handle(parse_frame(dhcp_request_frame(message_type,
                                                        **fields)), binding)


def reply_of(decision):
    """Parse the reply frame of a decision, checking it is well-formed."""
    frame = parse_frame(decision.reply)
    assert frame.error is None
    assert frame.dhcp.op == 2
    return frame


def assert_sent_by_gateway(reply):
    assert reply.eth.src == GATEWAY_MAC
    assert reply.ipv4.src == '10.1.0.5'
    assert reply.ipv4.ttl == 64
    assert reply.udp.src_port == 67
    assert reply.udp.dst_port == 68


def selecting(server_id=GATEWAY, requested=ADDRESS, **fields):
    return dict(options=[(54, server_id), (50, requested)], **fields)


# DHCPDISCOVER -> DHCPOFFER (RFC 2131 4.3.1).

def test_discover_offers_binding_address(server, binding):
    decision = handle(server, binding, DHCPDISCOVER, xid=0xdeadbeef)
    reply = reply_of(decision)

    assert decision.action == 'offer'
    assert decision.renew is False
    assert reply.dhcp_message_type == DHCPOFFER
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.dhcp.ciaddr == '0.0.0.0'
    assert reply.dhcp.siaddr == '0.0.0.0'
    assert reply.dhcp.xid == 0xdeadbeef
    assert reply.dhcp.chaddr == HOST_MAC
    assert_sent_by_gateway(reply)


def test_discover_offer_options(server, binding):
    reply = reply_of(handle(server, binding, DHCPDISCOVER))
    options = reply.dhcp_options

    assert options[53] == bytes([DHCPOFFER])
    assert options[54] == GATEWAY
    assert options[1] == bytes([255, 255, 255, 252])
    assert options[3] == GATEWAY
    assert options[28] == bytes([10, 1, 0, 7])
    assert 61 not in options
    assert list(options)[0] == 53


def test_offer_carries_remaining_lease(server, binding):
    decision = handle(server, binding, DHCPDISCOVER)
    options = reply_of(decision).dhcp_options

    assert decision.lease_time == LEASE - 100
    assert options[51] == seconds(3500)
    assert options[58] == seconds(1750)
    assert options[59] == seconds(3062)


def test_offer_after_lease_ran_out_is_full(server, binding, clock):
    clock.now = START + LEASE + 5

    decision = handle(server, binding, DHCPDISCOVER)

    assert decision.lease_time == LEASE
    assert reply_of(decision).dhcp_options[51] == seconds(LEASE)


def test_offer_unicast_without_broadcast_flag(server, binding):
    reply = reply_of(handle(server, binding, DHCPDISCOVER, flags=0))

    assert reply.eth.dst == HOST_MAC
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.dhcp.flags == 0


def test_offer_broadcast_with_broadcast_flag(server, binding):
    reply = reply_of(handle(server, binding, DHCPDISCOVER, flags=0x8000))

    assert reply.eth.dst == BROADCAST_MAC
    assert reply.ipv4.dst == '255.255.255.255'
    assert reply.dhcp.flags == 0x8000


def test_offer_echoes_client_identifier(server, binding):
    decision = handle(server, binding, DHCPDISCOVER,
                      options=[(61, CLIENT_ID)])

    assert decision.client_id == CLIENT_ID
    assert reply_of(decision).dhcp_options[61] == CLIENT_ID


def test_long_client_identifier_split_and_echoed(server, binding):
    client_id = bytes(range(256)) + b'tail'
    frame = parse_frame(dhcp_request_frame(DHCPDISCOVER,
                                           options=[(61, client_id[:255]),
                                                    (61, client_id[255:])]))

    decision = server.handle(frame, binding)

    assert decision.client_id == client_id
    assert reply_of(decision).dhcp_options[61] == client_id


def test_reply_padded_to_bootp_minimum(server, binding):
    reply = reply_of(handle(server, binding, DHCPDISCOVER))

    assert reply.udp.total_length - 8 >= 300


def test_reply_keeps_vlan_tag(server, binding):
    decision = handle(server, binding, DHCPDISCOVER,
                      vlans=[vlan.vlan(pcp=2, vid=42, ethertype=0x0800)])
    reply = reply_of(decision)

    assert [tag.vid for tag in reply.vlans] == [42]
    assert reply.vlans[0].pcp == 2
    assert reply.dhcp_message_type == DHCPOFFER


# DHCPREQUEST in SELECTING state (RFC 2131 4.3.2).

def test_selecting_request_acked_with_renewal(server, binding):
    decision = handle(server, binding, DHCPREQUEST, **selecting())
    reply = reply_of(decision)
    options = reply.dhcp_options

    assert decision.action == 'ack'
    assert decision.renew is True
    assert decision.lease_time == LEASE
    assert 'SELECTING' in decision.reason
    assert reply.dhcp_message_type == DHCPACK
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.dhcp.ciaddr == '0.0.0.0'
    assert options[54] == GATEWAY
    assert options[51] == seconds(LEASE)
    assert options[58] == seconds(LEASE // 2)
    assert options[59] == seconds(LEASE * 7 // 8)
    assert options[1] == bytes([255, 255, 255, 252])
    assert options[3] == GATEWAY
    assert options[28] == bytes([10, 1, 0, 7])
    assert reply.eth.dst == HOST_MAC
    assert reply.ipv4.dst == '10.1.0.6'
    assert_sent_by_gateway(reply)


def test_selecting_other_server_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      **selecting(server_id=OTHER_SERVER))

    assert decision.action == 'ignore'
    assert decision.reply is None
    assert decision.renew is False
    assert '10.9.0.5' in decision.reason


def test_selecting_wrong_address_is_naked(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      **selecting(requested=FOREIGN_ADDRESS))

    assert decision.action == 'nak'
    assert reply_of(decision).dhcp_message_type == DHCPNAK


def test_selecting_without_requested_address_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST, options=[(54, GATEWAY)])

    assert decision.action == 'ignore'
    assert 'option 50' in decision.reason


def test_server_id_of_wrong_length_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      **selecting(server_id=b'\x0a\x01\x00'))

    assert decision.action == 'ignore'
    assert 'option 54 has length 3' in decision.reason


# DHCPREQUEST in INIT-REBOOT state.

def test_init_reboot_own_address_acked(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      options=[(50, ADDRESS)])
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert decision.renew is True
    assert 'INIT-REBOOT' in decision.reason
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.dhcp_options[51] == seconds(LEASE)


def test_init_reboot_in_foreign_cell_keeps_home_address(server):
    roaming = StandInBinding(home_cell=1, cell=3, dpid=3, port=2,
                             state='roaming')

    decision = handle(server, roaming, DHCPREQUEST, options=[(50, ADDRESS)])
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.dhcp_options[54] == GATEWAY
    assert reply.dhcp_options[3] == GATEWAY


def test_init_reboot_foreign_address_is_naked(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      options=[(50, FOREIGN_ADDRESS)], flags=0)
    reply = reply_of(decision)

    assert decision.action == 'nak'
    assert decision.renew is False
    assert '10.9.0.6' in decision.reason
    assert reply.dhcp_message_type == DHCPNAK
    assert reply.dhcp.yiaddr == '0.0.0.0'
    assert reply.dhcp.ciaddr == '0.0.0.0'
    assert reply.eth.dst == BROADCAST_MAC
    assert reply.ipv4.dst == '255.255.255.255'
    assert_sent_by_gateway(reply)


def test_nak_carries_only_allowed_options(server, binding):
    decision = handle(server, binding, DHCPREQUEST,
                      options=[(50, FOREIGN_ADDRESS), (61, CLIENT_ID),
                               (55, bytes([1, 3, 6, 28, 51]))])
    options = reply_of(decision).dhcp_options

    assert set(options) == {53, 54, 56, 61}
    assert options[54] == GATEWAY
    assert options[61] == CLIENT_ID
    assert b'10.9.0.6' in options[56]


def test_request_without_address_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST)

    assert decision.action == 'ignore'
    assert decision.reply is None


# DHCPREQUEST in RENEWING and REBINDING states.

def test_renewing_acked_unicast_to_ciaddr(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.1.0.6',
                      dst_ip='10.1.0.5', eth_dst=GATEWAY_MAC)
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert decision.renew is True
    assert 'RENEWING' in decision.reason
    assert reply.dhcp.ciaddr == '10.1.0.6'
    assert reply.dhcp.yiaddr == '10.1.0.6'
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC
    assert reply.dhcp_options[51] == seconds(LEASE)


def test_renewing_ignores_broadcast_flag(server, binding):
    reply = reply_of(handle(server, binding, DHCPREQUEST,
                            ciaddr='10.1.0.6', dst_ip='10.1.0.5',
                            flags=0x8000))

    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC


def test_renewing_wrong_ciaddr_is_naked(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.9.0.6',
                      dst_ip='10.1.0.5')
    reply = reply_of(decision)

    assert decision.action == 'nak'
    assert reply.eth.dst == BROADCAST_MAC
    assert reply.ipv4.dst == '255.255.255.255'


def test_renewing_to_other_server_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.1.0.6',
                      dst_ip='10.9.0.5')

    assert decision.action == 'ignore'
    assert '10.9.0.5' in decision.reason


def test_rebinding_acked_unicast_to_ciaddr(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.1.0.6')
    reply = reply_of(decision)

    assert decision.action == 'ack'
    assert 'REBINDING' in decision.reason
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC


def test_rebinding_wrong_ciaddr_is_naked(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.9.0.6')

    assert decision.action == 'nak'
    assert 'REBINDING' in decision.reason


def test_renewing_conflicting_requested_is_ignored(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.1.0.6',
                      options=[(50, FOREIGN_ADDRESS)])

    assert decision.action == 'ignore'
    assert 'differs from ciaddr' in decision.reason


def test_renewing_with_own_server_id_acked(server, binding):
    decision = handle(server, binding, DHCPREQUEST, ciaddr='10.1.0.6',
                      dst_ip='10.1.0.5', options=[(54, GATEWAY)])

    assert decision.action == 'ack'


# DHCPRELEASE, DHCPDECLINE and DHCPINFORM (RFC 2131 4.3.3-4.3.5).

def test_release_of_own_address(server, binding):
    decision = handle(server, binding, DHCPRELEASE, ciaddr='10.1.0.6',
                      dst_ip='10.1.0.5', options=[(54, GATEWAY)])

    assert decision.action == 'release'
    assert decision.reply is None
    assert decision.renew is False


def test_release_of_other_address_is_ignored(server, binding):
    decision = handle(server, binding, DHCPRELEASE, ciaddr='10.9.0.6',
                      dst_ip='10.1.0.5')

    assert decision.action == 'ignore'
    assert decision.reply is None


def test_release_to_other_server_is_ignored(server, binding):
    decision = handle(server, binding, DHCPRELEASE, ciaddr='10.1.0.6',
                      dst_ip='10.9.0.5', options=[(54, OTHER_SERVER)])

    assert decision.action == 'ignore'


def test_decline_of_own_address(server, binding):
    decision = handle(server, binding, DHCPDECLINE,
                      options=[(50, ADDRESS), (54, GATEWAY),
                               (61, CLIENT_ID)])

    assert decision.action == 'decline'
    assert decision.reply is None
    assert decision.renew is False
    assert decision.client_id == CLIENT_ID


def test_decline_of_other_address_is_ignored(server, binding):
    decision = handle(server, binding, DHCPDECLINE,
                      options=[(50, FOREIGN_ADDRESS)])

    assert decision.action == 'ignore'


def test_inform_acked_without_lease(server, binding):
    decision = handle(server, binding, DHCPINFORM, ciaddr='10.1.0.6',
                      dst_ip='10.1.0.5')
    reply = reply_of(decision)
    options = reply.dhcp_options

    assert decision.action == 'inform'
    assert decision.renew is False
    assert decision.lease_time is None
    assert reply.dhcp_message_type == DHCPACK
    assert reply.dhcp.yiaddr == '0.0.0.0'
    assert reply.dhcp.ciaddr == '10.1.0.6'
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.eth.dst == HOST_MAC
    assert 51 not in options
    assert 58 not in options
    assert 59 not in options
    assert options[54] == GATEWAY
    assert options[1] == bytes([255, 255, 255, 252])
    assert options[3] == GATEWAY


def test_inform_without_ciaddr_uses_ip_source(server, binding):
    decision = handle(server, binding, DHCPINFORM, src_ip='10.1.0.6')

    assert decision.action == 'inform'
    assert reply_of(decision).ipv4.dst == '10.1.0.6'


def test_inform_from_other_address_is_ignored(server, binding):
    decision = handle(server, binding, DHCPINFORM, ciaddr='10.9.0.6')

    assert decision.action == 'ignore'


# Silence and ignored messages.

@pytest.mark.parametrize('message_type', [
    DHCPDISCOVER, DHCPREQUEST, DHCPDECLINE, DHCPRELEASE, DHCPINFORM])
def test_unknown_client_gets_silence(server, message_type):
    frame = parse_frame(dhcp_request_frame(
        message_type, ciaddr='10.1.0.6', options=[(50, ADDRESS)]))

    assert server.handle(frame, None) is None


@pytest.mark.parametrize('message_type', [DHCPOFFER, DHCPACK, DHCPNAK, 9,
                                          18, 200])
def test_server_message_types_are_ignored(server, binding, message_type):
    decision = handle(server, binding, message_type)

    assert decision.action == 'ignore'
    assert decision.reply is None
    assert 'not a message a server handles' in decision.reason


def test_missing_message_type_is_ignored(server, binding):
    frame = parse_frame(dhcp_request_frame(DHCPDISCOVER))
    del frame.dhcp_options[53]

    decision = server.handle(frame, binding)

    assert decision.action == 'ignore'
    assert 'option (53) missing' in decision.reason


def test_message_type_of_wrong_length_is_ignored(server, binding):
    frame = parse_frame(dhcp_request_frame(DHCPDISCOVER))
    frame.dhcp_options[53] = b'\x01\x01'

    decision = server.handle(frame, binding)

    assert decision.action == 'ignore'
    assert 'length 2' in decision.reason


def test_bootreply_from_client_is_ignored(server, binding):
    frame = parse_frame(dhcp_request_frame(DHCPDISCOVER))
    frame.dhcp.op = 2

    decision = server.handle(frame, binding)

    assert decision.action == 'ignore'
    assert 'BOOTREQUEST' in decision.reason


def test_relayed_message_is_ignored(server, binding):
    frame = parse_frame(dhcp_request_frame(DHCPDISCOVER))
    frame.dhcp.giaddr = '10.2.0.1'

    decision = server.handle(frame, binding)

    assert decision.action == 'ignore'
    assert 'relay' in decision.reason


def test_sender_other_than_binding_is_ignored(server, binding):
    decision = handle(server, binding, DHCPDISCOVER, mac=OTHER_MAC)

    assert decision.action == 'ignore'
    assert OTHER_MAC in decision.reason


def test_malformed_frame_is_ignored(server, binding):
    data = bytearray(dhcp_request_frame(DHCPDISCOVER))
    data[-20] ^= 0xff

    decision = server.handle(parse_frame(bytes(data)), binding)

    assert decision.action == 'ignore'
    assert decision.reason.startswith('malformed frame')


def test_non_dhcp_frame_is_ignored(server, binding):
    frame = parse_frame(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5'))

    decision = server.handle(frame, binding)

    assert decision.action == 'ignore'
    assert decision.reason == 'not a DHCP message'


def test_none_frame_is_ignored(server, binding):
    assert server.handle(None, binding).action == 'ignore'


# Configuration.

def test_extra_options_sent_when_requested(clock, binding):
    dns = bytes([10, 0, 0, 53])
    server = DhcpServer(GATEWAY_MAC, LEASE, clock=clock,
                        extra_options={6: dns, 15: b'tmip.test'})

    requested = reply_of(handle(server, binding, DHCPDISCOVER,
                            options=[(55, bytes([1, 3, 6]))]))
    not_requested = reply_of(handle(server, binding, DHCPDISCOVER,
                                options=[(55, bytes([1, 3]))]))

    assert requested.dhcp_options[6] == dns
    assert 15 not in requested.dhcp_options
    assert 6 not in not_requested.dhcp_options


def test_extra_options_never_in_nak(clock, binding):
    server = DhcpServer(GATEWAY_MAC, LEASE, clock=clock,
                        extra_options={6: bytes(4)})

    decision = handle(server, binding, DHCPREQUEST,
                      options=[(50, FOREIGN_ADDRESS), (55, bytes([6]))])

    assert 6 not in reply_of(decision).dhcp_options


@pytest.mark.parametrize('extra_options', [
    {54: bytes(4)}, {0: b''}, {256: b''}, {'6': bytes(4)}, {6: '10.0.0.53'},
])
def test_invalid_extra_options_raise(extra_options):
    with pytest.raises(ValueError):
        DhcpServer(GATEWAY_MAC, LEASE, extra_options=extra_options)


@pytest.mark.parametrize('lease_time', [0, -5, 2 ** 32, 3.5, '3600'])
def test_invalid_lease_time_raises(lease_time):
    with pytest.raises(ValueError, match='invalid lease time'):
        DhcpServer(GATEWAY_MAC, lease_time)


@pytest.mark.parametrize('gateway_mac', ['02:00:00:00:01', 'gateway', None])
def test_invalid_gateway_mac_raises(gateway_mac):
    with pytest.raises(ValueError, match='invalid MAC address'):
        DhcpServer(gateway_mac, LEASE)


def test_upper_case_gateway_mac_is_normalised(clock, binding):
    server = DhcpServer(GATEWAY_MAC.upper(), LEASE, clock=clock)

    assert reply_of(handle(server, binding, DHCPDISCOVER)).eth.src == \
        GATEWAY_MAC


def test_reply_for_other_network_layout(clock):
    server = DhcpServer(GATEWAY_MAC, LEASE, clock=clock)
    binding = StandInBinding(
        network=ipaddress.IPv4Network('172.16.255.252/30'))

    reply = reply_of(handle(server, binding, DHCPDISCOVER))

    assert reply.dhcp.yiaddr == '172.16.255.254'
    assert reply.ipv4.src == '172.16.255.253'
    assert reply.dhcp_options[28] == bytes([172, 16, 255, 255])

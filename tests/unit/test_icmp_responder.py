"""ICMP: echo replies from a host's gateway address."""

import pytest
from ryu.lib.packet import ethernet, icmp, ipv4, vlan

from test_packets_frames import (
    GATEWAY_MAC, HOST_MAC, arp_frame, dhcp_request_frame,
    echo_request_frame, serialize)
from tmip_ryu.icmp_responder import echo_reply
from tmip_ryu.packets import internet_checksum, parse_frame


def reply_to(data):
    reply = echo_reply(parse_frame(data), GATEWAY_MAC)
    return None if reply is None else parse_frame(reply)


def test_echo_reply_swaps_addresses():
    reply = reply_to(echo_request_frame('10.1.0.6', '10.1.0.5'))

    assert reply.error is None
    assert reply.eth.src == GATEWAY_MAC
    assert reply.eth.dst == HOST_MAC
    assert reply.ipv4.src == '10.1.0.5'
    assert reply.ipv4.dst == '10.1.0.6'
    assert reply.ipv4.ttl == 64


def test_echo_reply_keeps_identifier_sequence_payload():
    payload = b'timestamp and pattern ' * 3
    reply = reply_to(echo_request_frame('10.1.0.6', '10.1.0.5',
                                        ident=0xbeef, seq=513,
                                        payload=payload))

    assert reply.icmp.type == icmp.ICMP_ECHO_REPLY
    assert reply.icmp.code == 0
    assert reply.icmp.data.id == 0xbeef
    assert reply.icmp.data.seq == 513
    assert reply.icmp.data.data == payload


def test_echo_reply_checksums_are_valid():
    data = echo_reply(parse_frame(echo_request_frame('10.1.0.6',
                                                     '10.1.0.5')),
                      GATEWAY_MAC)

    assert internet_checksum(data[14:34]) == 0
    assert internet_checksum(data[34:]) == 0


def test_echo_reply_ttl_is_64_whatever_request_ttl():
    reply = reply_to(echo_request_frame('10.1.0.6', '10.1.0.5', ttl=3))

    assert reply.ipv4.ttl == 64


def test_echo_without_payload_answered():
    reply = reply_to(echo_request_frame('10.1.0.6', '10.1.0.5',
                                        payload=None))

    assert reply.icmp.data.seq == 7
    assert not reply.icmp.data.data


def test_large_echo_answered():
    payload = bytes(range(256)) * 5 + bytes(192)

    reply = reply_to(echo_request_frame('10.1.0.6', '10.1.0.5',
                                        payload=payload))

    assert reply.ipv4.total_length == 20 + 8 + len(payload)
    assert reply.icmp.data.data == payload


def test_echo_reply_keeps_vlan_tag():
    reply = reply_to(echo_request_frame(
        '10.1.0.6', '10.1.0.5', vlans=[vlan.vlan(vid=9, ethertype=0x0800)]))

    assert [tag.vid for tag in reply.vlans] == [9]
    assert reply.icmp.type == icmp.ICMP_ECHO_REPLY


@pytest.mark.parametrize('src_ip, dst_ip', [
    ('10.1.0.6', '255.255.255.255'),
    ('10.1.0.6', '224.0.0.1'),
    ('0.0.0.0', '10.1.0.5'),
    ('224.0.0.9', '10.1.0.5'),
])
def test_echo_to_or_from_group_addresses_ignored(src_ip, dst_ip):
    assert reply_to(echo_request_frame(src_ip, dst_ip)) is None


def test_echo_to_broadcast_mac_ignored():
    assert reply_to(echo_request_frame(
        '10.1.0.6', '10.1.0.5', eth_dst='ff:ff:ff:ff:ff:ff')) is None


def test_echo_reply_is_not_answered():
    data = serialize(
        ethernet.ethernet(dst=GATEWAY_MAC, src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=1),
        icmp.icmp(icmp.ICMP_ECHO_REPLY, 0, 0, icmp.echo(1, 1, b'x')))

    assert reply_to(data) is None


def test_echo_with_nonzero_code_ignored():
    data = serialize(
        ethernet.ethernet(dst=GATEWAY_MAC, src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=1),
        icmp.icmp(icmp.ICMP_ECHO_REQUEST, 1, 0, icmp.echo(1, 1, b'x')))

    assert reply_to(data) is None


def test_corrupt_echo_ignored():
    data = bytearray(echo_request_frame('10.1.0.6', '10.1.0.5'))
    data[-3] ^= 0x40

    assert reply_to(bytes(data)) is None


@pytest.mark.parametrize('data', [
    arp_frame(1, '10.1.0.6', '10.1.0.5'), dhcp_request_frame(1), b'',
])
def test_non_icmp_frames_ignored(data):
    assert reply_to(data) is None


def test_none_frame_ignored():
    assert echo_reply(None, GATEWAY_MAC) is None

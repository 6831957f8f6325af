"""ARP: gateway replies to hosts, uplink requests and replies."""

import pytest
from ryu.lib.packet import arp, ethernet, vlan

from test_packets_frames import (
    BROADCAST_MAC, GATEWAY_MAC, HOST_MAC, OTHER_MAC, StandInBinding,
    arp_frame, dhcp_request_frame, serialize)
from tmip_ryu.arp_responder import (
    arp_reply, arp_reply_for, arp_request, parse_arp_reply)
from tmip_ryu.packets import parse_frame

ROUTER_MAC = '02:00:00:00:ee:01'
UPLINK_ADDRESS = '192.0.2.2'
NEXT_HOP = '192.0.2.1'

# Captured on a veth (Debian 12): the kernel's request for the gateway
# after dhclient configured 10.1.0.6, a udhcpc -a probe of the offered
# address, padded to 60 bytes, and dhcpcd 9.4.1's announcement.
KERNEL_REQUEST = bytes.fromhex(
    'ffffffffffff020000000a0108060001080006040001020000000a010a010006'
    '0000000000000a010005')
UDHCPC_PROBE = bytes.fromhex(
    'ffffffffffff020000000a0108060001080006040001020000000a0100000000'
    '000000000000000a010006') + bytes(18)
DHCPCD_ANNOUNCEMENT = bytes.fromhex(
    'ffffffffffff020000000a0108060001080006040001020000000a010a010006'
    '0000000000000a010006')


@pytest.fixture
def binding():
    return StandInBinding()


def decide(data, binding):
    return arp_reply(parse_frame(data), binding, GATEWAY_MAC)


def test_gateway_request_answered_with_gateway_mac(binding):
    decision = decide(KERNEL_REQUEST, binding)
    reply = parse_frame(decision.reply)

    assert reply.error is None
    assert reply.eth.src == GATEWAY_MAC
    assert reply.eth.dst == HOST_MAC
    assert reply.arp.opcode == arp.ARP_REPLY
    assert reply.arp.src_mac == GATEWAY_MAC
    assert reply.arp.src_ip == '10.1.0.5'
    assert reply.arp.dst_mac == HOST_MAC
    assert reply.arp.dst_ip == '10.1.0.6'
    assert '10.1.0.5' in decision.reason


def test_unicast_gateway_request_answered(binding):
    decision = decide(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5',
                                eth_dst=GATEWAY_MAC,
                                dst_mac=GATEWAY_MAC), binding)

    assert parse_frame(decision.reply).arp.src_mac == GATEWAY_MAC


def test_gateway_request_in_foreign_cell_answered():
    roaming = StandInBinding(cell=4, dpid=4, port=3, state='roaming')

    decision = decide(KERNEL_REQUEST, roaming)

    assert parse_frame(decision.reply).arp.src_ip == '10.1.0.5'


def test_probe_is_never_answered(binding):
    decision = decide(UDHCPC_PROBE, binding)

    assert decision.reply is None
    assert 'probe' in decision.reason


def test_probe_for_gateway_is_never_answered(binding):
    decision = decide(arp_frame(arp.ARP_REQUEST, '0.0.0.0', '10.1.0.5'),
                      binding)

    assert decision.reply is None
    assert 'probe' in decision.reason


def test_announcement_is_never_answered(binding):
    decision = decide(DHCPCD_ANNOUNCEMENT, binding)

    assert decision.reply is None
    assert 'announcement' in decision.reason


def test_gratuitous_gateway_claim_is_not_answered(binding):
    decision = decide(arp_frame(arp.ARP_REQUEST, '10.1.0.5', '10.1.0.5'),
                      binding)

    assert decision.reply is None


@pytest.mark.parametrize('target', ['10.1.0.7', '10.1.0.4', '10.1.0.9',
                                    '8.8.8.8', '10.2.0.5'])
def test_request_for_other_address_not_answered(binding, target):
    decision = decide(arp_frame(arp.ARP_REQUEST, '10.1.0.6', target),
                      binding)

    assert decision.reply is None
    assert target in decision.reason


def test_request_from_other_host_not_answered(binding):
    decision = decide(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5',
                                mac=OTHER_MAC), binding)

    assert decision.reply is None
    assert 'not the bound host' in decision.reason


def test_spoofed_sender_hardware_address_not_answered(binding):
    decision = decide(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5',
                                arp_mac=OTHER_MAC), binding)

    assert decision.reply is None


def test_arp_reply_from_host_not_answered(binding):
    decision = decide(arp_frame(arp.ARP_REPLY, '10.1.0.6', '10.1.0.5',
                                eth_dst=GATEWAY_MAC), binding)

    assert decision.reply is None
    assert 'not a request' in decision.reason


def test_host_without_binding_not_answered():
    decision = decide(KERNEL_REQUEST, None)

    assert decision.reply is None
    assert 'no binding' in decision.reason


def test_non_arp_frame_not_answered(binding):
    decision = decide(dhcp_request_frame(1), binding)

    assert decision.reply is None
    assert decision.reason == 'not an ARP packet'


def test_gateway_reply_keeps_vlan_tag(binding):
    data = serialize(
        ethernet.ethernet(dst=BROADCAST_MAC, src=HOST_MAC,
                          ethertype=0x8100),
        vlan.vlan(vid=12, ethertype=0x0806),
        arp.arp_ip(arp.ARP_REQUEST, HOST_MAC, '10.1.0.6',
                   '00:00:00:00:00:00', '10.1.0.5'))

    reply = parse_frame(decide(data, binding).reply)

    assert [tag.vid for tag in reply.vlans] == [12]
    assert reply.arp.src_ip == '10.1.0.5'


def test_arp_request_is_broadcast():
    frame = parse_frame(arp_request(GATEWAY_MAC, UPLINK_ADDRESS, NEXT_HOP))

    assert frame.error is None
    assert frame.eth.dst == BROADCAST_MAC
    assert frame.eth.src == GATEWAY_MAC
    assert frame.arp.opcode == arp.ARP_REQUEST
    assert frame.arp.src_mac == GATEWAY_MAC
    assert frame.arp.src_ip == UPLINK_ADDRESS
    assert frame.arp.dst_mac == '00:00:00:00:00:00'
    assert frame.arp.dst_ip == NEXT_HOP


@pytest.mark.parametrize('mac, src_ip, target_ip', [
    ('02:00:00:00:00', UPLINK_ADDRESS, NEXT_HOP),
    ('zz:00:00:00:00:01', UPLINK_ADDRESS, NEXT_HOP),
    (None, UPLINK_ADDRESS, NEXT_HOP),
    (GATEWAY_MAC, '192.0.2.300', NEXT_HOP),
    (GATEWAY_MAC, UPLINK_ADDRESS, 'router'),
])
def test_arp_request_rejects_invalid_addresses(mac, src_ip, target_ip):
    with pytest.raises(ValueError):
        arp_request(mac, src_ip, target_ip)


def test_router_request_for_uplink_answered():
    request = parse_frame(arp_frame(arp.ARP_REQUEST, NEXT_HOP,
                                    UPLINK_ADDRESS, mac=ROUTER_MAC))

    reply = parse_frame(arp_reply_for(GATEWAY_MAC, UPLINK_ADDRESS, request))

    assert reply.eth.src == GATEWAY_MAC
    assert reply.eth.dst == ROUTER_MAC
    assert reply.arp.opcode == arp.ARP_REPLY
    assert reply.arp.src_mac == GATEWAY_MAC
    assert reply.arp.src_ip == UPLINK_ADDRESS
    assert reply.arp.dst_mac == ROUTER_MAC
    assert reply.arp.dst_ip == NEXT_HOP


def test_router_probe_for_uplink_is_defended():
    request = parse_frame(arp_frame(arp.ARP_REQUEST, '0.0.0.0',
                                    UPLINK_ADDRESS, mac=ROUTER_MAC))

    reply = parse_frame(arp_reply_for(GATEWAY_MAC, UPLINK_ADDRESS, request))

    assert reply.arp.src_ip == UPLINK_ADDRESS
    assert reply.arp.dst_ip == '0.0.0.0'
    assert reply.eth.dst == ROUTER_MAC


@pytest.mark.parametrize('data', [
    arp_frame(arp.ARP_REQUEST, NEXT_HOP, '192.0.2.9', mac=ROUTER_MAC),
    arp_frame(arp.ARP_REPLY, NEXT_HOP, UPLINK_ADDRESS, mac=ROUTER_MAC),
    arp_frame(arp.ARP_REQUEST, NEXT_HOP, NEXT_HOP, mac=ROUTER_MAC),
    dhcp_request_frame(1),
])
def test_uplink_other_frames_not_answered(data):
    assert arp_reply_for(GATEWAY_MAC, UPLINK_ADDRESS, parse_frame(data)) \
        is None


def test_parse_arp_reply_returns_sender():
    frame = parse_frame(arp_frame(arp.ARP_REPLY, NEXT_HOP, UPLINK_ADDRESS,
                                  mac=ROUTER_MAC, eth_dst=GATEWAY_MAC,
                                  dst_mac=GATEWAY_MAC))

    assert parse_arp_reply(frame) == (NEXT_HOP, ROUTER_MAC)


@pytest.mark.parametrize('data', [
    arp_frame(arp.ARP_REQUEST, NEXT_HOP, UPLINK_ADDRESS, mac=ROUTER_MAC),
    arp_frame(arp.ARP_REPLY, '0.0.0.0', UPLINK_ADDRESS, mac=ROUTER_MAC),
    dhcp_request_frame(1),
])
def test_parse_arp_reply_ignores_others(data):
    assert parse_arp_reply(parse_frame(data)) is None


def test_parse_arp_reply_of_none_is_none():
    assert parse_arp_reply(None) is None

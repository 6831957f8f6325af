"""DhcpServer.handle() on random messages: it never raises.

Every reply it returns must be a well-formed frame from the gateway, and
every decision must keep the rules whatever the message holds.
"""

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_packets_frames import (
    GATEWAY_MAC, HOST_MAC, START, FakeClock, StandInBinding,
    dhcp_request_frame)
from test_packets_parse import mutated_frames
from tmip_ryu.dhcp_server import ACTIONS, DHCPNAK, DhcpServer
from tmip_ryu.packets import parse_frame

SERVER = DhcpServer(GATEWAY_MAC, 3600, clock=FakeClock(START + 30),
                    extra_options={6: bytes(4), 42: bytes(8)})
BINDING = StandInBinding()

addresses = st.sampled_from(['0.0.0.0', '10.1.0.5', '10.1.0.6', '10.1.0.7',
                             '10.9.0.6', '255.255.255.255'])
address_bytes = addresses.map(lambda text: ipaddress.IPv4Address(text)
                              .packed)
option_values = {
    50: st.one_of(address_bytes, st.binary(max_size=6)),
    54: st.one_of(address_bytes, st.binary(max_size=6)),
    55: st.binary(max_size=40),
    61: st.binary(max_size=300),
    51: st.binary(min_size=4, max_size=4),
    12: st.binary(max_size=30),
}


@st.composite
def dhcp_messages(draw):
    """A client message with random fields and a random choice of options.
    """
    options = []
    for code, values in option_values.items():
        if draw(st.booleans()):
            value = draw(values)
            # Long values go out as RFC 3396 split options.
            options += [(code, value[i:i + 255])
                        for i in range(0, max(len(value), 1), 255)]
    return dhcp_request_frame(
        draw(st.integers(0, 255)),
        xid=draw(st.integers(0, 0xffffffff)),
        flags=draw(st.sampled_from([0, 0x8000, 0x7fff])),
        ciaddr=draw(addresses),
        dst_ip=draw(addresses),
        options=draw(st.permutations(options)))


def check_decision(frame, decision):
    """Assert what holds for every decision, whatever the message."""
    assert decision is not None
    assert decision.action in ACTIONS
    assert isinstance(decision.reason, str)
    assert decision.reason
    assert decision.renew == (decision.action == 'ack')
    if decision.action in ('ignore', 'release', 'decline'):
        assert decision.reply is None
        return
    reply = parse_frame(decision.reply)
    assert reply.error is None
    assert reply.eth.src == GATEWAY_MAC
    assert reply.ipv4.src == '10.1.0.5'
    assert reply.udp.src_port == 67
    assert reply.udp.dst_port == 68
    assert reply.dhcp.xid == frame.dhcp.xid
    assert reply.dhcp_options[54] == bytes([10, 1, 0, 5])
    assert reply.dhcp.yiaddr in ('10.1.0.6', '0.0.0.0')

    # Destination rules of RFC 2131 section 4.1, with giaddr zero.
    ciaddr = frame.dhcp.ciaddr
    if decision.action == 'inform' and ciaddr == '0.0.0.0':
        ciaddr = frame.ipv4.src
    if reply.dhcp_message_type == DHCPNAK:
        assert reply.eth.dst == 'ff:ff:ff:ff:ff:ff'
        assert reply.ipv4.dst == '255.255.255.255'
    elif ciaddr != '0.0.0.0':
        assert reply.eth.dst == HOST_MAC
        assert reply.ipv4.dst == ciaddr
    elif frame.dhcp.flags & 0x8000:
        assert reply.eth.dst == 'ff:ff:ff:ff:ff:ff'
        assert reply.ipv4.dst == '255.255.255.255'
    else:
        assert reply.eth.dst == HOST_MAC
        assert reply.ipv4.dst == reply.dhcp.yiaddr


@settings(max_examples=800, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(dhcp_messages())
def test_handle_random_messages_keeps_rules(data):
    frame = parse_frame(data)

    check_decision(frame, SERVER.handle(frame, BINDING))


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_frames())
def test_handle_mutated_frames_never_raises(data):
    frame = parse_frame(data)

    decision = SERVER.handle(frame, BINDING)

    if frame.dhcp is None or frame.error is not None:
        assert decision.action == 'ignore'
    check_decision(frame, decision)


@settings(max_examples=300, deadline=None)
@given(dhcp_messages())
def test_handle_without_binding_is_silent(data):
    assert SERVER.handle(parse_frame(data), None) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_handle_random_bytes_never_raises(data):
    decision = SERVER.handle(parse_frame(data), BINDING)

    assert decision.action == 'ignore'
    assert decision.reply is None

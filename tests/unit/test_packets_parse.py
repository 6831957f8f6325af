"""parse_frame(): every layer's validation, and fuzzing that it never raises.
"""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryu.lib.packet import arp, dhcp, ethernet, icmp, ipv4, udp, vlan

from test_packets_frames import (
    HOST_MAC, GATEWAY_MAC, arp_frame, dhcp_request_frame,
    echo_request_frame, serialize)
from tmip_ryu.packets import internet_checksum, normalise_mac, parse_frame

# Offsets of the payload (ARP or IPv4) and of UDP in an untagged frame.
PAYLOAD_OFFSET = 14
IP_OFFSET = PAYLOAD_OFFSET
UDP_OFFSET = IP_OFFSET + 20


def discover():
    return bytearray(dhcp_request_frame(1))


def fix_ipv4_checksum(frame, ip_offset=IP_OFFSET):
    """Recompute the IPv4 header checksum in place after an edit."""
    header_len = (frame[ip_offset] & 0xf) * 4
    frame[ip_offset + 10:ip_offset + 12] = b'\x00\x00'
    csum = internet_checksum(bytes(frame[ip_offset:ip_offset + header_len]))
    frame[ip_offset + 10:ip_offset + 12] = struct.pack('!H', csum)
    return frame


def fix_udp_checksum(frame, ip_offset=IP_OFFSET):
    """Recompute the UDP checksum in place after an edit."""
    header_len = (frame[ip_offset] & 0xf) * 4
    udp_offset = ip_offset + header_len
    length = struct.unpack_from('!H', frame, udp_offset + 4)[0]
    frame[udp_offset + 6:udp_offset + 8] = b'\x00\x00'
    pseudo = (bytes(frame[ip_offset + 12:ip_offset + 20]) + b'\x00\x11'
              + struct.pack('!H', length))
    csum = internet_checksum(
        pseudo + bytes(frame[udp_offset:udp_offset + length]))
    frame[udp_offset + 6:udp_offset + 8] = struct.pack('!H', csum)
    return frame


def dhcp_with_raw_options(options, *, op=1, htype=1, hlen=6, chaddr=None,
                          sname=b'', boot_file=b''):
    """Build a DHCP frame whose options area is exactly ``options``."""
    bootp = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', op, htype, hlen, 0,
                        0x1234, 0, 0, bytes(4), bytes(4), bytes(4),
                        bytes(4), chaddr or bytes.fromhex('020000000a01'),
                        sname, boot_file)
    return serialize(
        ethernet.ethernet(dst='ff:ff:ff:ff:ff:ff', src=HOST_MAC),
        ipv4.ipv4(src='0.0.0.0', dst='255.255.255.255', proto=17),
        udp.udp(68, 67), bootp + options)


# MAC addresses.

def test_normalise_mac_lowers_case():
    assert normalise_mac('02:AB:00:00:0A:01') == '02:ab:00:00:0a:01'


@pytest.mark.parametrize('mac', ['02:00:00:00:0a', '02:00:00:00:0a:01:02',
                                 '0200000a0001', 'zz:00:00:00:0a:01',
                                 '', None, 42])
def test_normalise_mac_rejects_invalid(mac):
    with pytest.raises(ValueError, match='invalid MAC address'):
        normalise_mac(mac)


# Ethernet and VLAN.

def test_parse_rejects_non_bytes_input():
    assert parse_frame(None) is None
    assert parse_frame('not bytes') is None


def test_ethernet_truncated_is_error():
    frame = parse_frame(b'\xff' * 13)

    assert frame.eth is None
    assert 'Ethernet header truncated' in frame.error


def test_ethernet_multicast_source_is_error():
    data = bytearray(discover())
    data[6] = 0x01

    frame = parse_frame(bytes(data))

    assert frame.eth.src.startswith('01:')
    assert 'multicast' in frame.error
    assert frame.ipv4 is None


def test_unknown_ethertype_parses_ethernet_only():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC, ethertype=0x86dd), b'\x60' * 40))

    assert frame.error is None
    assert frame.eth.ethertype == 0x86dd
    assert frame.ipv4 is None


def test_double_vlan_tags_parse_to_inner_ipv4():
    frame = parse_frame(serialize(
        ethernet.ethernet(dst=GATEWAY_MAC, src=HOST_MAC, ethertype=0x88a8),
        vlan.svlan(vid=100, ethertype=0x8100),
        vlan.vlan(pcp=5, vid=200, ethertype=0x0800),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=1),
        icmp.icmp(8, 0, 0, icmp.echo(1, 2, b'x'))))

    assert frame.error is None
    assert [tag.vid for tag in frame.vlans] == [100, 200]
    assert frame.vlans[1].pcp == 5
    assert frame.ethertype == 0x0800
    assert frame.icmp.data.seq == 2


def test_three_vlan_tags_are_error():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC, ethertype=0x8100),
        vlan.vlan(vid=1, ethertype=0x8100),
        vlan.vlan(vid=2, ethertype=0x8100),
        vlan.vlan(vid=3, ethertype=0x0800), b'\x00' * 40))

    assert frame.error == 'more than 2 VLAN tags'


def test_truncated_vlan_tag_is_error():
    data = bytes.fromhex('ffffffffffff020000000a01' '8100' '0005')

    frame = parse_frame(data)

    assert 'VLAN tag truncated' in frame.error


# ARP.

def test_arp_padded_to_minimum_frame_parses():
    # ryu.lib.packet pads every frame to the 60-byte Ethernet minimum.
    data = arp_frame(arp.ARP_REQUEST, '0.0.0.0', '10.1.0.6')

    frame = parse_frame(data)

    assert len(data) == 60
    assert frame.error is None
    assert frame.arp.dst_ip == '10.1.0.6'


def test_arp_truncated_is_error():
    frame = parse_frame(arp_frame(arp.ARP_REQUEST, '10.1.0.6',
                                  '10.1.0.5')[:PAYLOAD_OFFSET + 27])

    assert frame.arp is None
    assert 'ARP packet truncated: 27 bytes' in frame.error


@pytest.mark.parametrize('offset, value, fault', [
    (1, 6, 'hardware type 6,'),
    (3, 0x86, 'protocol 0x0886'),
    (4, 8, 'address lengths 8/4'),
    (5, 16, 'address lengths 6/16'),
])
def test_arp_non_ethernet_ipv4_is_error(offset, value, fault):
    data = bytearray(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5'))
    data[PAYLOAD_OFFSET + offset] = value

    frame = parse_frame(bytes(data))

    assert frame.arp is None
    assert fault in frame.error


def test_arp_unknown_opcode_is_error():
    data = bytearray(arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5'))
    data[PAYLOAD_OFFSET + 7] = 9

    frame = parse_frame(bytes(data))

    assert 'ARP opcode 9' in frame.error


# IPv4.

def test_ipv4_wrong_version_is_error():
    data = discover()
    data[IP_OFFSET] = 0x65

    assert 'IP version 6' in parse_frame(bytes(data)).error


def test_ipv4_short_header_length_is_error():
    data = discover()
    data[IP_OFFSET] = 0x44

    assert 'header length 16 is below 20' in parse_frame(bytes(data)).error


def test_ipv4_header_cut_short_is_error():
    frame = parse_frame(bytes(discover()[:IP_OFFSET + 20]))

    assert frame.ipv4 is None
    assert 'IPv4 packet truncated: total length 272, 20 bytes present' \
        in frame.error


def test_ipv4_truncated_packet_is_error():
    data = discover()
    struct.pack_into('!H', data, IP_OFFSET + 2, len(data))
    fix_ipv4_checksum(data)

    frame = parse_frame(bytes(data))

    assert frame.ipv4 is None
    assert 'IPv4 packet truncated' in frame.error


def test_ipv4_total_below_header_is_error():
    data = discover()
    struct.pack_into('!H', data, IP_OFFSET + 2, 12)
    fix_ipv4_checksum(data)

    assert 'shorter than its header' in parse_frame(bytes(data)).error


def test_ipv4_bad_header_checksum_is_error():
    data = discover()
    data[IP_OFFSET + 10] ^= 0xff

    frame = parse_frame(bytes(data))

    assert frame.ipv4 is None
    assert 'IPv4 header checksum' in frame.error


def test_ethernet_padding_after_ipv4_is_ignored():
    frame = parse_frame(bytes(discover()) + bytes(20))

    assert frame.error is None
    assert frame.dhcp_message_type == 1


def test_ipv4_options_are_skipped():
    frame = parse_frame(serialize(
        ethernet.ethernet(dst=GATEWAY_MAC, src=HOST_MAC),
        ipv4.ipv4(header_length=6, src='10.1.0.6', dst='10.1.0.5', proto=1,
                  option=b'\x94\x04\x00\x00'),
        icmp.icmp(8, 0, 0, icmp.echo(3, 4, b'abc'))))

    assert frame.error is None
    assert frame.ipv4.header_length == 6
    assert frame.icmp.data.data == b'abc'


@pytest.mark.parametrize('flags_offset', [0x2001, 0x0001, 0x2000 | 0x1fff])
def test_ipv4_fragment_has_no_upper_layer(flags_offset):
    data = discover()
    struct.pack_into('!H', data, IP_OFFSET + 6, flags_offset)
    fix_ipv4_checksum(data)

    frame = parse_frame(bytes(data))

    assert frame.error is None
    assert frame.ipv4 is not None
    assert frame.udp is None
    assert frame.dhcp is None


def test_ipv4_dont_fragment_flag_still_parses_udp():
    data = discover()
    struct.pack_into('!H', data, IP_OFFSET + 6, 0x4000)
    fix_ipv4_checksum(data)

    assert parse_frame(bytes(data)).dhcp_message_type == 1


# UDP.

def test_udp_truncated_is_error():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=17), b'\x00' * 7))

    assert frame.udp is None
    assert 'UDP header truncated: 7 bytes' in frame.error


@pytest.mark.parametrize('length', [0, 7, 0xffff])
def test_udp_length_out_of_range_is_error(length):
    data = discover()
    struct.pack_into('!H', data, UDP_OFFSET + 4, length)

    frame = parse_frame(bytes(data))

    assert frame.udp is None
    assert 'UDP length %d is invalid' % length in frame.error


def test_udp_bad_checksum_is_error():
    data = discover()
    data[UDP_OFFSET + 6] ^= 0x5a

    frame = parse_frame(bytes(data))

    assert frame.udp is None
    assert frame.dhcp is None
    assert 'UDP checksum' in frame.error


def test_udp_zero_checksum_is_accepted():
    data = discover()
    data[UDP_OFFSET + 6:UDP_OFFSET + 8] = b'\x00\x00'

    frame = parse_frame(bytes(data))

    assert frame.error is None
    assert frame.partial_checksum is False
    assert frame.dhcp_message_type == 1


def test_udp_offload_partial_checksum_is_flagged():
    data = discover()
    length = struct.unpack_from('!H', data, UDP_OFFSET + 4)[0]
    pseudo = (bytes(data[IP_OFFSET + 12:IP_OFFSET + 20]) + b'\x00\x11'
              + struct.pack('!H', length))
    struct.pack_into('!H', data, UDP_OFFSET + 6,
                     ~internet_checksum(pseudo) & 0xffff)

    frame = parse_frame(bytes(data))

    assert frame.error is None
    assert frame.partial_checksum is True
    assert frame.dhcp_message_type == 1


def test_udp_other_ports_have_no_dhcp():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=17),
        udp.udp(5353, 53), b'query'))

    assert frame.error is None
    assert frame.udp.dst_port == 53
    assert frame.dhcp is None


# ICMP.

def test_icmp_truncated_is_error():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=1), b'\x08\x00'))

    assert frame.icmp is None
    assert 'ICMP message truncated: 2 bytes' in frame.error


def test_icmp_bad_checksum_is_error():
    data = bytearray(echo_request_frame('10.1.0.6', '10.1.0.5'))
    data[-1] ^= 0x01

    frame = parse_frame(bytes(data))

    assert frame.icmp is None
    assert 'ICMP checksum' in frame.error


def test_icmp_destination_unreachable_parses():
    frame = parse_frame(serialize(
        ethernet.ethernet(src=HOST_MAC),
        ipv4.ipv4(src='10.1.0.6', dst='10.1.0.5', proto=1),
        icmp.icmp(3, 1, 0, icmp.dest_unreach(data=b'\x45' + bytes(27)))))

    assert frame.error is None
    assert frame.icmp.type == 3


# DHCP.

def test_dhcp_truncated_is_error():
    data = dhcp_with_raw_options(b'')

    frame = parse_frame(data)

    assert frame.udp is not None
    assert frame.dhcp is None
    assert 'DHCP message truncated: 236 bytes' in frame.error


@pytest.mark.parametrize('field, fault', [
    ({'op': 3}, 'BOOTP op 3'),
    ({'htype': 6}, 'hardware type 6'),
    ({'hlen': 16}, 'length 16'),
])
def test_dhcp_bad_fixed_field_is_error(field, fault):
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\xff', **field))

    assert frame.dhcp is None
    assert fault in frame.error


def test_dhcp_without_magic_cookie_is_error():
    frame = parse_frame(dhcp_with_raw_options(b'\x00' * 64))

    assert 'magic cookie missing' in frame.error


def test_dhcp_foreign_chaddr_is_error():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\xff',
        chaddr=bytes.fromhex('020000000b02')))

    assert frame.dhcp is None
    assert 'chaddr 02:00:00:00:0b:02 differs' in frame.error


def test_bootreply_foreign_chaddr_is_accepted():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x02\xff', op=2,
        chaddr=bytes.fromhex('020000000b02')))

    assert frame.error is None
    assert frame.dhcp.op == 2
    assert frame.dhcp.chaddr == '02:00:00:00:0b:02'


def test_dhcp_truncated_option_is_error():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\x37\x09\x01\x03'))

    assert frame.dhcp is None
    assert 'option 55 in options is truncated: length 9, 2 bytes left' \
        in frame.error


def test_dhcp_option_without_length_is_error():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\x0c'))

    assert 'option 12 in options has no length byte' in frame.error


def test_dhcp_pad_between_options_is_skipped():
    # ryu.lib.packet stops at the first PAD; RFC 2132 allows PAD anywhere.
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x00\x35\x01\x03\x00\x00\x32\x04\x0a\x01\x00\x06'
        b'\xff'))

    assert frame.error is None
    assert frame.dhcp_options == {53: b'\x03', 50: b'\x0a\x01\x00\x06'}
    assert [opt.tag for opt in frame.dhcp.options.option_list] == [53, 50]


def test_dhcp_options_without_end_are_accepted():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01'))

    assert frame.error is None
    assert frame.dhcp_message_type == 1


def test_dhcp_options_after_end_are_ignored():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\xff\x32\x04\x0a\x01\x00\x06'))

    assert frame.dhcp_options == {53: b'\x01'}


def test_dhcp_repeated_option_is_concatenated():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\x3d\x02\x01\x02\x3d\x03\x03\x04\x05'
        b'\xff'))

    assert frame.dhcp_options[61] == b'\x01\x02\x03\x04\x05'


def test_dhcp_overloaded_file_and_sname_are_parsed():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x03\x34\x01\x03\xff',
        boot_file=b'\x32\x04\x0a\x01\x00\x06\xff',
        sname=b'\x36\x04\x0a\x01\x00\x05\xff'))

    assert frame.error is None
    assert frame.dhcp_options[50] == b'\x0a\x01\x00\x06'
    assert frame.dhcp_options[54] == b'\x0a\x01\x00\x05'
    assert frame.dhcp.sname == ''
    assert frame.dhcp.boot_file == ''


def test_dhcp_bad_overload_value_is_error():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x03\x34\x01\x07\xff'))

    assert 'option overload (52) value' in frame.error


def test_dhcp_truncated_option_in_file_is_error():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x03\x34\x01\x01\xff',
        boot_file=b'\x00' * 126 + b'\x0c\x05'))

    assert "option 12 in the 'file' field is truncated" in frame.error


def test_dhcp_non_ascii_sname_does_not_raise():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x01\x01\xff', sname=b'h\xe9te\x00junk'))

    assert frame.error is None
    assert frame.dhcp.sname == 'h\\xe9te'


def test_dhcp_message_type_of_wrong_length_is_none():
    frame = parse_frame(dhcp_with_raw_options(
        b'\x63\x82\x53\x63\x35\x02\x01\x01\xff'))

    assert frame.error is None
    assert frame.dhcp_message_type is None


# Fuzzing: parse_frame never raises.

SEED_FRAMES = [
    bytes(dhcp_request_frame(3, options=[(50, b'\x0a\x01\x00\x06'),
                                         (54, b'\x0a\x01\x00\x05'),
                                         (61, b'\x01' + bytes(6)),
                                         (55, b'\x01\x03\x1c')])),
    bytes(dhcp_request_frame(1, vlans=[vlan.vlan(vid=7)])),
    arp_frame(arp.ARP_REQUEST, '10.1.0.6', '10.1.0.5'),
    echo_request_frame('10.1.0.6', '10.1.0.5'),
]


def check_frame(frame):
    """Assert the invariants of any ParsedFrame."""
    assert frame is not None
    assert frame.error is None or isinstance(frame.error, str)
    if frame.dhcp is not None:
        assert frame.udp is not None
        assert frame.ipv4 is not None
    if frame.udp is not None or frame.icmp is not None:
        assert frame.ipv4 is not None
    if frame.ipv4 is not None or frame.arp is not None:
        assert frame.eth is not None
    assert frame.ethertype is None or 0 <= frame.ethertype <= 0xffff


@st.composite
def mutated_frames(draw):
    """A seed frame with random byte edits, cuts and insertions.

    Checksums are recomputed after the edits half of the time, so that
    the mutation reaches the layers behind them.
    """
    data = bytearray(draw(st.sampled_from(SEED_FRAMES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(['set', 'cut', 'insert', 'delete']))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 'set' and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == 'cut':
            del data[position:]
        elif kind == 'insert':
            data[position:position] = draw(st.binary(min_size=1,
                                                      max_size=8))
        elif kind == 'delete':
            del data[position:position + draw(st.integers(1, 8))]
    if draw(st.booleans()):
        try:
            fix_ipv4_checksum(data)
            fix_udp_checksum(data)
        except (IndexError, struct.error, ValueError):
            pass
    return bytes(data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_parse_random_bytes_never_raises(data):
    check_frame(parse_frame(data))


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_frames())
def test_parse_mutated_frames_never_raises(data):
    check_frame(parse_frame(data))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_parse_random_options_never_raises(options):
    frame = parse_frame(dhcp_with_raw_options(b'\x63\x82\x53\x63' + options))

    check_frame(frame)
    assert frame.udp is not None
    if frame.error is None:
        assert frame.dhcp is not None
    else:
        assert frame.error.startswith('DHCP')


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xffffffff), st.integers(0, 0xffff),
       st.sampled_from(['0.0.0.0', '10.1.0.6']),
       st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=255)),
                max_size=8))
def test_dhcp_built_by_ryu_round_trips(xid, flags, ciaddr, options):
    options = [(code, value) for code, value in options
               if code not in (52, 53)]
    frame = parse_frame(dhcp_request_frame(
        3, xid=xid, flags=flags, ciaddr=ciaddr, options=options))

    assert frame.error is None
    assert frame.dhcp.xid == xid
    assert frame.dhcp.flags == flags
    assert frame.dhcp.ciaddr == ciaddr
    assert frame.dhcp_message_type == 3
    expected = {}
    for code, value in options:
        expected[code] = expected.get(code, b'') + value
    for code, value in expected.items():
        assert frame.dhcp_options[code] == value


def test_dhcp_message_is_ryu_object():
    frame = parse_frame(dhcp_request_frame(1))

    assert isinstance(frame.dhcp, dhcp.dhcp)
    assert isinstance(frame.dhcp.options, dhcp.options)

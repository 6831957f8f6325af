"""build_udp_frame gives the bytes ryu.lib.packet gives for the same frame.

The DHCP server builds its replies with ``build_udp_frame``.  Here every
frame is compared byte for byte with the same headers serialised by
``ryu.lib.packet``, and read back by ``parse_frame``.
"""

import ipaddress

from hypothesis import given, strategies as st
from ryu.lib.packet import ethernet, ipv4, packet, udp, vlan

from tmip_ryu import packets

macs = st.binary(min_size=6, max_size=6).map(lambda raw: raw.hex(':'))
addresses = st.integers(0, 2 ** 32 - 1).map(ipaddress.IPv4Address)
udp_ports = st.integers(0, 65535)
tags = st.tuples(st.sampled_from([vlan.vlan, vlan.svlan]),
                 st.integers(0, 7), st.integers(0, 1),
                 st.integers(0, 4095))


def ryu_frame(eth_src, eth_dst, ip_src, ip_dst, ports, payload, ttl,
              vlans):
    """The same frame, serialised by ryu.lib.packet."""
    protocols = [ipv4.ipv4(src=str(ip_src), dst=str(ip_dst), proto=17,
                           ttl=ttl),
                 udp.udp(ports[0], ports[1]), payload]
    return packets.build_frame(eth_src, eth_dst, 0x0800, protocols, vlans)


@given(eth_src=macs, eth_dst=macs, ip_src=addresses, ip_dst=addresses,
       ports=st.tuples(udp_ports, udp_ports),
       payload=st.binary(max_size=600), ttl=st.integers(1, 255),
       tag_values=st.lists(tags, max_size=2))
def test_frame_equals_ryu_serialisation(eth_src, eth_dst, ip_src, ip_dst,
                                        ports, payload, ttl, tag_values):
    vlans = tuple(cls(pcp, cfi, vid, 0x0800)
                  for cls, pcp, cfi, vid in tag_values)

    built = packets.build_udp_frame(eth_src, eth_dst, ip_src, ip_dst, ports,
                                    payload, ttl, vlans)
    expected = ryu_frame(eth_src, eth_dst, ip_src, ip_dst, ports, payload,
                         ttl, vlans)

    # ryu.lib.packet sends a computed UDP checksum of zero as zero; RFC 768
    # wants all ones, as build_udp_frame sends it.
    checksum_at = 14 + 4 * len(vlans) + 20 + 6
    if built != expected:
        assert built[checksum_at:checksum_at + 2] == b'\xff\xff'
        assert expected[checksum_at:checksum_at + 2] == b'\x00\x00'
        assert built[:checksum_at] == expected[:checksum_at]
        assert built[checksum_at + 2:] == expected[checksum_at + 2:]


@given(ip_src=addresses, ip_dst=addresses, payload=st.binary(max_size=300))
def test_frame_passes_checksum_validation(ip_src, ip_dst, payload):
    built = packets.build_udp_frame('02:00:00:00:00:01', '02:00:00:00:0a:01',
                                    ip_src, ip_dst, (67, 68), payload, 64)

    frame = packets.parse_frame(built)

    assert frame.udp is not None
    assert (frame.ipv4.src, frame.ipv4.dst) == (str(ip_src), str(ip_dst))
    assert 'checksum' not in (frame.error or '')


def test_ethernet_header_of_tagged_frame():
    tags = (vlan.svlan(1, 0, 100, 0x8100), vlan.vlan(0, 0, 7, 0x0800))

    built = packets.build_udp_frame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff',
                                    ipaddress.IPv4Address('10.1.0.1'),
                                    ipaddress.IPv4Address('10.1.0.2'),
                                    (67, 68), b'x', 64, tags)

    parsed = packet.Packet(built)
    assert parsed.get_protocol(ethernet.ethernet).ethertype == 0x88a8
    assert [p.vid for p in parsed.protocols[1:3]] == [100, 7]
    assert parsed.protocols[2].ethertype == 0x0800

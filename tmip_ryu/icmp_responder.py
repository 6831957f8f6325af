"""ICMP echo replies from a host's gateway address, as a pure function.

The gateway of each /30 exists only in the controller, so the controller
replies to pings to it.  ``echo_reply()`` builds the reply frame, and the
caller checks that the destination is the gateway of the sender's
binding.
"""

import ipaddress

from ryu.lib.packet import ether_types, icmp, in_proto, ipv4

from tmip_ryu import packets

REPLY_TTL = 64


def echo_reply(frame, gateway_mac):
    """Build the echo reply to an ICMP echo request, or return None.

    The reply comes from the request's destination address and
    ``gateway_mac``, with TTL 64 and the request's identifier, sequence
    number and data.  None for anything but a well-formed, unfragmented
    echo request between unicast addresses.  RFC 1122 3.2.2.6 lets a
    host discard echo requests to a broadcast or multicast address.

    NOTE: IP options of the request are not returned, although RFC 1122
    3.2.2.6 asks for Record Route and Timestamp to be updated and sent
    back.  Only a ping with ``-R`` or ``-T`` notices.
    """
    if frame is None or frame.icmp is None or frame.error is not None:
        return None
    request = frame.icmp
    if request.type != icmp.ICMP_ECHO_REQUEST or request.code != 0:
        return None
    source = ipaddress.IPv4Address(frame.ipv4.src)
    destination = ipaddress.IPv4Address(frame.ipv4.dst)
    if not (_is_unicast(source) and _is_unicast(destination)):
        return None
    if _is_group_mac(frame.eth.dst):
        return None

    echo = request.data
    reply = icmp.icmp(icmp.ICMP_ECHO_REPLY, 0, 0,
                      icmp.echo(echo.id, echo.seq, echo.data))
    ip_header = ipv4.ipv4(tos=frame.ipv4.tos, ttl=REPLY_TTL,
                          proto=in_proto.IPPROTO_ICMP,
                          src=str(destination), dst=str(source))
    return packets.build_frame(
        packets.normalise_mac(gateway_mac), frame.eth.src,
        ether_types.ETH_TYPE_IP, [ip_header, reply], frame.vlans)


def _is_unicast(address):
    return not (address.is_multicast or address.is_unspecified
                or address == ipaddress.IPv4Address('255.255.255.255'))


def _is_group_mac(mac):
    """Tell whether a MAC is broadcast or multicast (its I/G bit is set)."""
    return bool(int(mac[:2], 16) & 1)

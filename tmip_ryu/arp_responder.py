"""ARP replies for the virtual gateway and the uplinks, as pure functions.

Every host resolves its gateway address to the one virtual gateway MAC,
which stays valid in every cell.  ``arp_reply()`` decides whether a
host's request gets that reply.  With ``arp_request()``,
``arp_reply_for()`` and ``parse_arp_reply()`` the controller resolves
the next hop of a cell's uplink and replies for the uplink's own
address.  Nothing here sends a frame.
"""

import ipaddress
from dataclasses import dataclass, field

from ryu.lib.packet import arp, ether_types

from tmip_ryu import packets

BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'
UNKNOWN_MAC = '00:00:00:00:00:00'
UNSPECIFIED_ADDRESS = '0.0.0.0'


@dataclass(frozen=True, slots=True)
class ArpDecision:
    """A reply frame to send (or None) and the reason, for the log."""

    reply: bytes | None = field(repr=False)
    reason: str


def arp_reply(frame, binding, gateway_mac):
    """Build the reply to a host's ARP request for its gateway, if any.

    Only a request from the bound host itself (Ethernet and ARP sender
    MAC equal to ``binding.mac``, sender IP equal to ``binding.address``)
    for ``binding.gateway`` is answered,
    whether it was broadcast or unicast.  The reply carries
    ``gateway_mac``.  RFC 5227 probes (sender IP 0.0.0.0) and
    announcements (sender IP equal to target IP) get no reply, so a
    client that checks its new address finds no conflict.
    """
    if frame is None or frame.arp is None:
        return ArpDecision(None, 'not an ARP packet')
    if binding is None:
        return ArpDecision(None, 'sender %s has no binding' % frame.eth.src)
    request = frame.arp
    if request.opcode != arp.ARP_REQUEST:
        return ArpDecision(None, 'ARP reply from %s, not a request'
                           % request.src_mac)
    if frame.eth.src != binding.mac or request.src_mac != binding.mac:
        return ArpDecision(None, 'sender %s / %s is not the bound host %s'
                           % (frame.eth.src, request.src_mac, binding.mac))
    if request.src_ip == UNSPECIFIED_ADDRESS:
        return ArpDecision(None, 'ARP probe for %s (RFC 5227)'
                           % request.dst_ip)
    if request.src_ip == request.dst_ip:
        return ArpDecision(None, 'ARP announcement of %s' % request.src_ip)
    if request.src_ip != str(binding.address):
        return ArpDecision(None, 'sender address %s is not %s, the address '
                           'of %s' % (request.src_ip, binding.address,
                                      binding.mac))

    target = ipaddress.IPv4Address(request.dst_ip)
    if target != binding.gateway:
        return ArpDecision(None, 'target %s is not the gateway %s of %s'
                           % (target, binding.gateway, binding.mac))
    reply = _reply_frame(frame, packets.normalise_mac(gateway_mac),
                         str(binding.gateway))
    return ArpDecision(reply, 'answered %s is-at %s for %s'
                       % (target, gateway_mac, binding.mac))


def arp_request(src_mac, src_ip, target_ip):
    """Build a broadcast ARP request for ``target_ip`` from ``src_ip``.

    Raises ValueError for an invalid MAC or IPv4 address.
    """
    src_ip = str(ipaddress.IPv4Address(src_ip))
    target_ip = str(ipaddress.IPv4Address(target_ip))
    src_mac = packets.normalise_mac(src_mac)
    request = arp.arp_ip(arp.ARP_REQUEST, src_mac, src_ip, UNKNOWN_MAC,
                         target_ip)
    return packets.build_frame(src_mac, BROADCAST_MAC,
                               ether_types.ETH_TYPE_ARP, [request])


def arp_reply_for(src_mac, src_ip, frame):
    """Build the reply to an ARP request for ``src_ip``, or return None.

    The reply says ``src_ip`` is at ``src_mac``.  It serves a cell's
    uplink address, which a router outside TMip resolves.  A probe for
    that address gets a reply too, because RFC 5227 has the owner of an
    address defend it, so the prober sees the conflict.
    """
    if frame is None or frame.arp is None:
        return None
    request = frame.arp
    if request.opcode != arp.ARP_REQUEST:
        return None
    if ipaddress.IPv4Address(request.dst_ip) != ipaddress.IPv4Address(
            src_ip):
        return None
    if request.src_ip == request.dst_ip:
        return None
    return _reply_frame(frame, packets.normalise_mac(src_mac),
                        request.dst_ip)


def parse_arp_reply(frame):
    """Return (IP, MAC) of the sender of an ARP reply, or None.

    The IP is dotted-quad text and the MAC lower case, as ryu gives them.
    """
    if frame is None or frame.arp is None:
        return None
    reply = frame.arp
    if reply.opcode != arp.ARP_REPLY:
        return None
    if reply.src_ip == UNSPECIFIED_ADDRESS:
        return None
    return reply.src_ip, reply.src_mac


def _reply_frame(frame, src_mac, src_ip):
    """Build the ARP reply to the request in ``frame``."""
    request = frame.arp
    reply = arp.arp_ip(arp.ARP_REPLY, src_mac, src_ip, request.src_mac,
                       request.src_ip)
    return packets.build_frame(src_mac, request.src_mac,
                               ether_types.ETH_TYPE_ARP, [reply],
                               frame.vlans)

"""Turn perfdhcp's relayed DHCPv4 messages into client broadcasts and back.

Kea's perfdhcp (2.2) always acts as a relay agent for DHCPv4.  It sends
every DISCOVER and REQUEST from its own interface MAC, with ``giaddr``
set to its address and ``hops`` 1.  It waits for replies on UDP port 67
of that address.  A server that learns hosts from their first frame and
ignores relayed messages, as the TMip controller does, never answers it.

This script sits between two interfaces of one namespace.  Requests read
on ``--relay-side`` (a veth whose peer perfdhcp uses) leave on
``--client-side`` as the clients themselves would send them: from the
client hardware address (``chaddr``), 0.0.0.0:68 to 255.255.255.255:67,
``giaddr`` 0 and ``hops`` 0.  Replies read on ``--client-side`` (UDP 67 to
68, any destination MAC, so the interface is put in promiscuous mode)
go back to perfdhcp's address and port 67 with its ``giaddr`` restored.
Any other frame is ignored and counted.  UDP checksums are left zero,
which IPv4 allows.

Run inside the namespace, as root::

    dhcp_unrelay.py --relay-side pd1 --client-side h1-eth0 \\
        --reply-source 198.51.100.1 --stats /run/dir/unrelay.json

It stops on SIGTERM or SIGINT and writes its counters as JSON.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4

BOOTP_SERVER_PORT = 67
BOOTP_CLIENT_PORT = 68
BOOTREQUEST = 1
BOOTREPLY = 2
# Offsets inside the BOOTP message (RFC 2131 figure 1).
HOPS_OFFSET = 3
GIADDR_OFFSET = 24
CHADDR_OFFSET = 28
MIN_BOOTP_LENGTH = 236

ETHERNET = struct.Struct('!6s6sH')
IPV4 = struct.Struct('!BBHHHBBH4s4s')
UDP = struct.Struct('!HHHH')
BROADCAST_MAC = b'\xff' * 6
BROADCAST_ADDRESS = b'\xff' * 4
ZERO_ADDRESS = b'\0' * 4


class _Stop(Exception):
    """Raised by the signal handler to end the main loop."""


def _stop(_signum, _frame):
    raise _Stop()


def ipv4_checksum(header):
    """Return the Internet checksum of an IPv4 header (RFC 1071)."""
    if len(header) % 2:
        header += b'\0'
    total = sum(struct.unpack('!%dH' % (len(header) // 2), header))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def build_frame(eth_dst, eth_src, ip_src, ip_dst, src_port, dst_port,
                payload):
    """Return an Ethernet/IPv4/UDP frame carrying ``payload``."""
    udp_length = UDP.size + len(payload)
    header = IPV4.pack(0x45, 0, IPV4.size + udp_length, 0, 0x4000, 64,
                       socket.IPPROTO_UDP, 0, ip_src, ip_dst)
    checksum = ipv4_checksum(header)
    header = header[:10] + struct.pack('!H', checksum) + header[12:]
    return (ETHERNET.pack(eth_dst, eth_src, ETH_P_IP) + header
            + UDP.pack(src_port, dst_port, udp_length, 0) + payload)


def parse_bootp(frame):
    """Return (ip_src, ip_dst, src_port, dst_port, bootp) or None.

    None means the frame is not an unfragmented IPv4/UDP datagram with a
    BOOTP message of at least the fixed header's length.
    """
    if len(frame) < ETHERNET.size + IPV4.size + UDP.size:
        return None
    _dst, _src, ethertype = ETHERNET.unpack_from(frame)
    if ethertype != ETH_P_IP:
        return None
    fields = IPV4.unpack_from(frame, ETHERNET.size)
    version_ihl, total_length, flags_fragment = fields[0], fields[2], \
        fields[4]
    header_length = (version_ihl & 0x0f) * 4
    if version_ihl >> 4 != 4 or header_length < IPV4.size:
        return None
    if fields[6] != socket.IPPROTO_UDP or flags_fragment & 0x3fff:
        return None
    udp_start = ETHERNET.size + header_length
    end = min(len(frame), ETHERNET.size + total_length)
    if end < udp_start + UDP.size:
        return None
    src_port, dst_port, udp_length, _checksum = UDP.unpack_from(
        frame, udp_start)
    bootp = frame[udp_start + UDP.size:
                  min(end, udp_start + max(udp_length, UDP.size))]
    if len(bootp) < MIN_BOOTP_LENGTH:
        return None
    return fields[8], fields[9], src_port, dst_port, bootp


class Unrelay:
    """The two packet sockets and the translation between them."""

    def __init__(self, relay_side, client_side, reply_source):
        self.reply_source = socket.inet_aton(reply_source)
        self.relay_sock = self._open(relay_side, promiscuous=False)
        self.client_sock = self._open(client_side, promiscuous=True)
        self.relay_mac = self._mac_of(relay_side)
        # perfdhcp's MAC and address, learned from its first request.
        self.agent_mac = None
        self.agent_address = None
        self.counters = dict.fromkeys(
            ('requests', 'replies', 'ignored_relay_side',
             'ignored_client_side', 'replies_before_any_request',
             'send_errors'), 0)

    @staticmethod
    def _open(interface, promiscuous):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                             socket.htons(ETH_P_IP))
        sock.bind((interface, ETH_P_IP))
        if promiscuous:
            index = socket.if_nametoindex(interface)
            membership = struct.pack('iHH8s', index, PACKET_MR_PROMISC, 0,
                                     b'')
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
        return sock

    @staticmethod
    def _mac_of(interface):
        with open('/sys/class/net/%s/address' % interface) as address:
            return bytes.fromhex(address.read().strip().replace(':', ''))

    def run(self):
        """Translate frames until SIGTERM or SIGINT."""
        poller = select.poll()
        poller.register(self.relay_sock, select.POLLIN)
        poller.register(self.client_sock, select.POLLIN)
        handlers = {self.relay_sock.fileno(): self._from_relay_side,
                    self.client_sock.fileno(): self._from_client_side}
        socks = {self.relay_sock.fileno(): self.relay_sock,
                 self.client_sock.fileno(): self.client_sock}
        try:
            while True:
                for fd, _event in poller.poll(500):
                    self._drain(socks[fd], handlers[fd])
        except _Stop:
            pass

    def _drain(self, sock, handler):
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            # A packet socket also receives the frames it sent itself.
            if address[2] != PACKET_OUTGOING:
                handler(frame)

    def _from_relay_side(self, frame):
        parsed = parse_bootp(frame)
        if parsed is None or parsed[3] != BOOTP_SERVER_PORT or \
                parsed[4][0] != BOOTREQUEST:
            self.counters['ignored_relay_side'] += 1
            return
        _src, _dst, _sport, _dport, bootp = parsed
        giaddr = bootp[GIADDR_OFFSET:GIADDR_OFFSET + 4]
        if giaddr == ZERO_ADDRESS:
            self.counters['ignored_relay_side'] += 1
            return
        self.agent_mac = frame[6:12]
        self.agent_address = giaddr
        chaddr = bootp[CHADDR_OFFSET:CHADDR_OFFSET + 6]
        message = bytearray(bootp)
        message[HOPS_OFFSET] = 0
        message[GIADDR_OFFSET:GIADDR_OFFSET + 4] = ZERO_ADDRESS
        self._send(self.client_sock, build_frame(
            BROADCAST_MAC, chaddr, ZERO_ADDRESS, BROADCAST_ADDRESS,
            BOOTP_CLIENT_PORT, BOOTP_SERVER_PORT, bytes(message)))
        self.counters['requests'] += 1

    def _from_client_side(self, frame):
        parsed = parse_bootp(frame)
        if parsed is None or parsed[2] != BOOTP_SERVER_PORT or \
                parsed[3] != BOOTP_CLIENT_PORT or \
                parsed[4][0] != BOOTREPLY:
            self.counters['ignored_client_side'] += 1
            return
        if self.agent_address is None:
            self.counters['replies_before_any_request'] += 1
            return
        message = bytearray(parsed[4])
        message[GIADDR_OFFSET:GIADDR_OFFSET + 4] = self.agent_address
        self._send(self.relay_sock, build_frame(
            self.agent_mac, self.relay_mac, self.reply_source,
            self.agent_address, BOOTP_SERVER_PORT, BOOTP_SERVER_PORT,
            bytes(message)))
        self.counters['replies'] += 1

    def _send(self, sock, frame):
        try:
            sock.send(frame)
        except OSError:
            # A full socket buffer drops the frame, as a busy link would;
            # perfdhcp counts the exchange as lost.
            self.counters['send_errors'] += 1


def main(argv=None):
    """Parse the command line and translate until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--relay-side', required=True,
                        help='interface whose peer perfdhcp sends from')
    parser.add_argument('--client-side', required=True,
                        help='interface toward the DHCP server under test')
    parser.add_argument('--reply-source', required=True,
                        help='IPv4 source address of the replies handed to '
                             'perfdhcp; one on perfdhcp\'s subnet passes '
                             'reverse path filtering')
    parser.add_argument('--stats', required=True,
                        help='JSON file the counters are written to on exit')
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        unrelay = Unrelay(args.relay_side, args.client_side,
                          args.reply_source)
    except OSError as error:
        parser.exit(2, 'dhcp_unrelay: cannot open the interfaces: %s\n'
                    % error)
    started = time.monotonic()
    unrelay.run()
    counters = dict(unrelay.counters,
                    seconds=round(time.monotonic() - started, 3))
    partial = args.stats + '.part'
    with open(partial, 'w') as stats_file:
        json.dump(counters, stats_file)
    os.replace(partial, args.stats)
    return 0


if __name__ == '__main__':
    sys.exit(main())

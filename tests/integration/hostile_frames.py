"""Hand-built Ethernet frames, good and malformed, and a way to send them.

The builders return bytes and never check their arguments, so a test can
produce any header a hostile host could send: a wrong length, a wrong
checksum, a truncated option.  Every length and checksum is computed
unless the caller passes a value for it.

Run as a script inside a network namespace, the module sends or captures
raw frames on an interface through an AF_PACKET socket:

    python hostile_frames.py send IFACE [INTERVAL]   (hex frames on stdin)
    python hostile_frames.py sniff IFACE SECONDS     (hex frames on stdout)

``inject()``, ``inject_async()`` and ``Sniffer`` run those commands with
``ip netns exec``.
Only the standard library is imported, so that the script starts fast.
"""

import select
import socket
import struct
import subprocess
import sys
import time

BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'
ZERO_MAC = '00:00:00:00:00:00'

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_8021Q = 0x8100
ETH_TYPE_8021AD = 0x88a8
ETH_TYPE_LLDP = 0x88cc
LLDP_MULTICAST_MAC = '01:80:c2:00:00:0e'

ARP_REQUEST = 1
ARP_REPLY = 2

IP_PROTO_ICMP = 1
IP_PROTO_UDP = 17

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
DHCP_MAGIC_COOKIE = bytes([99, 130, 83, 99])
DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPDECLINE = 4
DHCPACK = 5
DHCPNAK = 6
DHCPRELEASE = 7
OPTION_REQUESTED_ADDRESS = 50
OPTION_MESSAGE_TYPE = 53
OPTION_SERVER_ID = 54
OPTION_END = 255

_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_SCRIPT = __file__


def mac_bytes(mac):
    """Return the six bytes of a MAC address written aa:bb:cc:dd:ee:ff."""
    return bytes.fromhex(mac.replace(':', ''))


def ip_bytes(address):
    """Return the four bytes of a dotted-quad IPv4 address."""
    return socket.inet_aton(address)


def internet_checksum(data):
    """Return the RFC 1071 checksum of ``data``."""
    if len(data) % 2:
        data += b'\x00'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total > 0xffff:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def ethernet(dst, src, ethertype, payload, vlans=()):
    """Build an Ethernet frame; ``vlans`` are (TPID, TCI) pairs, outer first.

    Each TPID is written before its TCI, so the EtherType field of the
    frame contains the first TPID and the last tag is followed by
    ``ethertype``.
    """
    header = mac_bytes(dst) + mac_bytes(src)
    for tpid, tci in vlans:
        header += struct.pack('!HH', tpid, tci)
    return header + struct.pack('!H', ethertype) + payload


def arp(opcode, sender_mac, sender_ip, target_mac, target_ip, hwtype=1,
        proto=ETH_TYPE_IPV4, hlen=6, plen=4):
    """Build an ARP packet (28 bytes for Ethernet and IPv4)."""
    return (struct.pack('!HHBBH', hwtype, proto, hlen, plen, opcode)
            + mac_bytes(sender_mac) + ip_bytes(sender_ip)
            + mac_bytes(target_mac) + ip_bytes(target_ip))


def ipv4(src, dst, proto, payload, ttl=64, ihl=5, options=b'',
         total_length=None, checksum=None, version=4, flags_offset=0,
         identification=0):
    """Build an IPv4 packet; length and checksum are computed unless given.

    ``ihl`` is written as given, whatever the length of ``options``, so a
    header can claim more or fewer words than it has.
    """
    if total_length is None:
        total_length = 20 + len(options) + len(payload)
    header = struct.pack('!BBHHHBBH4s4s', version << 4 | (ihl & 0xf), 0,
                         total_length & 0xffff, identification,
                         flags_offset, ttl, proto, 0, ip_bytes(src),
                         ip_bytes(dst)) + options
    if checksum is None:
        checksum = internet_checksum(header)
    header = header[:10] + struct.pack('!H', checksum) + header[12:]
    return header + payload


def udp(src, dst, src_port, dst_port, payload, length=None, checksum=None):
    """Build a UDP datagram with the checksum over its IPv4 pseudo-header."""
    if length is None:
        length = 8 + len(payload)
    datagram = struct.pack('!HHHH', src_port, dst_port, length & 0xffff,
                           0) + payload
    if checksum is None:
        pseudo_header = (ip_bytes(src) + ip_bytes(dst)
                         + struct.pack('!BBH', 0, IP_PROTO_UDP,
                                       len(datagram)))
        checksum = internet_checksum(pseudo_header + datagram) or 0xffff
    return datagram[:6] + struct.pack('!H', checksum) + datagram[8:]


def icmp_echo(identifier, sequence, data, checksum=None):
    """Build an ICMP echo request."""
    message = struct.pack('!BBHHH', 8, 0, 0, identifier, sequence) + data
    if checksum is None:
        checksum = internet_checksum(message)
    return message[:2] + struct.pack('!H', checksum) + message[4:]


def dhcp_options(*pairs):
    """Encode (code, value) option pairs and END, as one options area."""
    area = b''
    for code, value in pairs:
        area += bytes([code, len(value)]) + value
    return area + bytes([OPTION_END])


def bootp(chaddr, options_area, op=1, xid=0x5ca1ab1e, ciaddr='0.0.0.0',
          flags=0x8000, cookie=DHCP_MAGIC_COOKIE, htype=1, hlen=6,
          giaddr='0.0.0.0'):
    """Build a BOOTP/DHCP message: fixed part, magic cookie and options."""
    fixed = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', op, htype, hlen, 0,
                        xid, 0, flags, ip_bytes(ciaddr), bytes(4), bytes(4),
                        ip_bytes(giaddr), mac_bytes(chaddr), b'', b'')
    return fixed + cookie + options_area


def dhcp_frame(src_mac, message, src_ip='0.0.0.0',
               dst_ip='255.255.255.255', dst_mac=BROADCAST_MAC, vlans=()):
    """Wrap a BOOTP message in UDP 68 -> 67, IPv4 and Ethernet."""
    datagram = udp(src_ip, dst_ip, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
                   message)
    packet = ipv4(src_ip, dst_ip, IP_PROTO_UDP, datagram)
    return ethernet(dst_mac, src_mac, ETH_TYPE_IPV4, packet, vlans)


def dhcp_request(src_mac, message_type, *pairs, **fields):
    """Build a whole DHCP client frame with option 53 and ``pairs``."""
    area = dhcp_options((OPTION_MESSAGE_TYPE, bytes([message_type])),
                        *pairs)
    frame_fields = {key: fields.pop(key)
                    for key in ('src_ip', 'dst_ip', 'dst_mac')
                    if key in fields}
    return dhcp_frame(src_mac, bootp(src_mac, area, **fields),
                      **frame_fields)


def udp_frame(src_mac, dst_mac, src_ip, dst_ip, payload, src_port=40000,
              dst_port=40000):
    """Build a well-formed Ethernet/IPv4/UDP frame."""
    datagram = udp(src_ip, dst_ip, src_port, dst_port, payload)
    return ethernet(dst_mac, src_mac, ETH_TYPE_IPV4,
                    ipv4(src_ip, dst_ip, IP_PROTO_UDP, datagram))


def lldp_frame(src_mac, chassis_id, port_id, ttl=120):
    """Build an LLDP frame with locally assigned chassis and port ids.

    Ryu's link discovery writes its chassis id as ``dpid:<16 hex>`` and
    its port id as a four-byte port number (port component subtype).
    """
    def tlv(kind, value):
        return struct.pack('!H', kind << 9 | len(value)) + value

    lldpdu = (tlv(1, b'\x07' + chassis_id) + tlv(2, b'\x02' + port_id)
              + tlv(3, struct.pack('!H', ttl)) + tlv(0, b''))
    return ethernet(LLDP_MULTICAST_MAC, src_mac, ETH_TYPE_LLDP, lldpdu)


def parse_dhcp_reply(frame):
    """Return (message type, yiaddr) of a DHCP server frame, or None."""
    if len(frame) < 14:
        return None
    offset = 14
    ethertype = struct.unpack_from('!H', frame, 12)[0]
    while ethertype in (ETH_TYPE_8021Q, ETH_TYPE_8021AD) and \
            len(frame) >= offset + 4:
        ethertype = struct.unpack_from('!H', frame, offset + 2)[0]
        offset += 4
    if ethertype != ETH_TYPE_IPV4 or len(frame) < offset + 28:
        return None

    udp_at = offset + (frame[offset] & 0xf) * 4
    if frame[offset + 9] != IP_PROTO_UDP or len(frame) < udp_at + 8:
        return None
    src_port, dst_port = struct.unpack_from('!HH', frame, udp_at)
    if (src_port, dst_port) != (DHCP_SERVER_PORT, DHCP_CLIENT_PORT):
        return None

    message = frame[udp_at + 8:]
    if len(message) < 240 or message[236:240] != DHCP_MAGIC_COOKIE:
        return None
    yiaddr = socket.inet_ntoa(message[16:20])
    position = 240
    while position + 1 < len(message):
        code = message[position]
        if code == 0:
            position += 1
            continue
        if code == OPTION_END:
            break
        length = message[position + 1]
        if code == OPTION_MESSAGE_TYPE and length == 1:
            return message[position + 2], yiaddr
        position += 2 + length
    return None


# Running the script inside a namespace.

def inject(namespace, frames, interval=0.0, python=sys.executable):
    """Send raw frames from ``eth0`` of a namespace; raise on failure."""
    lines = ''.join(frame.hex() + '\n' for frame in frames)
    result = subprocess.run(
        ['ip', 'netns', 'exec', namespace, python, _SCRIPT, 'send', 'eth0',
         str(interval)], input=lines, capture_output=True, text=True,
        timeout=60)
    if result.returncode != 0:
        raise RuntimeError('sending %d frames from %s failed: %s'
                           % (len(frames), namespace, result.stderr.strip()))
    return int(result.stdout.strip() or 0)


def inject_async(namespace, frames, interval=0.0, python=sys.executable):
    """Start sending raw frames from a namespace; return the Popen.

    The caller waits for the returned process, for example to let two
    namespaces send at the same time.
    """
    process = subprocess.Popen(
        ['ip', 'netns', 'exec', namespace, python, _SCRIPT, 'send', 'eth0',
         str(interval)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True, start_new_session=True)
    process.stdin.write(''.join(frame.hex() + '\n' for frame in frames))
    process.stdin.close()
    return process


class Sniffer:
    """Frames that arrive at ``eth0`` of a namespace for a few seconds."""

    def __init__(self, namespace, seconds, python=sys.executable):
        self.process = subprocess.Popen(
            ['ip', 'netns', 'exec', namespace, python, _SCRIPT, 'sniff',
             'eth0', str(seconds)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        ready = self.process.stdout.readline().strip()
        if ready != 'ready':
            self.process.kill()
            raise RuntimeError('sniffer in %s did not start: %s %s'
                               % (namespace, ready,
                                  self.process.stderr.read().strip()))
        self.seconds = seconds

    def frames(self):
        """Wait for the capture to end; return the frames received."""
        output, _ = self.process.communicate(timeout=self.seconds + 10)
        return [bytes.fromhex(line) for line in output.split()]

    def first(self, predicate):
        """Return the first frame for which ``predicate`` is true, or None.

        Frames are read as they arrive; the capture is stopped at the
        first match or when its time is up.
        """
        try:
            for line in self.process.stdout:
                frame = bytes.fromhex(line.strip())
                if predicate(frame):
                    return frame
            return None
        finally:
            self.stop()

    def stop(self):
        """Stop the capture if it still runs (clean-up after a failure)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _send(interface, interval):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((interface, 0))
    sent = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        sock.send(bytes.fromhex(line))
        sent += 1
        if interval:
            time.sleep(interval)
    print(sent)


def _sniff(interface, seconds):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                         socket.htons(_ETH_P_ALL))
    sock.bind((interface, 0))
    print('ready', flush=True)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            continue
        frame, address = sock.recvfrom(65535)
        if address[2] != _PACKET_OUTGOING:
            print(frame.hex(), flush=True)


def main(argv):
    """Run ``send IFACE [INTERVAL]`` or ``sniff IFACE SECONDS``."""
    if len(argv) >= 2 and argv[0] == 'send':
        _send(argv[1], float(argv[2]) if len(argv) > 2 else 0.0)
    elif len(argv) == 3 and argv[0] == 'sniff':
        _sniff(argv[1], float(argv[2]))
    else:
        sys.exit('usage: hostile_frames.py send IFACE [INTERVAL] | '
                 'sniff IFACE SECONDS')


if __name__ == '__main__':
    main(sys.argv[1:])

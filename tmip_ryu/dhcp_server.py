"""The DHCP server of every cell, as a pure decision function.

``DhcpServer.handle()`` takes a parsed DHCP message and the sender's
binding and returns a ``DhcpDecision``.  The decision names the action
(offer, ack, nak, release, decline, inform or ignore) and carries the
whole reply frame to send as a packet-out.  It also says whether the
register must renew the lease first.  The server sends nothing and
changes no state.

Each host has its own /30, so its server identifier (option 54) is its
gateway address, and any cell can serve it: the address never depends on
the cell.  The rules per client state follow RFC 2131 section 4.3 and are
described in docs/dhcp.rst.
"""

import ipaddress
import struct
import time
from dataclasses import dataclass, field

from tmip_ryu import packets

DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPDECLINE = 4
DHCPACK = 5
DHCPNAK = 6
DHCPRELEASE = 7
DHCPINFORM = 8
MESSAGE_TYPE_NAMES = {
    DHCPDISCOVER: 'DHCPDISCOVER', DHCPOFFER: 'DHCPOFFER',
    DHCPREQUEST: 'DHCPREQUEST', DHCPDECLINE: 'DHCPDECLINE',
    DHCPACK: 'DHCPACK', DHCPNAK: 'DHCPNAK', DHCPRELEASE: 'DHCPRELEASE',
    DHCPINFORM: 'DHCPINFORM',
}

OPTION_SUBNET_MASK = 1
OPTION_ROUTER = 3
OPTION_BROADCAST_ADDRESS = 28
OPTION_REQUESTED_ADDRESS = 50
OPTION_LEASE_TIME = 51
OPTION_MESSAGE_TYPE = 53
OPTION_SERVER_ID = 54
OPTION_PARAMETER_REQUEST_LIST = 55
OPTION_MESSAGE = 56
OPTION_RENEWAL_TIME = 58
OPTION_REBINDING_TIME = 59
OPTION_CLIENT_ID = 61
# Options that this server always sends or that belong to the protocol
# itself, so extra_options may not override them.
RESERVED_OPTIONS = frozenset({
    0, OPTION_SUBNET_MASK, OPTION_ROUTER, OPTION_BROADCAST_ADDRESS,
    OPTION_REQUESTED_ADDRESS, OPTION_LEASE_TIME, 52, OPTION_MESSAGE_TYPE,
    OPTION_SERVER_ID, OPTION_PARAMETER_REQUEST_LIST, OPTION_MESSAGE,
    OPTION_RENEWAL_TIME, OPTION_REBINDING_TIME, OPTION_CLIENT_ID, 255,
})

BROADCAST_FLAG = 0x8000
BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'
BROADCAST_ADDRESS = ipaddress.IPv4Address('255.255.255.255')
UNSPECIFIED_ADDRESS = ipaddress.IPv4Address('0.0.0.0')
# A BOOTP message (RFC 951) with its 64-octet vendor area is 300 octets,
# and replies are padded to that size for clients that expect it.
BOOTP_MIN_MESSAGE_LEN = 300
MAX_LEASE_TIME = 0xfffffffe   # 0xffffffff means an infinite lease
REPLY_TTL = 64

ACTIONS = ('offer', 'ack', 'nak', 'release', 'decline', 'inform', 'ignore')


@dataclass(frozen=True, slots=True)
class DhcpDecision:
    """Outcome of one DHCP message, for the controller to carry out.

    ``reply`` is a whole Ethernet frame or None.  When ``renew`` is set,
    the controller renews the lease (for ``lease_time`` seconds, recording
    ``client_id``) and sends the reply only once the renewal is stored.
    """

    action: str
    reply: bytes | None = field(default=None, repr=False)
    renew: bool = False
    client_id: bytes | None = None
    reason: str = ''
    lease_time: int | None = None


class _Ignored(Exception):
    """A DHCP message that gets no reply.  The exception text is why."""


class DhcpServer:
    """DHCP server for hosts that have a binding in the register.

    ``lease_time`` (seconds) is granted on every DHCPACK to a REQUEST.
    ``extra_options`` maps further option codes (for example 6, domain
    name servers) to their encoded values.  Each is sent only to a client
    that lists it in its parameter request list (option 55).  An invalid
    ``gateway_mac``, ``lease_time`` or ``extra_options`` raises
    ValueError.
    """

    def __init__(self, gateway_mac, lease_time, clock=time.time,
                 extra_options=None):
        self.gateway_mac = packets.normalise_mac(gateway_mac)
        self.lease_time = _check_lease_time(lease_time)
        self.clock = clock
        self.extra_options = _check_extra_options(extra_options or {})
        self._handlers = {
            DHCPDISCOVER: self._discover,
            DHCPREQUEST: self._request,
            DHCPDECLINE: self._decline,
            DHCPRELEASE: self._release,
            DHCPINFORM: self._inform,
        }

    def handle(self, frame, binding):
        """Decide the reply to one frame from a client with ``binding``.

        Returns a DhcpDecision, or None for a client without a binding
        because RFC 2131 4.3.2 has a server stay silent for a client it
        has no record of.  Never raises for a frame from parse_frame().
        """
        if binding is None:
            return None
        client_id = None
        if frame is not None:
            client_id = frame.dhcp_options.get(OPTION_CLIENT_ID)
        try:
            message_type = self._check_request(frame, binding)
            handler = self._handlers.get(message_type)
            if handler is None:
                raise _Ignored('%s is not a message a server handles'
                               % _type_name(message_type))
            return handler(frame, binding, client_id)
        except _Ignored as exc:
            return DhcpDecision('ignore', client_id=client_id,
                                reason=str(exc))

    def _check_request(self, frame, binding):
        """Return the message type of a valid BOOTREQUEST, or raise."""
        if frame is None:
            raise _Ignored('no frame')
        if frame.error is not None:
            raise _Ignored('malformed frame: %s' % frame.error)
        message = frame.dhcp
        if message is None:
            raise _Ignored('not a DHCP message')
        if frame.eth.src != binding.mac:
            raise _Ignored('sender %s is not the bound host %s'
                           % (frame.eth.src, binding.mac))
        if message.op != packets.BOOTREQUEST:
            raise _Ignored('BOOTP op %d is not BOOTREQUEST' % message.op)
        if message.giaddr != '0.0.0.0':
            raise _Ignored('relayed message (giaddr %s): relay agents are '
                           'not supported' % message.giaddr)
        message_type = frame.dhcp_options.get(OPTION_MESSAGE_TYPE)
        if message_type is None:
            raise _Ignored('message type option (53) missing')
        if len(message_type) != 1:
            raise _Ignored('message type option (53) has length %d, '
                           'expected 1' % len(message_type))
        return message_type[0]

    # Message handlers, one per client message type (RFC 2131 4.3.1-4.3.5).

    def _discover(self, frame, binding, client_id):
        lease_time = self._remaining_lease(binding)
        reply = self._reply(frame, binding, DHCPOFFER,
                            yiaddr=binding.address, lease_time=lease_time)
        return DhcpDecision('offer', reply, client_id=client_id,
                            reason='offered %s' % binding.address,
                            lease_time=lease_time)

    def _request(self, frame, binding, client_id):
        state, address = self._classify_request(frame, binding)
        if address != binding.address:
            reason = ('%s: %s is not the address of this client (%s)'
                      % (state, address, binding.address))
            return self._nak(frame, binding, client_id, reason)

        reply = self._reply(frame, binding, DHCPACK,
                            yiaddr=binding.address,
                            lease_time=self.lease_time)
        return DhcpDecision('ack', reply, renew=True, client_id=client_id,
                            reason='%s: acknowledged %s'
                            % (state, binding.address),
                            lease_time=self.lease_time)

    def _classify_request(self, frame, binding):
        """Return the client state of a DHCPREQUEST and the address it wants.

        RFC 2131 4.3.2 distinguishes the states by option 54 (server
        identifier), option 50 (requested address) and ciaddr.
        """
        options = frame.dhcp_options
        server_id = _address_option(options, OPTION_SERVER_ID)
        requested = _address_option(options, OPTION_REQUESTED_ADDRESS)
        ciaddr = ipaddress.IPv4Address(frame.dhcp.ciaddr)
        if server_id is not None and server_id != binding.gateway:
            raise _Ignored('client selected server %s, not %s'
                           % (server_id, binding.gateway))

        if ciaddr == UNSPECIFIED_ADDRESS:
            state = 'SELECTING' if server_id is not None else 'INIT-REBOOT'
            if requested is None:
                raise _Ignored('DHCPREQUEST in %s without a requested '
                               'address (option 50)' % state)
            return state, requested

        # RENEWING is unicast to the server identifier and REBINDING is
        # broadcast.  A unicast to any other address is for another server.
        destination = ipaddress.IPv4Address(frame.ipv4.dst)
        if destination == binding.gateway:
            state = 'RENEWING'
        elif destination == BROADCAST_ADDRESS:
            state = 'REBINDING'
        else:
            raise _Ignored('DHCPREQUEST sent to %s, not to this server %s'
                           % (destination, binding.gateway))
        if requested is not None and requested != ciaddr:
            raise _Ignored('%s: requested address %s differs from ciaddr '
                           '%s' % (state, requested, ciaddr))
        return state, ciaddr

    def _nak(self, frame, binding, client_id, reason):
        reply = self._reply(frame, binding, DHCPNAK,
                            yiaddr=UNSPECIFIED_ADDRESS, message=reason)
        return DhcpDecision('nak', reply, client_id=client_id,
                            reason=reason)

    def _decline(self, frame, binding, client_id):
        self._check_server_id(frame, binding)
        declined = _address_option(frame.dhcp_options,
                                   OPTION_REQUESTED_ADDRESS)
        if declined != binding.address:
            raise _Ignored('DHCPDECLINE of %s, not of the address of this '
                           'client (%s)' % (declined, binding.address))
        return DhcpDecision('decline', client_id=client_id,
                            reason='client declined %s: address in use'
                            % binding.address)

    def _release(self, frame, binding, client_id):
        self._check_server_id(frame, binding)
        released = ipaddress.IPv4Address(frame.dhcp.ciaddr)
        if released != binding.address:
            raise _Ignored('DHCPRELEASE of %s, not of the address of this '
                           'client (%s)' % (released, binding.address))
        return DhcpDecision('release', client_id=client_id,
                            reason='client released %s' % binding.address)

    def _inform(self, frame, binding, client_id):
        # Some clients leave ciaddr zero in DHCPINFORM, so the IP source
        # is taken as the address they use.
        address = ipaddress.IPv4Address(frame.dhcp.ciaddr)
        if address == UNSPECIFIED_ADDRESS:
            address = ipaddress.IPv4Address(frame.ipv4.src)
        if address != binding.address:
            raise _Ignored('DHCPINFORM from %s, not from the address of '
                           'this client (%s)' % (address, binding.address))
        reply = self._reply(frame, binding, DHCPACK,
                            yiaddr=UNSPECIFIED_ADDRESS, unicast_to=address)
        return DhcpDecision('inform', reply, client_id=client_id,
                            reason='sent parameters for %s' % address)

    def _check_server_id(self, frame, binding):
        server_id = _address_option(frame.dhcp_options, OPTION_SERVER_ID)
        if server_id is not None and server_id != binding.gateway:
            raise _Ignored('message for server %s, not %s'
                           % (server_id, binding.gateway))

    def _remaining_lease(self, binding):
        """Return the seconds left on the binding's lease, or a full lease.

        RFC 2131 4.3.1: a client that already has an address is offered
        the expiration time it already has.
        """
        expires = binding.lease_start + binding.lease_time
        remaining = int(expires - self.clock())
        if remaining < 1:
            return self.lease_time
        return min(remaining, MAX_LEASE_TIME)

    # Building replies.

    def _reply(self, frame, binding, message_type, yiaddr, lease_time=None,
               message=None, unicast_to=None):
        """Build the reply frame to ``frame`` (RFC 2131 4.1 and 4.3).

        The message is packed with struct, because this runs twice for
        every new host and ``ryu.lib.packet`` takes nine times as long.
        """
        request = frame.dhcp
        options = self._reply_options(frame, binding, message_type,
                                      lease_time, message)
        ciaddr = request.ciaddr if message_type == DHCPACK else '0.0.0.0'
        chaddr = bytes.fromhex(request.chaddr.replace(':', ''))
        bootp = struct.pack(
            packets.BOOTP_FORMAT, packets.BOOTREPLY, packets.HTYPE_ETHERNET,
            len(chaddr), 0, request.xid, 0, request.flags,
            ipaddress.IPv4Address(ciaddr).packed, yiaddr.packed,
            bytes(4), ipaddress.IPv4Address(request.giaddr).packed,
            chaddr, b'', b'')
        payload = bootp + packets.DHCP_MAGIC_COOKIE + b''.join(options)

        ip_dst, eth_dst = _destination(request, message_type, yiaddr,
                                       unicast_to)
        return packets.build_udp_frame(
            self.gateway_mac, eth_dst, binding.gateway,
            ipaddress.IPv4Address(ip_dst),
            (packets.DHCP_SERVER_PORT, packets.DHCP_CLIENT_PORT), payload,
            REPLY_TTL, frame.vlans)

    def _reply_options(self, frame, binding, message_type, lease_time,
                       message):
        """Return the option list of a reply, ending in END and padding.

        RFC 2131 table 3: a DHCPNAK carries only 53, 54, 56 and 61.
        RFC 6842: the client identifier is echoed in every reply.
        """
        options = [
            _option(OPTION_MESSAGE_TYPE, bytes([message_type])),
            _option(OPTION_SERVER_ID, binding.gateway.packed),
        ]
        if lease_time is not None:
            options += [
                _option(OPTION_LEASE_TIME, _seconds(lease_time)),
                _option(OPTION_RENEWAL_TIME, _seconds(lease_time // 2)),
                _option(OPTION_REBINDING_TIME,
                        _seconds(lease_time * 7 // 8)),
            ]
        if message_type != DHCPNAK:
            options += [
                _option(OPTION_SUBNET_MASK, binding.netmask.packed),
                _option(OPTION_ROUTER, binding.gateway.packed),
                _option(OPTION_BROADCAST_ADDRESS, binding.broadcast.packed),
            ]
            options += self._requested_extra_options(frame)
        if message is not None:
            options.append(_option(OPTION_MESSAGE,
                                   message.encode('ascii', 'replace')[:255]))
        client_id = frame.dhcp_options.get(OPTION_CLIENT_ID)
        if client_id is not None:
            options += _long_option(OPTION_CLIENT_ID, client_id)

        # END, then PAD up to the BOOTP minimum message size.
        length = packets.DHCP_MIN_LEN + sum(len(o) for o in options)
        padding = max(0, BOOTP_MIN_MESSAGE_LEN - length - 1)
        options.append(bytes([packets.OPTION_END]) + bytes(padding))
        return options

    def _requested_extra_options(self, frame):
        requested = frame.dhcp_options.get(OPTION_PARAMETER_REQUEST_LIST,
                                           b'')
        options = []
        for code in dict.fromkeys(requested):
            value = self.extra_options.get(code)
            if value is not None:
                options += _long_option(code, value)
        return options


def _destination(request, message_type, yiaddr, unicast_to):
    """Return the (IP, MAC) destination of a reply (RFC 2131 4.1).

    With giaddr zero, a DHCPNAK is always broadcast.  Other replies go
    by unicast to ciaddr when the client set it, by broadcast when the
    client set the broadcast flag, and otherwise by unicast to yiaddr
    and the client's MAC.
    """
    if message_type == DHCPNAK:
        return BROADCAST_ADDRESS, BROADCAST_MAC
    if unicast_to is not None:
        return unicast_to, request.chaddr
    ciaddr = ipaddress.IPv4Address(request.ciaddr)
    if ciaddr != UNSPECIFIED_ADDRESS:
        return ciaddr, request.chaddr
    if request.flags & BROADCAST_FLAG:
        return BROADCAST_ADDRESS, BROADCAST_MAC
    return yiaddr, request.chaddr


def _address_option(options, code):
    """Return an IPv4 address option as IPv4Address, or None if absent."""
    value = options.get(code)
    if value is None:
        return None
    if len(value) != 4:
        raise _Ignored('option %d has length %d, expected 4'
                       % (code, len(value)))
    return ipaddress.IPv4Address(value)


def _option(code, value):
    """Return one option as its code, length and value bytes."""
    return bytes([code, len(value)]) + value


def _long_option(code, value):
    """Return ``value`` as one option, or split per RFC 3396 if long."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    return [_option(code, chunk) for chunk in chunks or [b'']]


def _seconds(value):
    return int(value).to_bytes(4, 'big')


def _type_name(message_type):
    return MESSAGE_TYPE_NAMES.get(message_type,
                                  'message type %d' % message_type)


def _check_lease_time(lease_time):
    if not isinstance(lease_time, int) or \
            not 1 <= lease_time <= MAX_LEASE_TIME:
        raise ValueError('invalid lease time %r: expected whole seconds '
                         'from 1 to %d' % (lease_time, MAX_LEASE_TIME))
    return lease_time


def _check_extra_options(extra_options):
    checked = {}
    for code, value in extra_options.items():
        if not isinstance(code, int) or not 1 <= code <= 254 or \
                code in RESERVED_OPTIONS:
            raise ValueError('invalid extra DHCP option code %r: use 1-254 '
                             'except the options this server sets itself'
                             % (code,))
        if not isinstance(value, bytes):
            raise ValueError('DHCP option %d value must be bytes, got %r'
                             % (code, type(value).__name__))
        checked[code] = value
    return checked

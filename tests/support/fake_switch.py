"""A fake Ryu datapath that records what the controller sends it.

It serializes every message as Ryu's Datapath.send_msg does, so each one
is encoded as it would be on the wire.  Flow-mods that the controller
encodes itself (``ofp_wire.FlowModMessage``), alone or inside a bundle
add, are decoded back with Ryu's OpenFlow parser and recorded as Ryu's
OFPFlowMod objects: tests inspect them like any Ryu message, and Ryu's
decoder checks every such flow-mod that the unit tests send.  What the
fake cannot show (how OVS applies the messages) the integration tests
check.
"""

import struct

from ryu.ofproto import (ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser,
                         ofproto_v1_4, ofproto_v1_4_parser)

from tmip_ryu.ofp_wire import FlowModMessage

_VERSIONS = {
    ofproto_v1_3.OFP_VERSION: (ofproto_v1_3, ofproto_v1_3_parser),
    ofproto_v1_4.OFP_VERSION: (ofproto_v1_4, ofproto_v1_4_parser),
}


def decode_message(datapath, buf):
    """Parse one serialized OpenFlow message with Ryu's parser.

    Raises AssertionError when the bytes do not hold exactly one whole
    message that Ryu can parse.
    """
    buf = bytes(buf)
    version, msg_type, length, xid = ofproto_parser.header(buf)
    assert length == len(buf), (
        'header length %d != %d bytes sent' % (length, len(buf)))
    parsed = ofproto_parser.msg(datapath, version, msg_type, length, xid,
                                buf)
    assert parsed is not None, 'Ryu cannot parse message type %d' % msg_type
    return parsed


class FakeDatapath:
    """Records sent messages; assigns transaction ids like Ryu does."""

    def __init__(self, dpid, version=ofproto_v1_4.OFP_VERSION):
        self.id = dpid
        self.ofproto, self.ofproto_parser = _VERSIONS[version]
        self.xid = 0
        self.sent = []

    def set_xid(self, message):
        self.xid += 1
        message.set_xid(self.xid)
        return self.xid

    def send_msg(self, message):
        assert isinstance(message, self.ofproto_parser.MsgBase)
        if message.xid is None:
            self.set_xid(message)
        message.serialize()
        self.sent.append(self._decoded(message))
        return True

    def send(self, buf):
        """Record each message of a buffer written to the switch at once.

        Ryu has no parser for bundle adds and barrier requests, because
        only controllers send them.  Those two are rebuilt as Ryu objects
        from their fields, and the flow-mod inside a bundle add is decoded
        with Ryu's parser.
        """
        buf = bytes(buf)
        while buf:
            version, msg_type, length, xid = ofproto_parser.header(buf)
            assert version == self.ofproto.OFP_VERSION
            assert 8 <= length <= len(buf), 'truncated message'
            message, buf = buf[:length], buf[length:]
            if msg_type == self.ofproto.OFPT_BARRIER_REQUEST:
                assert length == 8
                decoded = self.ofproto_parser.OFPBarrierRequest(self)
            elif msg_type == getattr(self.ofproto,
                                     'OFPT_BUNDLE_ADD_MESSAGE', None):
                bundle_id, _, flags = struct.unpack_from('!IHH', message, 8)
                decoded = self.ofproto_parser.OFPBundleAddMsg(
                    self, bundle_id, flags, decode_message(self, message[16:]),
                    [])
            else:
                decoded = decode_message(self, message)
            decoded.xid = xid
            self.sent.append(decoded)
        return True

    def _decoded(self, message):
        """Return a Ryu object in place of a self-encoded flow-mod."""
        if isinstance(message, FlowModMessage):
            return decode_message(self, message.buf)
        inner = getattr(message, 'message', None)
        if type(message).__name__ == 'OFPBundleAddMsg' and \
                isinstance(inner, FlowModMessage):
            decoded = decode_message(self, inner.buf)
            # The bundle add carries the inner message's bytes after its
            # own 16-byte header.
            assert bytes(message.buf[16:16 + len(inner.buf)]) == \
                bytes(inner.buf)
            message.message = decoded
        return message

    def take(self):
        """Return the messages sent since the last call, and forget them."""
        sent, self.sent = self.sent, []
        return sent

    def of_type(self, name):
        """Return sent messages whose class is named ``name``."""
        return [m for m in self.sent if type(m).__name__ == name]

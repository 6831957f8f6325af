"""A fake Ryu datapath that records what the controller sends it.

It uses Ryu's real OpenFlow 1.3 or 1.4 encoder, so every message the
controller sends is serialized as it would be on the wire; what it
cannot show (how OVS applies the messages) the integration tests check.
"""

from ryu.ofproto import (ofproto_v1_3, ofproto_v1_3_parser, ofproto_v1_4,
                         ofproto_v1_4_parser)

_VERSIONS = {
    ofproto_v1_3.OFP_VERSION: (ofproto_v1_3, ofproto_v1_3_parser),
    ofproto_v1_4.OFP_VERSION: (ofproto_v1_4, ofproto_v1_4_parser),
}


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
        if message.xid is None:
            self.set_xid(message)
        message.serialize()
        self.sent.append(message)
        return True

    def take(self):
        """Return the messages sent since the last call, and forget them."""
        sent, self.sent = self.sent, []
        return sent

    def of_type(self, name):
        """Return sent messages whose class is named ``name``."""
        return [m for m in self.sent if type(m).__name__ == name]

"""The trimmed topology app still discovers links and ignores the rest."""

import types

from ryu.controller import ofp_event
from ryu.topology import switches

from tmip_ryu import topology_trim


class RecordingSwitches(switches.Switches):
    """Ryu's topology app, with handlers that record what they are given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def lldp_packet_in_handler(self, ev):
        self.seen.append(('lldp', ev.msg.data))

    def host_discovery_packet_in_handler(self, ev):
        self.seen.append(('host', ev.msg.data))


def deliver(app, data):
    ev = ofp_event.EventOFPPacketIn(types.SimpleNamespace(data=data))
    for handler in app.get_handlers(ev):
        handler(ev)


def frame(ethertype):
    return bytes(12) + ethertype.to_bytes(2, 'big') + bytes(46)


def make_app():
    app = RecordingSwitches()
    # Ryu registers the decorated handlers when it loads an app.
    for name in ('lldp_packet_in_handler',
                 'host_discovery_packet_in_handler'):
        app.register_handler(ofp_event.EventOFPPacketIn, getattr(app, name))
    return app


def test_only_lldp_reaches_lldp_handler():
    app = make_app()

    assert topology_trim.trim(app)
    deliver(app, frame(0x88cc))
    deliver(app, frame(0x0800))
    deliver(app, frame(0x0806))

    assert app.seen == [('lldp', frame(0x88cc))]


def test_untrimmed_app_sees_frames_twice():
    app = make_app()

    deliver(app, frame(0x0800))

    assert sorted(kind for kind, _ in app.seen) == ['host', 'lldp']


def test_other_ryu_version_left_alone():
    app = make_app()
    app.unregister_handler(ofp_event.EventOFPPacketIn,
                           app.host_discovery_packet_in_handler)

    assert not topology_trim.trim(app)
    deliver(app, frame(0x0800))

    assert app.seen == [('lldp', frame(0x0800))]

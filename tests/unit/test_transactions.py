"""Hand-over participants: what each phase writes to a switch.

The switches are ``FakeDatapath`` objects with Ryu's encoders.  The
integration tests run the same participants against Open vSwitch.
"""

import pytest
from ryu.ofproto import ofproto_v1_3, ofproto_v1_4

from openflow_rules import Flow, FlowDiff, make_match
from support.fake_switch import FakeDatapath
from tmip_ryu.mlr import HandoverError
from tmip_ryu.transactions import ReplyTracker, make_participant


def flow(port):
    return Flow(table=0, priority=100, match=make_match(in_port=port),
                actions=(('output', port + 1),), cookie=0x5400000000000001)


DIFF = FlowDiff(add=(flow(1), flow(2)), delete=(flow(3),))


class CountingDatapath(FakeDatapath):
    """Counts writes to the switch's socket: one per send_msg or send."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writes = 0

    def send(self, buf):
        self.writes += 1
        return super().send(buf)

    def send_msg(self, message):
        self.writes += 1
        return super().send_msg(message)


def test_bundle_prepare_single_write():
    datapath = CountingDatapath(1, ofproto_v1_4.OFP_VERSION)
    tracker = ReplyTracker()
    participant = make_participant(datapath, DIFF, tracker, 'new')

    waiter = participant.prepare()

    ofproto = datapath.ofproto
    sent = datapath.take()
    assert datapath.writes == 1
    assert [type(m).__name__ for m in sent] == \
        ['OFPBundleCtrlMsg'] + ['OFPBundleAddMsg'] * 3 + ['OFPBundleCtrlMsg']
    assert sent[0].type == ofproto.OFPBCT_OPEN_REQUEST
    assert sent[-1].type == ofproto.OFPBCT_CLOSE_REQUEST
    assert {m.bundle_id for m in sent} == {participant.bundle_id}
    commands = [m.message.command for m in sent[1:-1]]
    assert commands == [ofproto.OFPFC_DELETE_STRICT] + [ofproto.OFPFC_ADD] * 2
    assert len({m.xid for m in sent}) == len(sent)
    for message in (sent[0], sent[-1]):
        tracker.on_reply(1, message.xid)
    waiter.wait(0.1)


def test_bundle_commit_without_barrier():
    datapath = CountingDatapath(1, ofproto_v1_4.OFP_VERSION)
    tracker = ReplyTracker()
    participant = make_participant(datapath, DIFF, tracker, 'new')
    participant.prepare()
    datapath.take()

    waiter = participant.commit()

    sent = datapath.take()
    assert [(type(m).__name__, m.type) for m in sent] == \
        [('OFPBundleCtrlMsg', datapath.ofproto.OFPBCT_COMMIT_REQUEST)]
    tracker.on_reply(1, sent[0].xid)
    waiter.wait(0.1)


def test_bundle_add_error_fails_prepare():
    datapath = FakeDatapath(1, ofproto_v1_4.OFP_VERSION)
    tracker = ReplyTracker()
    waiter = make_participant(datapath, DIFF, tracker, 'new').prepare()
    add = datapath.of_type('OFPBundleAddMsg')[1]

    assert tracker.on_error(1, add.xid, 'OFPBFC_MSG_FAILED')

    with pytest.raises(HandoverError, match='OFPBFC_MSG_FAILED'):
        waiter.wait(0.1)


def test_openflow13_commit_single_write():
    datapath = CountingDatapath(1, ofproto_v1_3.OFP_VERSION)
    tracker = ReplyTracker()
    participant = make_participant(datapath, DIFF, tracker, 'old')
    participant.prepare().wait(0.1)

    waiter = participant.commit()

    sent = datapath.take()
    assert datapath.writes == 1
    assert [type(m).__name__ for m in sent] == \
        ['OFPFlowMod'] * 3 + ['OFPBarrierRequest']
    tracker.on_reply(1, sent[-1].xid)
    waiter.wait(0.1)

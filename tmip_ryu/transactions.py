"""OpenFlow request tracking and the switch side of a hand-over.

``ReplyTracker`` matches replies and errors from switches to the waiters
of the requests that caused them, by datapath id and transaction id.
``BundleParticipant`` and ``OrderedParticipant`` are the hand-over
coordinator's participants: the first uses OpenFlow 1.4 bundles (the
bundle's CLOSE is the prepare phase, its COMMIT the commit phase), the
second, for OpenFlow 1.3 switches, has nothing to prepare and sends
ordered flow-mods behind a barrier when told to commit.
"""

import itertools
import time

from ryu.lib import hub
from ryu.ofproto import ofproto_v1_4

from tmip_ryu.mlr import HandoverError, HandoverTimeout
from tmip_ryu.ofp_render import diff_messages


class Waiter:
    """Waits for a set of replies; any error reply fails it at once."""

    def __init__(self, description, expected):
        self.description = description
        self.remaining = expected
        self.error = None
        self._event = hub.Event()
        if expected == 0:
            self._event.set()

    def reply(self):
        """Count one expected reply."""
        self.remaining -= 1
        if self.remaining <= 0:
            self._event.set()

    def fail(self, reason):
        """Fail the wait with a reason for the logs and the history."""
        if self.error is None:
            self.error = reason
        self._event.set()

    def wait(self, timeout):
        """Block this green thread until done; raise on error or timeout."""
        if not self._event.wait(timeout):
            raise HandoverTimeout('%s: no reply within %.3f s'
                                  % (self.description, timeout))
        if self.error is not None:
            raise HandoverError('%s: %s' % (self.description, self.error))


class ReplyTracker:
    """Routes replies and errors to waiters by (dpid, xid)."""

    def __init__(self):
        self._waiters = {}

    def send(self, datapath, message, waiter, expects_reply):
        """Send a message; its reply or error will reach ``waiter``."""
        datapath.set_xid(message)
        self._waiters[(datapath.id, message.xid)] = (waiter, expects_reply)
        datapath.send_msg(message)

    def send_together(self, datapath, entries):
        """Send (message, waiter, expects_reply) entries in one write."""
        for message, waiter, expects_reply in entries:
            datapath.set_xid(message)
            self._waiters[(datapath.id, message.xid)] = (waiter,
                                                         expects_reply)
        send_together(datapath, [entry[0] for entry in entries])

    def on_reply(self, dpid, xid):
        """Handle a successful reply (bundle reply, barrier reply)."""
        entry = self._waiters.pop((dpid, xid), None)
        if entry is not None:
            entry[0].reply()
        return entry is not None

    def on_error(self, dpid, xid, reason):
        """Handle an error message; return True if a waiter took it."""
        entry = self._waiters.pop((dpid, xid), None)
        if entry is not None:
            entry[0].fail(reason)
        return entry is not None

    def forget(self, waiter):
        """Drop every pending entry of a waiter (after abort or timeout)."""
        for key in [k for k, v in self._waiters.items() if v[0] is waiter]:
            del self._waiters[key]

    def fail_switch(self, dpid, reason):
        """Fail every waiter of a switch that disconnected."""
        for key in [k for k in self._waiters if k[0] == dpid]:
            waiter, _ = self._waiters.pop(key)
            waiter.fail(reason)

    def __len__(self):
        return len(self._waiters)


_bundle_ids = itertools.count(1)


def send_together(datapath, messages):
    """Serialise messages and hand them to the switch's socket as one write.

    Ryu's ``send_msg`` queues every message on its own, and the green
    thread that writes them takes turns with the one that reads replies.
    A bundle of a dozen messages then left in pieces over a millisecond
    or more, with the switch's first replies read in between.
    """
    buffers = []
    for message in messages:
        if message.xid is None:
            datapath.set_xid(message)
        message.serialize()
        buffers.append(bytes(message.buf))
    return datapath.send(b''.join(buffers))


def supports_bundles(datapath):
    """Tell whether the switch negotiated OpenFlow 1.4 or later."""
    return datapath.ofproto.OFP_VERSION >= ofproto_v1_4.OFP_VERSION


class BundleParticipant:
    """One switch's part of a hand-over, applied as an OpenFlow bundle."""

    def __init__(self, datapath, flow_diff, tracker, role):
        self.datapath = datapath
        self.flow_diff = flow_diff
        self.tracker = tracker
        self.name = 'switch %016x (%s)' % (datapath.id, role)
        self.bundle_id = next(_bundle_ids) & 0xffffffff
        self._waiters = []

    def _control(self, kind):
        ofproto = self.datapath.ofproto
        return self.datapath.ofproto_parser.OFPBundleCtrlMsg(
            self.datapath, self.bundle_id, kind,
            ofproto.OFPBF_ATOMIC | ofproto.OFPBF_ORDERED, [])

    def _new_waiter(self, phase, expected):
        waiter = Waiter('%s %s' % (self.name, phase), expected)
        self._waiters.append(waiter)
        return waiter

    def prepare(self):
        """Open the bundle, add the flow changes and close it in one write."""
        ofproto = self.datapath.ofproto
        parser = self.datapath.ofproto_parser
        flags = ofproto.OFPBF_ATOMIC | ofproto.OFPBF_ORDERED
        waiter = self._new_waiter('prepare', 2)
        entries = [(self._control(ofproto.OFPBCT_OPEN_REQUEST), waiter,
                    True)]
        for message in diff_messages(self.datapath, self.flow_diff):
            add = parser.OFPBundleAddMsg(self.datapath, self.bundle_id,
                                         flags, message, [])
            entries.append((add, waiter, False))
        entries.append((self._control(ofproto.OFPBCT_CLOSE_REQUEST), waiter,
                        True))
        self.tracker.send_together(self.datapath, entries)
        return waiter

    def commit(self):
        """Commit the bundle.

        A switch sends the commit reply only after applying the bundle,
        so no barrier follows it.
        """
        waiter = self._new_waiter('commit', 1)
        self.tracker.send(
            self.datapath,
            self._control(self.datapath.ofproto.OFPBCT_COMMIT_REQUEST),
            waiter, True)
        return waiter

    def abort(self):
        """Discard the bundle; the switch keeps the flows it had."""
        for waiter in self._waiters:
            self.tracker.forget(waiter)
        try:
            ofproto = self.datapath.ofproto
            message = self._control(ofproto.OFPBCT_DISCARD_REQUEST)
            self.datapath.send_msg(message)
        except Exception:  # noqa: BLE001 - abort must never raise
            pass


class OrderedParticipant:
    """One OpenFlow 1.3 switch's part: flow-mods, then a barrier."""

    def __init__(self, datapath, flow_diff, tracker, role):
        self.datapath = datapath
        self.flow_diff = flow_diff
        self.tracker = tracker
        self.name = 'switch %016x (%s, OpenFlow 1.3)' % (datapath.id, role)
        self._waiter = None

    def prepare(self):
        """Nothing to prepare without bundles; ready at once."""
        return Waiter('%s prepare' % self.name, 0)

    def commit(self):
        """Send the flow-mods and a barrier that confirms them."""
        parser = self.datapath.ofproto_parser
        self._waiter = Waiter('%s commit' % self.name, 1)
        entries = [(message, self._waiter, False) for message in
                   diff_messages(self.datapath, self.flow_diff)]
        entries.append((parser.OFPBarrierRequest(self.datapath),
                        self._waiter, True))
        self.tracker.send_together(self.datapath, entries)
        return self._waiter

    def abort(self):
        """Forget pending replies; nothing was sent before commit."""
        if self._waiter is not None:
            self.tracker.forget(self._waiter)


class AllOf:
    """Waits for several waitables under one deadline."""

    def __init__(self, waitables):
        self.waitables = waitables

    def wait(self, timeout):
        """Wait for each in turn; raise the first failure or timeout."""
        deadline = time.monotonic() + timeout
        for waitable in self.waitables:
            waitable.wait(max(0.0, deadline - time.monotonic()))


class ParticipantGroup:
    """Switches that prepare and commit together, as one participant."""

    def __init__(self, participants):
        self.participants = participants
        self.name = ' + '.join(p.name for p in participants)

    def prepare(self):
        """Prepare every member at once."""
        return AllOf([p.prepare() for p in self.participants])

    def commit(self):
        """Send every member's commit at once; wait for all of them."""
        return AllOf([p.commit() for p in self.participants])

    def abort(self):
        """Abort every member."""
        for participant in self.participants:
            participant.abort()


def make_participant(datapath, flow_diff, tracker, role):
    """Return the participant kind that the switch's version allows."""
    if supports_bundles(datapath):
        return BundleParticipant(datapath, flow_diff, tracker, role)
    return OrderedParticipant(datapath, flow_diff, tracker, role)


def apply_flow_diff(flows, flow_diff):
    """Apply a diff in place to {identity: flow}: deletes, modifies, adds.

    Deletes and modifies match by identity (table, priority, match), as
    strict flow-mods do on the switch.
    """
    for flow in flow_diff.delete:
        flows.pop(flow.identity, None)
    for flow in flow_diff.modify:
        flows[flow.identity] = flow
    for flow in flow_diff.add:
        flows[flow.identity] = flow

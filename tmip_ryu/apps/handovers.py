"""Hand-overs: a host seen at a new place moves there in one transaction.

The register's coordinator runs the two-phase commit; this module builds
its participants from the rules' hand-over plan (one per switch whose
flows change, in the plan's make-before-break order) and runs each
hand-over in its own green thread, because the replies it waits for
arrive through this app's event loop.

As soon as a move is known, the new switch gets a flow that drops the
host's data frames at its new port until the move commits (the commit
deletes it): otherwise each of them reaches the controller by
table-miss, and the replies the hand-over waits for queue behind them.
"""

import dataclasses
import math

from ryu.lib import hub

import openflow_rules as rules
from tmip_ryu.mlr import PENDING
from tmip_ryu.network_state import placement_of
from tmip_ryu.ofp_render import flow_mod
from tmip_ryu.transactions import ParticipantGroup, make_participant


class HandoverMixin:
    """Hand-over handling of the TMip controller."""

    def _init_handovers(self):
        self.handover_threads = {}    # mac -> green thread running moves
        self.moving_to = {}           # mac -> (dpid, port) being moved to
        # mac -> the next pending move, for the thread still applying the
        # host's last one
        self.next_handover = {}
        self.move_holds = {}          # mac -> (dpid, move-hold flow)

    def request_handover(self, binding, cell, dpid, port, detected_at,
                         frame, data):
        """Start (or queue) the move of a known host to a new place."""
        mac = binding.mac
        if frame.ipv4 is not None and frame.arp is None and \
                frame.dhcp is None:
            self.hold_frame(mac, dpid, port, data)
        handover = self.coordinator.request(mac, cell, dpid, port,
                                            detected_at=detected_at)
        if handover is None or handover.status != PENDING:
            # Already there, already heading there, or queued behind the
            # running hand-over of this host (the last move wins).
            return
        self.moving_to[mac] = (dpid, port)
        self._hold_frames_at(mac, dpid, port)
        if mac in self.handover_threads:
            # That thread has run its last move and is still applying it,
            # so it runs this one next.
            self.next_handover[mac] = handover
            return
        self.handover_threads[mac] = hub.spawn(self._run_handovers, mac,
                                               handover)
        # Let the hand-over start before the packet-ins queued behind
        # this one are handled.
        hub.sleep(0)

    def _hold_frames_at(self, mac, dpid, port):
        """Install the move-hold flow of a host at the port it moves to."""
        self._drop_move_hold(mac)
        record = self.switches.get(dpid)
        if record is None:
            return
        # It outlives a hand-over that runs to both phases' timeouts.
        seconds = math.ceil(2 * self.settings.handover_timeout) + 1
        flow = rules.move_hold_flow(mac, port, seconds)
        record.datapath.send_msg(flow_mod(record.datapath, flow, 'add'))
        self.move_holds[mac] = (dpid, flow)

    def _drop_move_hold(self, mac):
        """Delete a host's move-hold flow that no commit deleted."""
        dpid, flow = self.move_holds.pop(mac, (None, None))
        record = self.switches.get(dpid)
        if record is not None:
            record.datapath.send_msg(flow_mod(record.datapath, flow,
                                              'delete'))

    def _plan_deleting_hold(self, mac, plan, dpid):
        """Add the hold's deletion to the new switch's change in a plan.

        Returns the plan and the ``move_holds`` entry it deletes (None if
        the host has no hold at that switch).  The hold then leaves in the
        same bundle that brings the host's flows.
        """
        entry = self.move_holds.get(mac)
        if entry is None or entry[0] != dpid:
            return plan, None
        flow = entry[1]
        changed = []
        for change in plan:
            if change.dpid == dpid:
                diff = change.diff
                change = dataclasses.replace(change, diff=dataclasses.replace(
                    diff, delete=tuple(diff.delete) + (flow,)))
            changed.append(change)
        return changed, entry

    def hold_if_moving_here(self, datapath, in_port, data):
        """Hold a frame of a host being moved to this port; True if held.

        While a hand-over is in flight, the host's frames keep arriving
        here by table-miss.  Reading only the source MAC and holding them
        keeps the event queue free for the bundle and barrier replies the
        hand-over waits for, and the frames are sent on after the commit.
        """
        if not self.moving_to or len(data) < 14:
            return False
        mac = ':'.join('%02x' % octet for octet in data[6:12])
        if self.moving_to.get(mac) != (datapath.id, in_port):
            return False
        self.hold_frame(mac, datapath.id, in_port, data)
        return True

    def _run_handovers(self, mac, handover):
        try:
            while handover is not None:
                try:
                    self._run_one(handover)
                except Exception:  # noqa: BLE001 - log, never kill the app
                    self.logger.exception('hand-over of host %s to cell %d '
                                          'failed', mac,
                                          handover.target.cell)
                # A move that raised before it ran is recorded as aborted
                # by next_for, so the host is never stuck behind it.
                # request_handover has already set up a move it passed
                # on; a queued one starts here.
                handover = self.next_handover.pop(mac, None)
                if handover is None:
                    handover = self.coordinator.next_for(mac)
                    if handover is not None:
                        self.moving_to[mac] = (handover.target.dpid,
                                               handover.target.port)
                        self._hold_frames_at(mac, handover.target.dpid,
                                             handover.target.port)
        finally:
            self.handover_threads.pop(mac, None)
            self.moving_to.pop(mac, None)
            self._drop_move_hold(mac)

    def _run_one(self, handover):
        mac = handover.mac
        binding = self.register.get(mac)
        target = handover.target
        if binding is None:
            return
        plan = rules.handover_plan_for_host(
            self.state.network(), mac,
            placement_of(binding, target.dpid, target.port))
        plan, hold = self._plan_deleting_hold(mac, plan, target.dpid)
        participants = self._participants(plan, binding.dpid, target.dpid)

        # The coordinator logs the outcome of every move with its timing.
        outcome = self.coordinator.run(handover, participants)
        if outcome.status == 'committed':
            if hold is not None and self.move_holds.get(mac) is hold:
                del self.move_holds[mac]     # the commit deleted it
            for change in plan:
                record = self.switches.get(change.dpid)
                if record is not None:
                    record.apply(change.diff)
            self.state.place(self.register.get(mac))
            # The register updated the binding in place: the old place is
            # in the hand-over's snapshot.
            self._forget_unplugged_port(handover.before.dpid,
                                        handover.before.port)
            self._release_held(mac)
        elif outcome.status == 'failed':
            self.count('handovers_failed')
            self.logger.error('resyncing every switch from the register '
                              'after the failed move of host %s', mac)
            self.held_frames.pop(mac, None)
            for record in self.switches.values():
                self._request_flows(record.datapath)
        else:
            self.count('handovers_aborted')
            self.held_frames.pop(mac, None)

    def _forget_unplugged_port(self, dpid, port):
        """Drop the flows of a port that left while a host sat on it.

        The model keeps a deleted port as long as a host is placed there
        (so that the move can take the host's flows away); once the host
        has moved, the port's own flows, such as its DHCP flow, go too.
        OVS keeps flows that name a deleted port.
        """
        if port in self.state.ports.get(dpid, {}):
            return
        self.state.invalidate()
        self.sync_switch(dpid)

    def _participants(self, plan, old_dpid, new_dpid):
        """Return the plan's switches as participants in commit order.

        The new switch commits first and the old one last, as the plan
        orders them.  The switches in between (the home cell and those
        with route-optimised entries) only redirect traffic toward the
        new switch, which already delivers, so they commit together as
        one participant: one round trip instead of one each.
        """
        first, middle, last = [], [], []
        for change in plan:
            record = self.switches.get(change.dpid)
            if record is None:
                continue
            if change.dpid == new_dpid:
                first.append(make_participant(record.datapath, change.diff,
                                              self.tracker, 'new'))
            elif change.dpid == old_dpid:
                last.append(make_participant(record.datapath, change.diff,
                                             self.tracker, 'old'))
            else:
                middle.append(make_participant(record.datapath, change.diff,
                                               self.tracker, 'route'))
        if len(middle) > 1:
            middle = [ParticipantGroup(middle)]
        return first + middle + last

    def _release_held(self, mac):
        for dpid, in_port, data in self.held_frames.pop(mac, []):
            record = self.switches.get(dpid)
            if record is not None:
                self.reinject(record.datapath, in_port, data)

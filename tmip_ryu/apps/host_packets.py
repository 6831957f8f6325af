"""Packet-in handling: host detection, DHCP, ARP and pings to gateways.

A frame reaches the controller when no flow forwards it: DHCP always,
ARP except a host's request for its own gateway from its own port (its
switch answers that), and any frame from a source the switch's guard does
not know.  That is how hosts are learned (first frame) and how moves are
seen (first frame at another place).
"""

import time

from eventlet import tpool
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib.packet import ether_types

import openflow_rules as rules
from tmip_ryu import arp_responder, icmp_responder
from tmip_ryu.dhcp_server import DhcpServer
from tmip_ryu.network_state import placement_of
from tmip_ryu.packets import parse_frame

# Frames sent to a link-local group (LLDP, STP, LACP, ...) are never hosts.
_IGNORED_ETHERTYPES = (ether_types.ETH_TYPE_LLDP, 0x8809, 0x88f5)
# A host may have at most this many frames waiting for its hand-over.
_MAX_HELD_FRAMES = 64
# For this many seconds after a port is deleted, a frame from it is one
# Open vSwitch received before the deletion, not a host arriving.
STALE_FRAME_SECONDS = 2.0
# The same after a port's link goes down, but short, because a returning
# host's first frame can overtake the link-up status.  In the hand-over
# benchmark, stale frames came 15 to 26 ms after the move started.
DOWN_LINK_SECONDS = 0.25


def is_host_mac(mac):
    """Tell whether a source MAC can be a host: unicast and not zero."""
    first_octet = int(mac[:2], 16)
    return not first_octet & 1 and mac != '00:00:00:00:00:00'


class HostPacketMixin:
    """Packet-in handlers of the TMip controller."""

    def _init_host_packets(self):
        self.dhcp = DhcpServer(self.settings.gateway_mac,
                               self.settings.lease_time)
        # Replies that wait for the register's next group commit.
        self.replies_after_flush = []
        self.held_frames = {}     # mac -> [(dpid, in_port, data)]
        self.pool_warnings = {}   # cell -> time of the last warning
        self.deleted_ports = {}   # (dpid, port) -> time it was deleted
        self.down_ports = {}      # (dpid, port) -> time its link went down

    def note_port_status(self, dpid, port, deleted, link_down=False):
        """Record when a port is deleted or its link goes down.

        Both are forgotten when the port returns with its link up, and
        after ``STALE_FRAME_SECONDS``.
        """
        key = (dpid, port)
        now = time.monotonic()
        if deleted:
            self.deleted_ports[key] = now
            self.down_ports.pop(key, None)
        elif link_down:
            self.down_ports.setdefault(key, now)
            self.deleted_ports.pop(key, None)
        else:
            self.deleted_ports.pop(key, None)
            self.down_ports.pop(key, None)
        for recorded in (self.deleted_ports, self.down_ports):
            for old in [k for k, at in recorded.items()
                        if now - at > STALE_FRAME_SECONDS]:
                del recorded[old]

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        detected_at = time.monotonic()
        msg = ev.msg
        datapath = msg.datapath
        in_port = msg.match.get('in_port')

        record = self.switches.get(datapath.id)
        if record is None or record.datapath is not datapath:
            self.count('packet_in_unknown_switch')
            self.logger.debug('packet-in from unknown switch %016x dropped',
                              datapath.id)
            return
        if self.hold_if_moving_here(datapath, in_port, msg.data):
            return
        frame = parse_frame(msg.data)
        if frame is None or frame.error:
            self.count('malformed_frames')
            self.logger.debug('switch %016x port %s: malformed frame '
                              'dropped: %s', datapath.id, in_port,
                              getattr(frame, 'error', 'unparsable'))
            return
        if frame.eth.ethertype in _IGNORED_ETHERTYPES:
            return

        role = self.state.port_role(datapath.id, in_port)
        if role == rules.UPLINK:
            self._uplink_frame(datapath, in_port, frame)
        elif role == rules.ACCESS:
            self._access_frame(datapath, in_port, frame, msg.data,
                               detected_at)

    # -- access ports: hosts

    def _access_frame(self, datapath, in_port, frame, data, detected_at):
        mac = frame.eth.src.lower()
        if not is_host_mac(mac) or mac == self.settings.gateway_mac or \
                self.state.is_switch_mac(mac):
            self.count('frames_from_non_host_sources')
            return
        cell = self.state.cell_of(datapath.id)
        if cell is None:
            self.count('frames_on_switch_without_cell')
            return
        down_at = self.down_ports.get((datapath.id, in_port))
        if down_at is not None and \
                detected_at - down_at < DOWN_LINK_SECONDS:
            # Received before the link went down.
            self.count('frames_from_down_ports')
            self.logger.debug('switch %016x port %d: frame from %s after '
                              'the link went down, dropped', datapath.id,
                              in_port, mac)
            return
        ports = self.state.ports.get(datapath.id, {})
        if in_port not in ports:
            deleted_at = self.deleted_ports.get((datapath.id, in_port))
            if deleted_at is not None and \
                    detected_at - deleted_at < STALE_FRAME_SECONDS:
                # Open vSwitch passed up a frame it received before the
                # port was deleted (its port moved to another bridge).
                self.count('frames_from_deleted_ports')
                self.logger.debug('switch %016x port %d: frame from %s '
                                  'after the port was deleted, dropped',
                                  datapath.id, in_port, mac)
                return
            # The frame overtook the port's status message.
            ports = dict(ports)
            ports[in_port] = '00:00:00:00:00:00'
            self.state.set_ports(datapath.id, ports)

        binding = self.register.get(mac)
        if binding is None:
            binding = self._attach(mac, cell, datapath.id, in_port)
            if binding is None:
                return
        elif (binding.dpid, binding.port) != (datapath.id, in_port):
            # The hand-over runs in its own green thread; ARP and DHCP
            # are answered from the new place meanwhile.
            self.request_handover(binding, cell, datapath.id, in_port,
                                  detected_at, frame, data)
        self._serve(datapath, in_port, frame, binding)

    def _attach(self, mac, cell, dpid, port):
        result = self.register.attach(mac, cell, dpid, port)
        if result.binding is None:
            self.count('pool_exhausted')
            # One line per cell every 10 s at most: a host sending from
            # many MACs would otherwise write one per frame.
            now = time.monotonic()
            if now - self.pool_warnings.get(cell, -10.0) >= 10.0:
                self.pool_warnings[cell] = now
                self.logger.warning(
                    'host %s at switch %016x port %d not registered: %s '
                    '(%d such frames so far)', mac, dpid, port,
                    result.error, self.counters['pool_exhausted'])
            return None
        binding = result.binding
        self.sync_host(binding)
        self.logger.info('host %s attached at cell %d (switch %016x port '
                         '%d), home address %s/30', mac, cell, dpid, port,
                         binding.address)
        return binding

    def sync_host(self, binding, gone=False):
        """Place a host (or remove it) and send only its flow changes."""
        network = self.state.network()
        placement = None if gone else placement_of(binding)
        plan = rules.handover_plan_for_host(network, binding.mac, placement)
        if gone:
            self.state.unplace(binding.mac)
        else:
            self.state.place(binding)
        for change in plan:
            record = self.switches.get(change.dpid)
            if record is not None and record.reconciled:
                self.apply_diff(record, change.diff)

    def _serve(self, datapath, in_port, frame, binding):
        """Answer ARP, DHCP and pings to the gateway from a known host."""
        if frame.arp is not None:
            decision = arp_responder.arp_reply(frame, binding,
                                               self.settings.gateway_mac)
            if decision.reply is not None:
                self.packet_out(datapath, in_port, decision.reply)
            else:
                self.count('arp_not_answered')
                self.logger.debug('ARP from %s not answered: %s',
                                  binding.mac, decision.reason)
        elif frame.dhcp is not None:
            self._serve_dhcp(datapath, in_port, frame, binding)
        elif frame.icmp is not None and frame.ipv4 is not None and \
                frame.ipv4.dst == str(binding.gateway) and \
                frame.ipv4.src == str(binding.address):
            reply = icmp_responder.echo_reply(frame,
                                              self.settings.gateway_mac)
            if reply is not None:
                self.packet_out(datapath, in_port, reply)

    def _serve_dhcp(self, datapath, in_port, frame, binding):
        decision = self.dhcp.handle(frame, binding)
        if decision is None:
            self.count('dhcp_ignored')
            return
        mac = binding.mac
        if decision.action == 'release':
            self.release_host(mac, 'DHCPRELEASE')
            return
        if decision.action == 'decline':
            self.decline_host(mac)
            return
        if decision.reply is None:
            self.count('dhcp_ignored')
            self.logger.debug('DHCP from %s ignored: %s', mac,
                              decision.reason)
            return
        if decision.renew:
            self.register.renew(mac, lease_time=decision.lease_time,
                                client_id=decision.client_id)
            if decision.action == 'ack':
                self.logger.info('host %s leased %s for %d s (cell %d)',
                                 mac, binding.address,
                                 self.settings.lease_time, binding.cell)
            # The ACK leaves after the group commit that stores the lease.
            self.replies_after_flush.append(
                (datapath, in_port, decision.reply))
            return
        if decision.action == 'nak':
            self.logger.info('host %s sent a DHCP request NAKed: %s', mac,
                             decision.reason)
        self.packet_out(datapath, in_port, decision.reply)

    def release_host(self, mac, why):
        """Remove a host's binding and its flows."""
        binding = self.register.release(mac)
        if binding is None:
            return
        self.sync_host(binding, gone=True)
        self.logger.info('host %s released %s (%s)', mac, binding.address,
                         why)

    def decline_host(self, mac):
        """Give a host that declined its address a fresh /30."""
        old = self.register.get(mac)
        binding = self.register.decline(mac)
        if binding is None:
            # No other /30 was free: the host lost its binding.
            if old is not None:
                self.sync_host(old, gone=True)
                self.logger.warning('host %s declined %s and its pool has '
                                    'no other free /30', mac, old.address)
            return
        self.sync_host(binding)
        self.logger.warning('host %s declined %s (address in use); it now '
                            'has %s', mac, old.address if old else '?',
                            binding.address)

    def flush_register(self):
        """Group-commit the register, then send the replies that waited.

        The SQLite write and its fsync run in an OS thread, so the other
        green threads (packet-ins, hand-overs) go on meanwhile.  Changes
        made during the write go into the next batch.  On a StoreError the
        replies stay queued: an ACK never leaves before its lease is on
        disk.
        """
        replies, self.replies_after_flush = self.replies_after_flush, []
        batch = self.register.begin_flush()
        if batch is not None:
            try:
                tpool.execute(self.register.store.write, batch)
            except Exception as error:
                self.register.end_flush(batch, error)
                self.replies_after_flush[:0] = replies
                raise
            self.register.end_flush(batch)
        for datapath, port, data in replies:
            self.packet_out(datapath, port, data)

    # -- uplink ports: the router outside TMip

    def _uplink_frame(self, datapath, in_port, frame):
        uplink = self.state.uplink_at(datapath.id, in_port)
        if frame.arp is None:
            return
        learned = arp_responder.parse_arp_reply(frame)
        if learned is not None and learned[0] == str(uplink.next_hop):
            if self.state.set_next_hop_mac(datapath.id, in_port,
                                           learned[1]):
                self.logger.info('uplink %016x:%d next hop %s is at %s',
                                 datapath.id, in_port, learned[0],
                                 learned[1])
                self.sync_all()
            return
        reply = arp_responder.arp_reply_for(
            self.settings.gateway_mac, str(uplink.interface.ip), frame)
        if reply is not None:
            self.packet_out(datapath, in_port, reply)

    def _resolve_next_hops(self):
        """Ask each uplink's router for its MAC until it has answered."""
        for uplink in self.settings.uplinks:
            key = (uplink.dpid, uplink.port)
            record = self.switches.get(uplink.dpid)
            if record is None or key in self.state.next_hop_macs:
                continue
            if uplink.port not in self.state.ports.get(uplink.dpid, {}):
                continue
            request = arp_responder.arp_request(
                self.settings.gateway_mac, str(uplink.interface.ip),
                str(uplink.next_hop))
            self.packet_out(record.datapath, uplink.port, request)

    # -- sending frames

    def packet_out(self, datapath, port, data, in_port=None):
        """Send a whole frame out of a port (OVS here buffers nothing)."""
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        actions = [parser.OFPActionOutput(port)]
        message = parser.OFPPacketOut(
            datapath=datapath, buffer_id=ofproto.OFP_NO_BUFFER,
            in_port=ofproto.OFPP_CONTROLLER if in_port is None else in_port,
            actions=actions, data=data)
        datapath.send_msg(message)

    def reinject(self, datapath, in_port, data):
        """Run a held frame through the switch's tables again."""
        self.packet_out(datapath, datapath.ofproto.OFPP_TABLE, data,
                        in_port=in_port)

    def hold_frame(self, mac, dpid, in_port, data):
        """Keep a data frame until the host's hand-over has committed."""
        held = self.held_frames.setdefault(mac, [])
        if len(held) < _MAX_HELD_FRAMES:
            held.append((dpid, in_port, data))
        else:
            self.count('held_frames_dropped')

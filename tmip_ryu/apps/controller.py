"""The TMip controller: every cell's router and the register, in one app.

It keeps the switches' flows equal to what ``openflow_rules`` computes
from the topology and the register, learns hosts and their moves from
packet-ins, replies to DHCP, ARP and pings to gateways, and hands hosts over
between cells as one transaction across the switches involved.
"""

import time

from ryu import cfg
from ryu.app import wsgi
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER,
                                    MAIN_DISPATCHER, set_ev_cls)
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3, ofproto_v1_4
from ryu.topology import event as topology_event
from ryu.topology import switches as topology_switches

import openflow_rules as rules
from tmip_ryu.apps.handovers import HandoverMixin
from tmip_ryu.apps.host_packets import HostPacketMixin
from tmip_ryu import log_limits
from tmip_ryu.apps import rest
from tmip_ryu.config import (ConfigError, check_listen_ports,
                             load_settings)
from tmip_ryu.mlr import (HandoverCoordinator, Register, Store,
                          StoreError)
from tmip_ryu.network_state import NetworkState, pool_of
from tmip_ryu.ofp_render import (delete_stats_entry, diff_messages,
                                 flow_from_stats)
from tmip_ryu.transactions import ReplyTracker, apply_flow_diff

# Link discovery must work with no flags: turn on Ryu's LLDP discovery
# before ryu-manager reads it, and load the app that does it.  Importing
# the app's module registers the option (ryu-manager imports it anyway).
assert topology_switches.Switches
cfg.CONF.set_override('observe_links', True)
cfg.CONF.set_default('wsapi_host', '127.0.0.1')
app_manager.require_app('ryu.topology.switches')

# After a switch connects, flows are only added until the topology has
# been quiet this long, so that a restarted controller does not delete
# tunnels before LLDP has rediscovered the core links.
SETTLE_SECONDS = 6.0


class SwitchRecord:
    """A connected switch and the flows the controller believes it has.

    ``flows`` maps each flow's identity (table, priority, match) to the
    flow, so that applying one host's changes costs time in proportion to
    the changes, not to every flow of the switch.
    """

    __slots__ = ('datapath', 'flows', 'connected_at', 'reconciled',
                 'stats_buffer')

    def __init__(self, datapath):
        self.datapath = datapath
        self.flows = {}
        self.connected_at = time.monotonic()
        self.reconciled = False
        self.stats_buffer = []

    @property
    def installed(self):
        """The switch's TMip flows as a frozenset."""
        return frozenset(self.flows.values())

    @installed.setter
    def installed(self, flows):
        self.flows = {flow.identity: flow for flow in flows}

    def apply(self, flow_diff):
        """Record that a diff was applied to the switch."""
        apply_flow_diff(self.flows, flow_diff)


class TmipController(HandoverMixin, HostPacketMixin, app_manager.RyuApp):
    """TMip: Mobile Location Register and cell routers."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION, ofproto_v1_4.OFP_VERSION]
    _CONTEXTS = {'wsgi': wsgi.WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.settings = load_settings()
            check_listen_ports()
            self.store = Store(self.settings.state_file)
        except (ConfigError, OSError) as error:
            self.logger.error('cannot start: %s', error)
            raise SystemExit('tmip_ryu: %s' % error)

        self.register = self._recover_register()
        # A committed move reaches the disk with the next group commit
        # (flush_interval_ms later), so that a move never blocks every
        # green thread on an fsync.  A crash in between leaves the host
        # at its old place in the register; its next frame moves it again.
        self.coordinator = HandoverCoordinator(
            self.register, prepare_timeout=self.settings.handover_timeout,
            commit_timeout=self.settings.handover_timeout,
            flush_on_commit=False)
        self.state = NetworkState(self.settings)
        for binding in self.register.bindings():
            self.state.place(binding)
        self.switches = {}          # dpid -> SwitchRecord
        self.tracker = ReplyTracker()
        self.counters = {}
        self.last_topology_change = time.monotonic()
        self._init_handovers()
        self._init_host_packets()
        log_limits.install(lambda: self.count('ryu_topology_errors'))

        wsgi_app = kwargs['wsgi']
        wsgi_app.register(rest.TmipRestController, {rest.INSTANCE: self})
        wsgi_app.register(rest.TmipRestFallback)
        self.threads.append(hub.spawn(self._flush_loop))
        self.threads.append(hub.spawn(self._maintenance_loop))

    def _recover_register(self):
        settings = self.settings
        pools = {cell: pool for cell, pool in settings.cell_pools.items()}
        # Register.recover logs how many bindings it read, and from where.
        return Register.recover(self.store, pools=pools,
                                lease_time=settings.lease_time)

    def count(self, name):
        """Add one to a named counter (shown over REST)."""
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- switch lifecycle

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        datapath = ev.msg.datapath
        parser = datapath.ofproto_parser

        self.switches[datapath.id] = SwitchRecord(datapath)
        self._install_meter(datapath)
        datapath.send_msg(parser.OFPPortDescStatsRequest(datapath, 0))
        cell = self.state.cell_of(datapath.id)
        if cell is None:
            self.logger.error(
                'switch %016x connected but has no cell id: its datapath '
                'id is not 1..254; set cell_ids = %d:<cell> in [tmip]',
                datapath.id, datapath.id)
        else:
            self.logger.info('switch %016x connected (OpenFlow 0x%02x), '
                             'cell %d, pool %s', datapath.id,
                             datapath.ofproto.OFP_VERSION, cell,
                             pool_of(self.settings, cell))

    def _install_meter(self, datapath):
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        band = parser.OFPMeterBandDrop(rate=self.settings.packet_in_rate,
                                       burst_size=0)
        # A reconnecting switch still has the meter; its "meter exists"
        # error is expected and ignored in error_handler.
        message = parser.OFPMeterMod(
            datapath, command=ofproto.OFPMC_ADD, flags=ofproto.OFPMF_PKTPS,
            meter_id=rules.PACKET_IN_METER_ID, bands=[band])
        datapath.send_msg(message)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def port_desc_handler(self, ev):
        datapath = ev.msg.datapath
        ports = {port.port_no: port.hw_addr for port in ev.msg.body}

        self.state.set_ports(datapath.id, ports)
        self._request_flows(datapath)

    def _request_flows(self, datapath):
        parser = datapath.ofproto_parser
        ofproto = datapath.ofproto
        record = self.switches.get(datapath.id)
        if record is None:
            return
        record.stats_buffer = []
        request = parser.OFPFlowStatsRequest(
            datapath, 0, ofproto.OFPTT_ALL, ofproto.OFPP_ANY,
            ofproto.OFPG_ANY, rules.TMIP_COOKIE, rules.TMIP_COOKIE_MASK,
            parser.OFPMatch())
        datapath.send_msg(request)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_handler(self, ev):
        datapath = ev.msg.datapath
        record = self.switches.get(datapath.id)
        if record is None or record.datapath is not datapath:
            return
        record.stats_buffer.extend(ev.msg.body)
        if ev.msg.flags & datapath.ofproto.OFPMPF_REPLY_MORE:
            return

        held_flows = set()
        for stats in record.stats_buffer:
            try:
                held_flows.add(flow_from_stats(datapath.ofproto, stats))
            except ValueError as error:
                self.logger.warning('switch %016x has a TMip flow that '
                                    'the rules never produce (%s); '
                                    'deleting it', datapath.id, error)
                datapath.send_msg(delete_stats_entry(datapath, stats))
        held_flows = frozenset(held_flows)
        record.stats_buffer = []
        record.installed = held_flows
        record.reconciled = True
        changes = self.sync_switch(datapath.id)
        self.logger.info(
            'switch %016x reconciled: it held %d TMip flows, sent %d '
            'changes', datapath.id, len(held_flows), changes)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def state_change_handler(self, ev):
        datapath = ev.datapath
        record = self.switches.get(datapath.id)
        # A late event from an old connection must not drop the new one.
        if record is None or record.datapath is not datapath:
            return
        del self.switches[datapath.id]
        self.state.remove_switch(datapath.id)
        self.tracker.fail_switch(datapath.id, 'switch disconnected')
        self.logger.warning('switch %016x disconnected', datapath.id)
        self.topology_changed()

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status_handler(self, ev):
        datapath = ev.msg.datapath
        ofproto = datapath.ofproto
        port = ev.msg.desc
        ports = dict(self.state.ports.get(datapath.id, {}))

        if ev.msg.reason == ofproto.OFPPR_DELETE:
            ports.pop(port.port_no, None)
        else:
            ports[port.port_no] = port.hw_addr
        self.state.set_ports(datapath.id, ports)
        self.logger.debug('switch %016x port %d %s', datapath.id,
                          port.port_no, {ofproto.OFPPR_ADD: 'added',
                                         ofproto.OFPPR_DELETE: 'deleted'}
                          .get(ev.msg.reason, 'modified'))
        self.sync_switch(datapath.id)

    @set_ev_cls(topology_event.EventLinkAdd)
    def link_add_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        if self.state.add_link(src.dpid, src.port_no, dst.dpid, dst.port_no):
            self.logger.info('core link %016x:%d <-> %016x:%d up', src.dpid,
                             src.port_no, dst.dpid, dst.port_no)
            self._drop_hosts_on_core_ports(((src.dpid, src.port_no),
                                            (dst.dpid, dst.port_no)))
            self.topology_changed()

    def _drop_hosts_on_core_ports(self, core_ports):
        """Release bindings learned on ports that turned out to be core.

        Before LLDP finds a link, frames from the peer switch's interface
        (IPv6 neighbour discovery from a veth, say) look like a host.
        """
        for binding in list(self.register.bindings()):
            if (binding.dpid, binding.port) in core_ports:
                self.logger.warning(
                    'host %s was learned on switch %016x port %d, which is '
                    'a core port; releasing %s', binding.mac, binding.dpid,
                    binding.port, binding.address)
                self.release_host(binding.mac, 'learned on a core port')

    @set_ev_cls(topology_event.EventLinkDelete)
    def link_delete_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        if self.state.remove_link(src.dpid, src.port_no, dst.dpid,
                                  dst.port_no):
            self.logger.warning('core link %016x:%d <-> %016x:%d down',
                                src.dpid, src.port_no, dst.dpid,
                                dst.port_no)
            self.topology_changed()

    def topology_changed(self):
        """Resync every switch after a switch, port or link change."""
        self.last_topology_change = time.monotonic()
        self.sync_all()

    # -- replies and errors

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply_handler(self, ev):
        self.tracker.on_reply(ev.msg.datapath.id, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPBundleCtrlMsg, MAIN_DISPATCHER)
    def bundle_reply_handler(self, ev):
        self.tracker.on_reply(ev.msg.datapath.id, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error_handler(self, ev):
        msg = ev.msg
        ofproto = msg.datapath.ofproto
        reason = 'error type %d code %d' % (msg.type, msg.code)
        if self.tracker.on_error(msg.datapath.id, msg.xid, reason):
            return
        if (msg.type == ofproto.OFPET_METER_MOD_FAILED and
                msg.code == ofproto.OFPMMFC_METER_EXISTS):
            return
        self.count('switch_errors')
        self.logger.warning('switch %016x reported %s for xid %d',
                            msg.datapath.id, reason, msg.xid)

    # -- keeping flows right

    def desired_flows(self, dpid, network=None):
        """Return the flows a switch should hold now."""
        return rules.desired_flows(dpid, network or self.state.network())

    def sync_switch(self, dpid, network=None):
        """Send a switch the difference to its desired flows.

        Until the topology has settled after the switch connected, flows
        are only added, never deleted or changed.  Returns the number of
        flow changes sent.
        """
        record = self.switches.get(dpid)
        if record is None or not record.reconciled:
            return 0
        if self.state.cell_of(dpid) is None:
            return 0
        desired = self.desired_flows(dpid, network)
        flow_diff = rules.diff(record.installed, desired)
        if not self._settled(record):
            flow_diff = rules.FlowDiff(add=flow_diff.add, modify=(),
                                       delete=())
        return self.apply_diff(record, flow_diff)

    def _settled(self, record):
        now = time.monotonic()
        return (now - record.connected_at > SETTLE_SECONDS and
                now - self.last_topology_change > SETTLE_SECONDS / 2)

    def apply_diff(self, record, flow_diff):
        """Send a diff as flow-mods behind a barrier; update ``installed``."""
        datapath = record.datapath
        messages = diff_messages(datapath, flow_diff)
        if not messages:
            return 0
        for message in messages:
            datapath.send_msg(message)
        datapath.send_msg(datapath.ofproto_parser.OFPBarrierRequest(
            datapath))
        record.apply(flow_diff)
        return len(messages)

    def sync_all(self):
        """Resync every connected switch with one shared network model."""
        network = self.state.network()
        changes = 0
        for dpid in list(self.switches):
            changes += self.sync_switch(dpid, network)
        return changes

    # -- timers

    def _flush_loop(self):
        interval = self.settings.flush_interval_ms / 1000.0
        last_error_log = 0.0
        while True:
            hub.sleep(interval)
            try:
                self.flush_register()
            except StoreError as error:
                # Changes stay pending and are retried on the next tick;
                # log at most every 10 s, with a count.
                self.count('store_errors')
                if time.monotonic() - last_error_log > 10:
                    last_error_log = time.monotonic()
                    self.logger.error(
                        'cannot write the state file (%d failures so '
                        'far); leases are not acknowledged until it '
                        'works: %s', self.counters['store_errors'], error)
            except Exception:  # noqa: BLE001 - the loop must survive
                self.logger.exception('register flush failed')

    def _maintenance_loop(self):
        was_settled = set()
        while True:
            hub.sleep(1.0)
            try:
                self._expire_leases()
                self._resolve_next_hops()
                # Once a switch has settled, a full sync removes leftovers.
                for dpid, record in list(self.switches.items()):
                    if self._settled(record) and dpid not in was_settled:
                        was_settled.add(dpid)
                        self.sync_switch(dpid)
                was_settled &= set(self.switches)
            except Exception:  # noqa: BLE001 - the loop must survive
                self.logger.exception('maintenance pass failed')

    def _expire_leases(self):
        now = time.time()
        if now - getattr(self, '_last_expiry', 0) < \
                self.settings.expiry_interval:
            return
        self._last_expiry = now
        for binding in self.register.expire():
            self.sync_host(binding, gone=True)
            self.logger.info('host %s lease expired, %s released',
                             binding.mac, binding.address)


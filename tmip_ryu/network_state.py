"""The controller's view of the network, as ``openflow_rules`` data.

``NetworkState`` keeps the connected switches with their ports, the core
links that LLDP discovery reported, the configured uplinks with their
resolved next-hop MACs, and a placement per live binding of the register.
``network()`` returns all of it as one ``openflow_rules.Network``.
``desired_flow_batches`` yields a switch's desired flows a few hundred
at a time, so that a caller can let other green threads run in between.
"""

import logging

import openflow_rules as rules
from openflow_rules.pipeline import network_view

LOG = logging.getLogger(__name__)

# Ports above this number are reserved (LOCAL, CONTROLLER, ...).
_MAX_PHYSICAL_PORT = 0xffffff00


class NetworkState:
    """Switches, ports, links, uplinks and host placements."""

    def __init__(self, settings):
        self.settings = settings
        self.ports = {}          # dpid -> {port_no: hw_addr}
        self.links = set()       # rules.CoreLink, as LLDP reported them
        self.next_hop_macs = {}  # (dpid, port) -> MAC of the uplink's router
        self.placements = {}     # mac -> rules.HostPlacement
        self._network = None     # cached network(); None when stale
        # Core links left out of the model because a port of theirs is not
        # known yet; each is logged once until it becomes usable.
        self._unready_links = set()
        self._rule_settings = rules.Settings(
            gateway_mac=settings.gateway_mac,
            route_optimisation=settings.route_optimisation,
            reverse_tunnelling=settings.reverse_tunnelling)

    # -- switches and ports

    def cell_of(self, dpid):
        """Return the cell id of a switch, or None when it has none."""
        return self.settings.cell_of(dpid)

    def set_ports(self, dpid, ports):
        """Record a switch's physical ports as {port_no: hw_addr}.

        Returns whether that changed the network model.  It does not when
        only a port's link state changed, nor when the deleted port still
        has a host placed on it, which the model keeps (see ``switches``).
        """
        recorded = {number: hw_addr.lower()
                    for number, hw_addr in ports.items()
                    if number < _MAX_PHYSICAL_PORT}
        known = self.ports.get(dpid)
        if known == recorded:
            return False
        before = self._switch_of(dpid) if known is not None else None
        self.ports[dpid] = recorded
        if before is not None and self._switch_of(dpid) == before:
            return False
        self._network = None
        return True

    def remove_switch(self, dpid):
        """Forget a switch and every link that touches it."""
        self.ports.pop(dpid, None)
        self.links = {link for link in self.links
                      if dpid not in (link.src_dpid, link.dst_dpid)}
        self._network = None

    def is_switch_mac(self, mac):
        """Tell whether a MAC belongs to a port of a known switch."""
        return any(mac in ports.values() for ports in self.ports.values())

    def uplink_at(self, dpid, port):
        """Return the configured uplink on a port, or None."""
        for uplink in self.settings.uplinks:
            if uplink.dpid == dpid and uplink.port == port:
                return uplink
        return None

    def port_role(self, dpid, port):
        """Return the role of a port: core, uplink or access."""
        for link in self.core_links():
            if (link.src_dpid, link.src_port) == (dpid, port):
                return rules.CORE
        if self.uplink_at(dpid, port) is not None:
            return rules.UPLINK
        return rules.ACCESS

    # -- links

    def core_links(self):
        """Return the links LLDP has seen in both directions.

        A host can forge an LLDP frame that claims it sits behind another
        switch's port, but it cannot make the switch it claims send LLDP
        back to it, so a link seen one way only is not trusted.
        """
        return {link for link in self.links if _reverse(link) in self.links}

    def add_link(self, src_dpid, src_port, dst_dpid, dst_port):
        """Record one direction of a link; True if it completes a core link.

        A core link exists once both of its directions are recorded.
        """
        link = rules.CoreLink(src_dpid, src_port, dst_dpid, dst_port)
        if link in self.links:
            return False
        self.links.add(link)
        if _reverse(link) not in self.links:
            return False
        self._network = None
        return True

    def remove_link(self, src_dpid, src_port, dst_dpid, dst_port):
        """Forget one direction of a link; True if a core link went down."""
        link = rules.CoreLink(src_dpid, src_port, dst_dpid, dst_port)
        if link not in self.links:
            return False
        self.links.discard(link)
        if _reverse(link) not in self.links:
            return False
        self._network = None
        return True

    def has_links(self, dpid):
        """Tell whether LLDP reported a link to or from a switch."""
        return any(dpid in (link.src_dpid, link.dst_dpid)
                   for link in self.links)

    def set_next_hop_mac(self, dpid, port, mac):
        """Record the MAC of an uplink's router; True if it changed."""
        if self.next_hop_macs.get((dpid, port)) == mac:
            return False
        self.next_hop_macs[(dpid, port)] = mac
        self._network = None
        return True

    # -- hosts

    def invalidate(self):
        """Rebuild the network model on its next use."""
        self._network = None

    def place(self, binding):
        """Record where a live binding's host is now."""
        placement = placement_of(binding)
        self.placements[binding.mac] = placement
        if self._network is None:
            return
        # Only this host changed: update the cached model in place of a
        # rebuild, which checks every host (about 50 ms at 10,000).
        try:
            self._network = self._network.replace_host(placement)
        except ValueError:
            self._network = None

    def unplace(self, mac):
        """Forget a host whose binding is gone."""
        self.placements.pop(mac, None)
        if self._network is not None and mac in self._network.hosts:
            self._network = self._network.remove_host(mac)

    # -- the model for openflow_rules

    def switches(self):
        """Return {dpid: rules.Switch} for connected switches with a cell."""
        # A host keeps its port in the model after the port is deleted
        # (it was unplugged to move): the hand-over then moves its flows
        # from there instead of leaving them behind.
        host_ports = {}
        for host in self.placements.values():
            host_ports.setdefault(host.dpid, set()).add(host.port)
        switches = {}
        for dpid in self.ports:
            switch = self._switch(dpid, host_ports.get(dpid, ()))
            if switch is not None:
                switches[dpid] = switch
        return switches

    def _switch_of(self, dpid):
        """Return the model of one switch, or None; see ``switches``."""
        host_ports = {host.port for host in self.placements.values()
                      if host.dpid == dpid}
        return self._switch(dpid, host_ports)

    def _switch(self, dpid, host_ports):
        cell = self.cell_of(dpid)
        if cell is None:
            return None
        roles = {port: self.port_role(dpid, port) for port in self.ports[dpid]}
        for port in host_ports:
            roles.setdefault(port, rules.ACCESS)
        return rules.Switch(dpid=dpid, cell=cell, ports=roles)

    def uplinks(self):
        """Return the configured uplinks of connected switches."""
        found = []
        for uplink in self.settings.uplinks:
            if uplink.dpid not in self.ports:
                continue
            found.append(rules.Uplink(
                dpid=uplink.dpid, port=uplink.port,
                address=str(uplink.interface),
                next_hop=str(uplink.next_hop),
                next_hop_mac=self.next_hop_macs.get(
                    (uplink.dpid, uplink.port))))
        return tuple(found)

    def cell_pools(self):
        """Return {cell: 'network/prefix'} for every connected cell."""
        pools = {}
        for dpid in self.ports:
            cell = self.cell_of(dpid)
            if cell is not None:
                pools[cell] = pool_of(self.settings, cell)
        return pools

    def network(self):
        """Return the whole network as one ``openflow_rules.Network``."""
        if self._network is None:
            self._network = self._build_network()
        return self._network

    def _build_network(self):
        switches = self.switches()
        hosts = self.placements
        # A host seen on a port that later turned out to be a core or
        # uplink port is left out until it shows up on an access port.
        hosts = {mac: host for mac, host in hosts.items()
                 if host.dpid in switches and
                 switches[host.dpid].ports.get(host.port) == rules.ACCESS}
        # A roaming host's home cell keeps its pool while its switch is
        # away, so that the host stays valid in the model.
        pools = self.cell_pools()
        for cell in {host.home_cell for host in hosts.values()}:
            pools.setdefault(cell, pool_of(self.settings, cell))
        uplinks = tuple(
            uplink for uplink in self.uplinks()
            if _role(switches, uplink.dpid, uplink.port) == rules.UPLINK)
        return rules.Network(
            switches=switches, links=self._usable_links(switches),
            uplinks=uplinks, hosts=hosts, cell_pools=pools,
            settings=self._rule_settings)

    def _usable_links(self, switches):
        """Return the core links whose two ports are known core ports.

        LLDP can report a link before the port list of one of its
        switches arrives, or name a switch that has no cell.  Such a link
        is not a core link yet: the model would reject it.
        """
        usable = set()
        unready = set()
        for link in self.core_links():
            if (_role(switches, link.src_dpid, link.src_port) == rules.CORE
                    and _role(switches, link.dst_dpid, link.dst_port)
                    == rules.CORE):
                usable.add(link)
            else:
                unready.add(link)
        for link in unready - self._unready_links:
            LOG.info('core link %016x:%d -> %016x:%d is not used yet: a '
                     'port of it is not known as a core port of a switch '
                     'with a cell', link.src_dpid, link.src_port,
                     link.dst_dpid, link.dst_port)
        self._unready_links = unready
        return frozenset(usable)


def placement_of(binding, dpid=None, port=None):
    """Return the HostPlacement of a binding, optionally somewhere else."""
    return rules.HostPlacement(
        mac=binding.mac, address=str(binding.address),
        gateway=str(binding.gateway), home_cell=binding.home_cell,
        dpid=binding.dpid if dpid is None else dpid,
        port=binding.port if port is None else port)


def pool_of(settings, cell):
    """Return a cell's address pool: configured, or 10.<cell>.0.0/16."""
    return settings.cell_pools.get(cell, '10.%d.0.0/16' % cell)


def switch_hosts(network, dpid):
    """Return the placements of the hosts that own flows on a switch.

    These are the hosts attached to the switch, the roaming hosts whose
    home cell it is and, with route optimisation on, every roaming host,
    as ``openflow_rules.desired_flows`` selects them.
    """
    by_dpid, roaming_by_home, roaming = network_view(network).host_index()
    hosts = {host.mac: host for host in by_dpid.get(dpid, ())}
    for host in roaming_by_home.get(network.cell_of(dpid), ()):
        hosts[host.mac] = host
    if network.settings.route_optimisation:
        for host in roaming:
            hosts[host.mac] = host
    return list(hosts.values())


def desired_flow_batches(network, dpid, batch_size, cache=None):
    """Yield the flows a switch should have, in lists of about batch_size.

    The first list contains the cell flows, which need no host, so a switch
    that receives the lists in order can serve new hosts early.  The
    union of the lists is ``openflow_rules.desired_flows(dpid, network)``.
    A LocalFlowCache, if given, supplies the flows of hosts at home on
    the switch, and is renewed once the last list has been taken.
    """
    if cache is not None:
        cache.start()
    yield list(rules.cell_flows(dpid, network))
    batch = []
    for host in switch_hosts(network, dpid):
        if cache is None:
            batch.extend(rules.host_flows(dpid, network, host))
        else:
            batch.extend(cache.host_flows(network, dpid, host))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
    if cache is not None:
        cache.finish()


class LocalFlowCache:
    """The flows of the hosts at home on one switch, kept between resyncs.

    A host attached in its home cell owns flows on that switch only, and
    they depend on its placement and the settings alone, not on the
    topology.  Reusing them lets a resync after a link or port change
    recompute only the cell flows and the roaming hosts' flows.
    """

    __slots__ = ('_entries', '_next')

    def __init__(self):
        self._entries = {}      # mac -> (placement, settings, flows)
        self._next = {}

    def start(self):
        """Begin a pass: entries not used by its end are dropped."""
        self._next = {}

    def host_flows(self, network, dpid, host):
        """Return the flows a host owns on a switch, cached if at home."""
        if host.dpid != dpid or network.cell_of(dpid) != host.home_cell:
            return rules.host_flows(dpid, network, host)
        entry = self._entries.get(host.mac)
        if entry is None or entry[0] != host or \
                entry[1] != network.settings:
            entry = (host, network.settings,
                     rules.host_flows(dpid, network, host))
        self._next[host.mac] = entry
        return entry[2]

    def finish(self):
        """End a pass: keep only the entries it used."""
        self._entries, self._next = self._next, {}


def _role(switches, dpid, port):
    switch = switches.get(dpid)
    return None if switch is None else switch.ports.get(port)


def _reverse(link):
    return rules.CoreLink(link.dst_dpid, link.dst_port, link.src_dpid,
                          link.src_port)

"""The REST API of the TMip controller, served by ``ryu.app.wsgi``.

Every response is JSON.  Errors carry ``{"error": sentence}`` and the HTTP
status that fits: 400 for a malformed argument, 404 for an unknown host
or path, 405 for a method other than GET.
"""

import json
import re

from eventlet import tpool
from ryu.app import wsgi
from ryu.lib import hub

import openflow_rules as rules
from tmip_ryu.network_state import pool_of

INSTANCE = 'tmip_controller'
# HEAD gets the GET answer's status and headers; eventlet drops the body.
READ = ['GET', 'HEAD']
_MAC = re.compile(r'^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$')
_DPID = re.compile(r'^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$')
# Past this many hosts or flows, a response is built in steps that yield
# and is encoded in an OS thread.  At 100,000 bindings, building and
# encoding it in one go held the controller for 4 to 6 s, and Open
# vSwitch drops a controller that is silent for 5 s.
LARGE = 2000


def json_response(body, status=200, large=False):
    """Return a webob response with a JSON body.

    With ``large``, the body is encoded in an OS thread, so that the
    controller's green threads go on meanwhile.
    """
    if large:
        text = tpool.execute(json.dumps, body, indent=1, sort_keys=True,
                             default=str)
    else:
        text = json.dumps(body, indent=1, sort_keys=True, default=str)
    return wsgi.Response(status=status, content_type='application/json',
                         charset='utf-8', body=text.encode())


def json_error(status, message):
    """Return a JSON error response with one sentence."""
    return json_response({'error': message, 'status': status}, status)


class TmipRestController(wsgi.ControllerBase):
    """GET endpoints under /tmip."""

    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[INSTANCE]

    @wsgi.route('tmip_topology', '/tmip/topology', methods=READ)
    def topology(self, req, **kwargs):
        return json_response(topology_of(self.app),
                             large=len(self.app.register) > LARGE)

    @wsgi.route('tmip_hosts', '/tmip/hosts', methods=READ)
    def hosts(self, req, **kwargs):
        return json_response(hosts_of(self.app),
                             large=len(self.app.register) > LARGE)

    @wsgi.route('tmip_host', '/tmip/hosts/{mac}', methods=READ)
    def host(self, req, mac, **kwargs):
        if not _MAC.match(mac):
            return json_error(400, 'invalid MAC address %r; expected six '
                              'hex octets like 02:00:00:00:00:0a' % mac)
        mac = mac.lower().replace('-', ':')
        if int(mac[:2], 16) & 1:
            return json_error(400, 'invalid MAC address %s: it is a group '
                              'address, and hosts have unicast ones' % mac)
        binding = self.app.register.get(mac)
        if binding is None:
            return json_error(404, 'host %s not found' % mac)
        return json_response(host_dict(self.app, binding))

    @wsgi.route('tmip_cells', '/tmip/cells', methods=READ)
    def cells(self, req, **kwargs):
        return json_response(cells_of(self.app))

    @wsgi.route('tmip_handovers', '/tmip/handovers', methods=READ)
    def handovers(self, req, **kwargs):
        return json_response(self.app.coordinator.history())

    @wsgi.route('tmip_counters', '/tmip/counters', methods=READ)
    def counters(self, req, **kwargs):
        body = dict(self.app.counters)
        body['handovers'] = self.app.coordinator.stats()
        return json_response(body)

    @wsgi.route('tmip_flows', '/tmip/flows/{dpid}', methods=READ)
    def flows(self, req, dpid, **kwargs):
        if not _DPID.match(dpid):
            return json_error(400, 'invalid datapath id %r; give it in '
                              'decimal or as 0x<hex>' % dpid)
        number = int(dpid, 0)
        if number not in self.app.switches:
            return json_error(404, 'switch %s not connected' % dpid)
        desired = self.app.desired_flows(number)
        large = len(desired) > LARGE
        if large:
            text = tpool.execute(rules.render_ofctl_all, desired)
        else:
            text = rules.render_ofctl_all(desired)
        return json_response({'dpid': number, 'expected': text.splitlines(),
                              'count': len(desired)}, large=large)


class TmipRestFallback(wsgi.ControllerBase):
    """JSON errors for unknown paths and methods under /tmip.

    Registered after ``TmipRestController``, so it sees only requests
    that no read route took: an unknown path, or a method other than GET
    and HEAD.
    """

    @wsgi.route('tmip_root', '/tmip', methods=None)
    def root(self, req, **kwargs):
        return self.unknown(req, path='')

    @wsgi.route('tmip_unknown', '/tmip/{path:.*}', methods=None)
    def unknown(self, req, path, **kwargs):
        if req.method not in READ:
            return json_error(405, 'method %s is not allowed; this API is '
                              'read-only (GET)' % req.method)
        return json_error(404, 'no such path /tmip/%s; see /tmip/topology, '
                          '/tmip/hosts, /tmip/cells, /tmip/handovers, '
                          '/tmip/counters, /tmip/flows/<dpid>' % path)


def host_dict(app, binding):
    """Return one host's binding as JSON-ready data."""
    body = binding.to_dict()
    body['roaming'] = binding.cell != binding.home_cell
    return body


def hosts_of(app):
    """Return every live binding, sorted by MAC."""
    hosts = []
    for index, binding in enumerate(sorted(app.register.bindings(),
                                           key=lambda b: b.mac)):
        if index and index % LARGE == 0:
            hub.sleep(0)
        hosts.append(host_dict(app, binding))
    return hosts


def cells_of(app):
    """Return every connected cell with its pool and its use."""
    cells = []
    for dpid in sorted(app.switches):
        cell = app.state.cell_of(dpid)
        if cell is None:
            continue
        cells.append({'cell': cell, 'dpid': dpid,
                      'pool': pool_of(app.settings, cell),
                      'usage': app.register.pool_usage(cell)})
    return cells


def topology_of(app):
    """Return switches, links, cells, hosts and tunnels as one document."""
    switches = []
    for dpid, record in sorted(app.switches.items()):
        ports = app.state.ports.get(dpid, {})
        switches.append({
            'dpid': dpid, 'cell': app.state.cell_of(dpid),
            'openflow_version': record.datapath.ofproto.OFP_VERSION,
            'ports': {str(p): app.state.port_role(dpid, p)
                      for p in sorted(ports)},
            'flows': len(record.flows)})
    links = [{'src_dpid': link.src_dpid, 'src_port': link.src_port,
              'dst_dpid': link.dst_dpid, 'dst_port': link.dst_port}
             for link in sorted(app.state.core_links(), key=_link_key)]
    uplinks = [{'dpid': u.dpid, 'port': u.port, 'address': u.address,
                'next_hop': u.next_hop, 'next_hop_mac': u.next_hop_mac}
               for u in app.state.uplinks()]
    hosts = hosts_of(app)
    tunnels = [{'mac': h['mac'], 'address': h['address'],
                'from_cell': h['home_cell'], 'to_cell': h['cell']}
               for h in hosts if h['roaming']]
    return {'switches': switches, 'links': links, 'cells': cells_of(app),
            'uplinks': uplinks, 'hosts': hosts, 'tunnels': tunnels,
            'settings': {
                'route_optimisation': app.settings.route_optimisation,
                'reverse_tunnelling': app.settings.reverse_tunnelling,
                'gateway_mac': app.settings.gateway_mac,
                'lease_time': app.settings.lease_time}}


def _link_key(link):
    return (link.src_dpid, link.src_port, link.dst_dpid, link.dst_port)

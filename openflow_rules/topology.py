"""Shortest paths over the core: the next hop from each switch to each other.

Paths count hops (networkx breadth-first search).  Among equal-length
paths each switch picks the neighbour with the lowest dpid, then the
lowest port.  Because every switch forwards to a neighbour one hop
closer to the destination, label-switched packets cannot loop.
"""

import functools

import networkx


class CoreRoutes:
    """Next-hop ports and hop counts between every pair of switches."""

    __slots__ = ('_next_port', '_hops')

    def __init__(self, next_port, hops):
        self._next_port = next_port
        self._hops = hops

    def port_toward(self, src_dpid, dst_dpid):
        """Return the core port of src that leads toward dst, or None.

        None means dst is src itself or cannot be reached over the core.
        """
        return self._next_port.get(src_dpid, {}).get(dst_dpid)

    def hops(self, src_dpid, dst_dpid):
        """Return the number of core links from src to dst, or None."""
        return self._hops.get(dst_dpid, {}).get(src_dpid)

    def path(self, src_dpid, dst_dpid, links):
        """Return the switches a packet crosses from src to dst, or None."""
        peers = {(link.src_dpid, link.src_port): link.dst_dpid
                 for link in links}
        path = [src_dpid]
        while path[-1] != dst_dpid:
            port = self.port_toward(path[-1], dst_dpid)
            if port is None:
                return None
            path.append(peers[(path[-1], port)])
        return path


def core_graph(switch_dpids, links):
    """Return the core as a networkx DiGraph whose edges keep their ports.

    Of parallel links between two switches the lowest source port is kept.
    """
    graph = networkx.DiGraph()
    graph.add_nodes_from(sorted(switch_dpids))
    for link in sorted(links, key=lambda link: (
            link.src_dpid, link.dst_dpid, link.src_port)):
        if graph.has_edge(link.src_dpid, link.dst_dpid):
            continue
        graph.add_edge(link.src_dpid, link.dst_dpid, port=link.src_port)
    return graph


@functools.lru_cache(maxsize=16)
def _routes_for(switch_dpids, links):
    graph = core_graph(switch_dpids, links)
    toward = graph.reverse(copy=False)
    hops = {dst: networkx.single_source_shortest_path_length(toward, dst)
            for dst in graph.nodes}
    next_port = {}
    for src in graph.nodes:
        neighbours = sorted(graph.successors(src))
        ports = {}
        for dst, distances in hops.items():
            distance = distances.get(src)
            if not distance:
                continue
            for neighbour in neighbours:
                if distances.get(neighbour) == distance - 1:
                    ports[dst] = graph.edges[src, neighbour]['port']
                    break
        next_port[src] = ports
    return CoreRoutes(next_port, hops)


def core_routes(network):
    """Return the CoreRoutes of a network's switches and core links.

    Results are cached by topology, so networks that differ only in hosts
    or settings share one computation.
    """
    return _routes_for(frozenset(network.switches), network.links)

"""Time flow-mod encoding: Ryu's OFPFlowMod against tmip_ryu.ofp_wire.

The flows are every flow the pipeline builds for the example scenarios
(the golden ones and an 8-cell ring with roaming hosts), so every match
field and action kind the controller sends takes part.  Each encoder
builds the message of every flow and serializes it, as Datapath.send_msg
does.  The script prints flow-mods per second for Ryu's classes, for
ofp_wire without its body cache and with a warm cache, and the ratios.

Run it as:  .venv/bin/python bench/bench_encode.py [--rounds N]
"""

import argparse
import os
import platform
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from ryu.ofproto import (  # noqa: E402 (needs the path above)
    ofproto_v1_3, ofproto_v1_3_parser, ofproto_v1_4, ofproto_v1_4_parser)

from openflow_rules import desired_flows, scenarios  # noqa: E402
from openflow_rules.flow import flow_sort_key  # noqa: E402
from tmip_ryu import ofp_wire  # noqa: E402
from tmip_ryu.ofp_render import ryu_flow_mod  # noqa: E402

VERSIONS = {
    '1.3': (ofproto_v1_3, ofproto_v1_3_parser),
    '1.4': (ofproto_v1_4, ofproto_v1_4_parser),
}
# A hand-over among three cells sends about this many flow-mods: the
# controller sent 3,132 in 200 moves on fake datapaths.
FLOW_MODS_PER_HANDOVER = 16


def scenario_flows():
    """Return every flow of the example scenarios, each once, in order."""
    networks = dict(scenarios.golden_scenarios())
    ring = scenarios.ring(8)
    for cell in (1, 3, 5):
        ring = scenarios.move(ring, scenarios.host_mac(cell, 0),
                              cell + 2, 2)
    networks['ring8_roaming'] = ring
    flows = set()
    for network in networks.values():
        for dpid in network.switches:
            flows |= desired_flows(dpid, network)
    return sorted(flows, key=flow_sort_key)


def encode_with_ryu(datapath, flows):
    """Build and serialize Ryu's OFPFlowMod of each flow."""
    for flow in flows:
        ryu_flow_mod(datapath, flow, 'add').serialize()


def encoder_with_cache(cache):
    """Return a function that encodes flows through ofp_wire."""
    def encode(datapath, flows):
        for flow in flows:
            ofp_wire.flow_mod_message(datapath, flow, 'add',
                                      cache=cache).serialize()
    return encode


def rate(encode, datapath, flows, rounds):
    """Return flow-mods per second of an encoder, after one warm-up round."""
    encode(datapath, flows)
    start = time.perf_counter()
    for _ in range(rounds):
        encode(datapath, flows)
    return rounds * len(flows) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=20,
                        help='passes over the flows for each encoder')
    args = parser.parse_args()
    flows = scenario_flows()
    print('flow-mod encoding benchmark: %d distinct flows, %d rounds'
          % (len(flows), args.rounds))
    print('Python %s on %s, %d CPUs' % (platform.python_version(),
                                        platform.machine(), os.cpu_count()))
    for name, (ofproto, parser_module) in VERSIONS.items():
        datapath = types.SimpleNamespace(id=1, ofproto=ofproto,
                                         ofproto_parser=parser_module)
        ryu = rate(encode_with_ryu, datapath, flows, args.rounds)
        plain = rate(encoder_with_cache(None), datapath, flows,
                     args.rounds)
        cached = rate(encoder_with_cache(ofp_wire.BodyCache(len(flows))),
                      datapath, flows, args.rounds)
        print('\n== OpenFlow %s ==' % name)
        for label, value in (('Ryu OFPFlowMod', ryu),
                             ('ofp_wire, no cache', plain),
                             ('ofp_wire, warm cache', cached)):
            print('%-22s %9.0f flow-mods/s  %6.1f us each  x%.1f  '
                  '%.2f ms per %d-flow-mod hand-over'
                  % (label, value, 1e6 / value, value / ryu,
                     1e3 * FLOW_MODS_PER_HANDOVER / value,
                     FLOW_MODS_PER_HANDOVER))


if __name__ == '__main__':
    main()

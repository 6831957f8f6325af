"""Keep Ryu's topology app to what TMip uses of it: LLDP link discovery.

``ryu.topology.switches`` handles every packet-in twice: its host
discovery parses the frame to learn hosts (which TMip learns itself),
and its LLDP handler parses it with ``ryu.lib.packet`` before finding
that it is not LLDP.  Under DHCP load that was about a tenth of the
controller's CPU.  ``trim`` removes the first handler and lets only LLDP
frames through to the second.
"""

from ryu.controller import ofp_event
from ryu.lib.packet import ether_types

_LLDP = ether_types.ETH_TYPE_LLDP.to_bytes(2, 'big')


def trim(app):
    """Trim a ``ryu.topology.switches`` app instance's packet-in handlers.

    Returns False, changing nothing, if the app lacks either handler
    (another Ryu version).
    """
    host_discovery = getattr(app, 'host_discovery_packet_in_handler', None)
    lldp = getattr(app, 'lldp_packet_in_handler', None)
    handlers = app.event_handlers.get(ofp_event.EventOFPPacketIn, [])
    if host_discovery not in handlers or lldp not in handlers:
        return False
    app.unregister_handler(ofp_event.EventOFPPacketIn, host_discovery)
    app.unregister_handler(ofp_event.EventOFPPacketIn, lldp)

    def lldp_frames_only(ev):
        # Ryu sends its LLDP probes untagged.
        if ev.msg.data[12:14] == _LLDP:
            lldp(ev)
    app.register_handler(ofp_event.EventOFPPacketIn, lldp_frames_only)
    return True

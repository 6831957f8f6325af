"""Constants of the TMip pipeline that the controller and the rules share.

Defines the table numbers, the packet-in meter, the default gateway MAC,
EtherTypes, ARP operation codes, IP protocol numbers, flow priorities
and the mapping from cells to MPLS labels.
"""

# Tables.  OpenFlow only lets goto_table move forward, so the label table
# (which pops a label and continues with routing) sits before the route
# table.
TABLE_CLASSIFY = 0
TABLE_LABEL = 1
TABLE_ROUTE = 2
TABLES = (TABLE_CLASSIFY, TABLE_LABEL, TABLE_ROUTE)

# Every flow that sends packets to the controller goes through this meter.
# The controller installs it on each switch, for example as a drop band of
# PACKET_IN_RATE_PPS packets per second.
PACKET_IN_METER_ID = 1000
PACKET_IN_RATE_PPS = 1000

# One virtual gateway MAC for the whole network.  Settings can override it.
GATEWAY_MAC_DEFAULT = '02:00:00:00:00:01'

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_MPLS = 0x8847
ARP_OP_REQUEST = 1
ARP_OP_REPLY = 2
IP_PROTO_UDP = 17
DHCP_SERVER_PORT = 67

# OpenFlow 1.3 port numbers above this one are reserved (OFPP_MAX).
MAX_PORT = 0xffffff00

MIN_CELL = 1
MAX_CELL = 254

# MPLS labels 0..15 are reserved (RFC 3032), so cell labels start above.
CELL_LABEL_BASE = 1000

# Table 0: classify and guard.
PRIORITY_ARP_REPLY = 500
PRIORITY_ARP = 400
PRIORITY_DHCP = 300
PRIORITY_SOURCE_GUARD = 200
PRIORITY_PORT = 100
PRIORITY_SPOOF_DROP = 100
PRIORITY_UPLINK_GUARD = 50
# A host's data frames at the port it is moving to, while the hand-over
# runs: below every flow of that port, above the table-miss.
PRIORITY_MOVE_HOLD = 10

# Table 1: labels.
PRIORITY_LABEL = 100

# Table 2: routes, from the most specific down to the default route.
PRIORITY_NOT_ROUTED = 600
PRIORITY_GATEWAY = 500
PRIORITY_HOST_ROUTE = 400
PRIORITY_POOL = 300
PRIORITY_REVERSE_TUNNEL = 200
PRIORITY_DEFAULT_ROUTE = 100

PRIORITY_TABLE_MISS = 0


def label_for_cell(cell):
    """Return the MPLS label that leads to a cell (1001 for cell 1)."""
    if isinstance(cell, bool) or not isinstance(cell, int):
        raise TypeError('cell must be an int, not %r' % (cell,))
    if not MIN_CELL <= cell <= MAX_CELL:
        raise ValueError('cell %d is out of range %d..%d'
                         % (cell, MIN_CELL, MAX_CELL))
    return CELL_LABEL_BASE + cell


def cell_for_label(label):
    """Return the cell that an MPLS label leads to, or None."""
    cell = label - CELL_LABEL_BASE
    if MIN_CELL <= cell <= MAX_CELL:
        return cell
    return None

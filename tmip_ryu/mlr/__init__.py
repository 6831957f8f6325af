"""The Mobile Location Register of tmip_ryu, in pure standard Python.

Bindings (MAC to home cell, location, /30 and lease), the per-cell /30
allocator, the hand-over coordinator (a two-phase commit over switches)
and the SQLite store. Nothing here imports Ryu or eventlet.
"""

from tmip_ryu.mlr.binding import (
    ATTACHED, EXPIRED, MAX_CELL, MIN_CELL, NETMASK, ROAMING, Binding,
    normalize_mac)
from tmip_ryu.mlr.handover import (
    ABORTED, COMMITTED, FAILED, PENDING, QUEUED, RUNNING, TIMING_KEYS,
    Failed, Handover, HandoverCoordinator, HandoverError, HandoverTimeout,
    Location, Outcome, Participant, Ready, Waitable)
from tmip_ryu.mlr.pool import AddressPool, PoolExhausted
from tmip_ryu.mlr.register import (
    DEFAULT_DECLINE_QUARANTINE, AttachResult, Register, default_pool)
from tmip_ryu.mlr.store import (
    DEFAULT_STATE_PATH, Store, StoreError, WriteBatch)

__all__ = [
    'ABORTED', 'ATTACHED', 'COMMITTED', 'DEFAULT_DECLINE_QUARANTINE',
    'DEFAULT_STATE_PATH', 'EXPIRED', 'FAILED', 'MAX_CELL', 'MIN_CELL',
    'NETMASK', 'PENDING', 'QUEUED', 'ROAMING', 'RUNNING', 'TIMING_KEYS',
    'AddressPool', 'AttachResult', 'Binding', 'Failed', 'Handover',
    'HandoverCoordinator', 'HandoverError', 'HandoverTimeout', 'Location',
    'Outcome', 'Participant', 'PoolExhausted', 'Ready', 'Register', 'Store',
    'StoreError', 'Waitable', 'WriteBatch', 'default_pool', 'normalize_mac',
]

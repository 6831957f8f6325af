"""The hand-over coordinator: a move as a two-phase commit over switches.

A hand-over moves a host's binding to a new (cell, dpid, port). The
controller supplies one ``Participant`` per switch that must change. The
coordinator prepares every participant, commits them in the given order
(downstream first) and only then commits the register record. Any error
or timeout before the commit phase aborts every participant and keeps
the binding. An error during the commit phase leaves the register
unchanged and is reported as 'failed', so that the controller resyncs
the switches from the register.

Holds the participant and waitable protocols, their errors, ``Handover``,
``Outcome`` and ``HandoverCoordinator``, plus ``Ready`` and ``Failed``,
waitables for participants that finish at once.
"""

import collections
import logging
import time
from typing import NamedTuple, Protocol

from tmip_ryu.mlr.binding import check_cell, check_location, normalize_mac

LOG = logging.getLogger(__name__)

QUEUED = 'queued'
PENDING = 'pending'
RUNNING = 'running'
COMMITTED = 'committed'
ABORTED = 'aborted'
FAILED = 'failed'

TIMING_KEYS = ('queued_ms', 'prepare_ms', 'commit_ms', 'total_ms')


class HandoverError(Exception):
    """A participant could not prepare or commit, for ``reason``."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class HandoverTimeout(HandoverError, TimeoutError):
    """A participant did not confirm a phase within its deadline."""


class Waitable(Protocol):
    """The completion of one phase-1 or phase-2 request to a switch."""

    def wait(self, timeout):
        """Return when done; raise HandoverError or HandoverTimeout."""


class Participant(Protocol):
    """One switch's part in a hand-over, implemented by the controller."""

    name: str

    def prepare(self):
        """Send the phase-1 messages without blocking; return a Waitable."""

    def commit(self):
        """Send the commit without blocking; return a Waitable."""

    def abort(self):
        """Discard the prepared changes, as a best effort.

        The coordinator logs and ignores an exception from it.
        """


class Ready:
    """A Waitable that has already succeeded."""

    __slots__ = ()

    def wait(self, timeout):
        """Return at once."""


class Failed:
    """A Waitable that has already failed with a reason."""

    __slots__ = ('reason',)

    def __init__(self, reason):
        self.reason = reason

    def wait(self, timeout):
        """Raise HandoverError with the reason."""
        raise HandoverError(self.reason)


class Location(NamedTuple):
    """The cell, datapath id and port of a host's attachment."""

    cell: int
    dpid: int
    port: int


class Handover:
    """One requested move of a host, from request to outcome.

    ``before`` is a snapshot of the binding the move starts from, and
    ``after`` is the binding as the move would leave it. The controller
    computes the switch changes from the two. ``status`` is 'queued'
    (waiting behind a running move of the same host), 'pending' (ready to
    run), 'running', then 'committed', 'aborted' or 'failed'.
    """

    __slots__ = ('mac', 'target', 'before', 'after', 'status', 'reason',
                 'detected_at', 'started_at', 'superseded_by', 'committing',
                 'timings')

    def __init__(self, binding, target, detected_at, status):
        self.mac = binding.mac
        self.target = target
        self.detected_at = detected_at
        self.status = status
        self.reason = None
        self.started_at = None
        self.superseded_by = None
        self.committing = False
        self.timings = dict.fromkeys(TIMING_KEYS)
        self.set_start(binding)

    def set_start(self, binding):
        """Set ``before`` and ``after`` from the binding a move starts at."""
        self.before = binding.copy()
        self.after = binding.moved_to(*self.target)

    @property
    def source(self):
        """The Location the move starts from."""
        return Location(self.before.cell, self.before.dpid, self.before.port)

    @property
    def cell(self):
        """The target cell."""
        return self.target.cell

    @property
    def dpid(self):
        """The target switch's datapath id."""
        return self.target.dpid

    @property
    def port(self):
        """The target port."""
        return self.target.port

    @property
    def superseded(self):
        """True once a newer move of the same host was requested."""
        return self.superseded_by is not None

    def to_dict(self):
        """Return the hand-over as a JSON-ready history record."""
        binding = self.after if self.status == COMMITTED else self.before
        return {
            'mac': self.mac,
            'from': self.source._asdict(),
            'to': self.target._asdict(),
            'seq': binding.seq,
            'status': self.status,
            'reason': self.reason,
            'started_at': self.started_at,
            'timings': dict(self.timings),
        }

    def __repr__(self):
        return 'Handover(%s cell %d -> %d, %s)' % (
            self.mac, self.before.cell, self.target.cell, self.status)


class Outcome(NamedTuple):
    """The result of ``HandoverCoordinator.run``."""

    handover: Handover
    status: str
    reason: str
    timings: dict


class HandoverCoordinator:
    """Run hand-overs as two-phase commits and keep their history.

    ``clock`` is a monotonic clock in seconds, used for deadlines and
    timings; ``detected_at`` values passed to ``request`` must come from
    it. ``prepare_timeout`` and ``commit_timeout`` bound each phase as a
    whole, in seconds. ``history`` is the number of finished hand-overs
    kept for ``history()``. With ``flush_on_commit`` (the default),
    ``run`` flushes the register after committing the move, so the new
    location is durable before ``run`` returns.

    Hand-overs of different hosts may run concurrently in green threads.
    At most one per host runs at a time, and newer moves of that host
    wait in a queue of one.
    """

    def __init__(self, register, clock=time.monotonic, history=1000,
                 prepare_timeout=1.0, commit_timeout=1.0,
                 flush_on_commit=True):
        self.register = register
        self.clock = clock
        self.prepare_timeout = prepare_timeout
        self.commit_timeout = commit_timeout
        self.flush_on_commit = flush_on_commit
        self._history = collections.deque(maxlen=history)
        self._active = {}
        self._queued = {}
        self._counters = collections.Counter()
        if register.store is not None and history:
            self._history.extend(register.store.load_handovers(history))

    def request(self, mac, cell, dpid, port, detected_at=None):
        """Record that a host was seen at a location; return a Handover.

        Returns None if the host is unknown, already there, or already
        moving there. With no move of the host in progress, the hand-over
        is 'pending' and the caller runs it. Otherwise it is 'queued': it
        replaces any older queued move, the move in progress aborts at its
        next checkpoint unless it is committing, and the caller gets the
        queued move from ``next_for`` once ``run`` returns.
        """
        mac = normalize_mac(mac)
        check_cell(cell)
        check_location(dpid, port)
        if detected_at is None:
            detected_at = self.clock()
        self._counters['requested'] += 1

        binding = self.register.get(mac)
        if binding is None:
            self._counters['unknown_host'] += 1
            return None
        target = Location(cell, dpid, port)
        active = self._active.get(mac)
        if active is None:
            self._drop_queued(mac, 'replaced by a newer move before it ran')
            if binding.location == target:
                self._counters['already_there'] += 1
                return None
            handover = Handover(binding, target, detected_at, PENDING)
            self._active[mac] = handover
            return handover

        latest = self._queued.get(mac, active)
        if latest.target == target:
            self._counters['already_moving'] += 1
            return None
        self._drop_queued(mac, 'replaced by a newer move before it ran')
        handover = Handover(binding, target, detected_at, QUEUED)
        self._queued[mac] = handover
        self._counters['queued'] += 1
        if not active.committing and active.superseded_by is None:
            self._counters['superseded'] += 1
        if not active.committing:
            active.superseded_by = handover
        return handover

    def next_for(self, mac):
        """Return the queued move of a host, now 'pending', or None.

        Call it after ``run`` returns. A queued move whose host has left
        the register or is already at the target is dropped. A pending
        move that was never run counts as abandoned and is recorded as
        aborted, so a caller that skipped ``run`` cannot block the host.
        """
        mac = normalize_mac(mac)
        active = self._active.get(mac)
        if active is not None and active.status == RUNNING:
            return None
        if active is not None:
            del self._active[mac]
            self._finish_unrun(active, 'abandoned before it ran')
        handover = self._queued.pop(mac, None)
        if handover is None:
            return None
        binding = self.register.get(mac)
        if binding is None:
            self._finish_unrun(handover, 'host is no longer registered')
            return None
        handover.set_start(binding)
        if binding.location == handover.target:
            self._finish_unrun(handover, 'host is already there')
            return None
        handover.status = PENDING
        self._active[mac] = handover
        return handover

    def cancel(self, handover, reason):
        """Abort a pending hand-over that will not be run; record why."""
        if handover.status != PENDING:
            raise ValueError('cannot cancel %r: only a pending hand-over '
                             'can be cancelled' % (handover,))
        self._active.pop(handover.mac, None)
        self._finish_unrun(handover, reason)

    def run(self, handover, participants):
        """Run a pending hand-over over participants; return an Outcome.

        ``participants`` are in commit order, downstream first. Every
        prepare() is called before any is waited for; the waits share the
        prepare deadline. Commits are sent and confirmed one at a time.
        Blocks the calling green thread for at most about the two
        timeouts.
        """
        if handover.status != PENDING:
            raise ValueError('cannot run %r: only a pending hand-over can '
                             'run (a queued one comes from next_for)'
                             % (handover,))
        participants = list(participants)
        handover.status = RUNNING
        handover.started_at = self.register.clock()
        started = self.clock()
        handover.timings['queued_ms'] = _ms(started - handover.detected_at)

        reason = self._checkpoint(handover)
        if reason is None:
            reason = self._prepare(participants)
        prepared = self.clock()
        handover.timings['prepare_ms'] = _ms(prepared - started)
        if reason is None:
            reason = self._checkpoint(handover)
        if reason is not None:
            _abort_all(participants)
            return self._finish(handover, ABORTED, reason)

        handover.committing = True
        reason = self._commit(participants)
        committed = self.clock()
        handover.timings['commit_ms'] = _ms(committed - prepared)
        if reason is None:
            reason = self._checkpoint(handover, committing=True)
        if reason is not None:
            return self._finish(handover, FAILED, reason)
        handover.timings['total_ms'] = _ms(committed - handover.detected_at)

        self.register.commit_move(handover.mac, *handover.target)
        return self._finish(handover, COMMITTED, None)

    def history(self):
        """Return the recent hand-overs as dicts, oldest first."""
        return list(self._history)

    def stats(self):
        """Return the counters of requests and outcomes."""
        counters = dict.fromkeys(
            ('requested', 'unknown_host', 'already_there', 'already_moving',
             'queued', 'superseded', 'replaced', 'committed', 'aborted',
             'failed', 'timeouts'), 0)
        counters.update(self._counters)
        counters['running'] = sum(1 for handover in self._active.values()
                                  if handover.status == RUNNING)
        counters['waiting'] = len(self._queued)
        return counters

    # -- phases --------------------------------------------------------

    def _prepare(self, participants):
        """Prepare every participant; return a failure reason or None."""
        deadline = self.clock() + self.prepare_timeout
        waitables = []
        for participant in participants:
            try:
                waitables.append(participant.prepare())
            except Exception as error:  # participants are controller code
                return self._failure(participant, 'prepare', error)
        for participant, waitable in zip(participants, waitables):
            try:
                self._wait(waitable, deadline)
            except Exception as error:  # participants are controller code
                return self._failure(participant, 'prepare', error)
        return None

    def _commit(self, participants):
        """Commit participants in order; return a failure reason or None.

        On a failure, the participant that failed and those not yet
        committed are aborted so their prepared changes are discarded.
        """
        deadline = self.clock() + self.commit_timeout
        for position, participant in enumerate(participants):
            try:
                self._wait(participant.commit(), deadline)
            except Exception as error:  # participants are controller code
                _abort_all(participants[position:])
                return self._failure(participant, 'commit', error)
        return None

    def _wait(self, waitable, deadline):
        if waitable is None:
            return
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise HandoverTimeout('deadline passed before waiting')
        waitable.wait(remaining)

    def _failure(self, participant, phase, error):
        name = getattr(participant, 'name', repr(participant))
        if isinstance(error, HandoverTimeout):
            self._counters['timeouts'] += 1
            return '%s: %s timed out (%s)' % (name, phase, error.reason)
        if isinstance(error, HandoverError):
            return '%s: %s failed: %s' % (name, phase, error.reason)
        LOG.error('participant %s raised in %s', name, phase,
                  exc_info=error)
        return '%s: %s raised %s: %s' % (name, phase,
                                         type(error).__name__, error)

    def _checkpoint(self, handover, committing=False):
        """Return why the hand-over must stop, or None to go on."""
        if handover.superseded_by is not None and not committing:
            target = handover.superseded_by.target
            return ('superseded by a move to cell %d (dpid %#x port %d)'
                    % target)
        binding = self.register.get(handover.mac)
        if binding is None:
            return 'host is no longer registered'
        if (binding.network_int != handover.before.network_int
                or binding.location != handover.source):
            return 'binding changed since the move was requested'
        return None

    # -- outcomes --------------------------------------------------------

    def _finish(self, handover, status, reason):
        handover.status = status
        handover.reason = reason
        if handover.timings['total_ms'] is None:
            handover.timings['total_ms'] = _ms(
                self.clock() - handover.detected_at)
        if self._active.get(handover.mac) is handover:
            del self._active[handover.mac]
        self._record(handover)
        self._log(handover)
        if status == COMMITTED and self.flush_on_commit:
            try:
                self.register.flush()
            except Exception:  # the store raises StoreError; kept pending
                LOG.exception('move of host %s is committed but not yet '
                              'durable', handover.mac)
        return Outcome(handover, status, reason, dict(handover.timings))

    def _finish_unrun(self, handover, reason):
        handover.status = ABORTED
        handover.reason = reason
        handover.started_at = self.register.clock()
        handover.timings['total_ms'] = _ms(
            self.clock() - handover.detected_at)
        self._record(handover)
        LOG.info('move of host %s to cell %d dropped: %s', handover.mac,
                 handover.target.cell, reason)

    def _drop_queued(self, mac, reason):
        queued = self._queued.pop(mac, None)
        if queued is not None:
            self._counters['replaced'] += 1
            self._finish_unrun(queued, reason)

    def _record(self, handover):
        self._counters[handover.status] += 1
        record = handover.to_dict()
        self._history.append(record)
        self.register.record_handover(record)

    def _log(self, handover):
        source, target = handover.source, handover.target
        if handover.status == COMMITTED:
            LOG.info('host %s moved cell %d -> %d (dpid %#x port %d) in '
                     '%.1f ms', handover.mac, source.cell, target.cell,
                     target.dpid, target.port, handover.timings['total_ms'])
        elif handover.status == ABORTED:
            LOG.warning('move of host %s cell %d -> %d aborted: %s',
                        handover.mac, source.cell, target.cell,
                        handover.reason)
        else:
            LOG.error('move of host %s cell %d -> %d failed while '
                      'committing, switches need a resync: %s',
                      handover.mac, source.cell, target.cell,
                      handover.reason)


def _abort_all(participants):
    """Call abort() on every participant, logging any that raises."""
    for participant in participants:
        try:
            participant.abort()
        except Exception:  # abort is best effort; the others still run
            LOG.exception('participant %s raised while aborting',
                          getattr(participant, 'name', participant))


def _ms(seconds):
    return round(seconds * 1000.0, 3)

"""Unit tests of the hand-over coordinator with fake participants."""

import pytest

from tmip_ryu.mlr import (
    TIMING_KEYS, Failed, HandoverCoordinator, HandoverError, HandoverTimeout,
    Ready, Register)

MAC = '02:00:00:00:00:01'
HOME = (1, 0x1, 1)
AWAY = (2, 0x2, 1)
ELSEWHERE = (3, 0x3, 1)


class FakeClock:
    """A manually advanced clock, used as both clocks of the tests."""

    def __init__(self, now=5000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Step:
    """A Waitable that takes ``duration`` seconds, then does ``result``.

    ``result`` is 'ok', 'error' or 'timeout'; ``during`` is called while
    waiting, which is how a test makes a move arrive mid-phase.
    """

    def __init__(self, clock, events, label, result='ok', duration=0.0,
                 during=None):
        self.clock = clock
        self.events = events
        self.label = label
        self.result = result
        self.duration = duration
        self.during = during

    def wait(self, timeout):
        self.events.append(('wait',) + self.label)
        if self.during is not None:
            self.during()
        if self.duration > timeout:
            self.clock.advance(timeout)
            raise HandoverTimeout('no reply in %.3f s' % timeout)
        self.clock.advance(self.duration)
        if self.result == 'error':
            raise HandoverError('switch rejected the bundle')
        if self.result == 'timeout':
            raise HandoverTimeout('no barrier reply')


class FakeParticipant:
    """A switch whose prepare and commit end as its test sets them."""

    def __init__(self, name, clock, events, prepare='ok', commit='ok',
                 prepare_time=0.001, commit_time=0.001, during_prepare=None,
                 during_commit=None):
        self.name = name
        self.clock = clock
        self.events = events
        self.prepare_result = prepare
        self.commit_result = commit
        self.prepare_time = prepare_time
        self.commit_time = commit_time
        self.during_prepare = during_prepare
        self.during_commit = during_commit

    def prepare(self):
        self.events.append(('prepare', self.name))
        if self.prepare_result == 'raise':
            raise RuntimeError('bug in participant')
        return Step(self.clock, self.events, ('prepare', self.name),
                    self.prepare_result, self.prepare_time,
                    self.during_prepare)

    def commit(self):
        self.events.append(('commit', self.name))
        return Step(self.clock, self.events, ('commit', self.name),
                    self.commit_result, self.commit_time, self.during_commit)

    def abort(self):
        self.events.append(('abort', self.name))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def register(clock):
    register = Register(clock=clock)
    register.attach(MAC, *HOME)
    return register


@pytest.fixture
def coordinator(register, clock):
    return HandoverCoordinator(register, clock=clock)


@pytest.fixture
def events():
    return []


def make_participants(clock, events, names=('new', 'home', 'old'),
                      **behaviour):
    """Return participants by name, with the keyword arguments that
    ``behaviour`` maps each name to."""
    return [FakeParticipant(name, clock, events, **behaviour.get(name, {}))
            for name in names]


def calls(events, kind):
    return [name for event, *rest in events if event == kind
            for name in rest[-1:]]


# -- successful moves -------------------------------------------------


def test_committed_move_updates_binding(coordinator, register, clock,
                                        events):
    handover = coordinator.request(MAC, *AWAY)

    outcome = coordinator.run(handover, make_participants(clock, events))

    assert outcome.status == 'committed'
    assert outcome.reason is None
    binding = register.get(MAC)
    assert binding.location == AWAY
    assert binding.seq == 1
    assert binding.state == 'roaming'
    assert calls(events, 'abort') == []


def test_request_gives_before_and_after_snapshots(coordinator):
    handover = coordinator.request(MAC, *AWAY)

    assert handover.status == 'pending'
    assert handover.before.location == HOME
    assert handover.after.location == AWAY
    assert handover.after.seq == handover.before.seq + 1
    assert handover.after.address == handover.before.address
    assert tuple(handover.source) == HOME
    assert tuple(handover.target) == AWAY


def test_all_prepares_are_sent_before_any_wait(coordinator, clock, events):
    handover = coordinator.request(MAC, *AWAY)

    coordinator.run(handover, make_participants(clock, events))

    kinds = [event[0] for event in events]
    assert kinds[:3] == ['prepare', 'prepare', 'prepare']
    assert kinds[3:6] == ['wait', 'wait', 'wait']


def test_commits_follow_given_order_each_confirmed(coordinator, clock,
                                                   events):
    handover = coordinator.request(MAC, *AWAY)

    coordinator.run(handover, make_participants(clock, events))

    commit_phase = [event for event in events
                    if event[0] == 'commit' or event[1:2] == ('commit',)]
    assert commit_phase == [
        ('commit', 'new'), ('wait', 'commit', 'new'),
        ('commit', 'home'), ('wait', 'commit', 'home'),
        ('commit', 'old'), ('wait', 'commit', 'old')]


def test_move_back_home_is_a_move(coordinator, register, clock, events):
    coordinator.run(coordinator.request(MAC, *AWAY),
                    make_participants(clock, events))

    outcome = coordinator.run(coordinator.request(MAC, *HOME),
                              make_participants(clock, events))

    assert outcome.status == 'committed'
    binding = register.get(MAC)
    assert binding.location == HOME
    assert binding.state == 'attached'
    assert binding.seq == 2


def test_empty_participant_list_commits_register(coordinator, register):
    outcome = coordinator.run(coordinator.request(MAC, *AWAY), [])

    assert outcome.status == 'committed'
    assert register.get(MAC).location == AWAY


def test_participant_returning_no_waitable_counts_as_done(coordinator,
                                                          register):
    class Immediate:
        name = 'immediate'

        def prepare(self):
            return None

        def commit(self):
            return Ready()

        def abort(self):
            raise AssertionError('must not abort')

    outcome = coordinator.run(coordinator.request(MAC, *AWAY), [Immediate()])

    assert outcome.status == 'committed'


# -- requests that start nothing -------------------------------------


def test_request_for_unknown_host_returns_none(coordinator):
    assert coordinator.request('02:00:00:00:00:99', *AWAY) is None
    assert coordinator.stats()['unknown_host'] == 1


def test_request_to_current_location_returns_none(coordinator):
    assert coordinator.request(MAC, *HOME) is None
    assert coordinator.stats()['already_there'] == 1


def test_request_to_pending_target_returns_none(coordinator):
    first = coordinator.request(MAC, *AWAY)

    assert first is not None
    assert coordinator.request(MAC, *AWAY) is None
    assert coordinator.stats()['already_moving'] == 1


def test_request_rejects_malformed_mac(coordinator):
    with pytest.raises(ValueError):
        coordinator.request('not-a-mac', *AWAY)


# -- aborts -----------------------------------------------------------


def test_failing_prepare_aborts_everyone_keeps_binding(coordinator,
                                                       register, clock,
                                                       events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     home={'prepare': 'error'})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert 'home: prepare failed: switch rejected the bundle' in \
        outcome.reason
    assert sorted(calls(events, 'abort')) == ['home', 'new', 'old']
    assert calls(events, 'commit') == []
    binding = register.get(MAC)
    assert binding.location == HOME
    assert binding.seq == 0


def test_prepare_raising_aborts_everyone(coordinator, register, clock,
                                         events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     home={'prepare': 'raise'})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert 'RuntimeError' in outcome.reason
    assert sorted(calls(events, 'abort')) == ['home', 'new', 'old']
    assert register.get(MAC).location == HOME


def test_prepare_timeout_aborts_and_is_counted(coordinator, register,
                                               clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     old={'prepare_time': 5.0})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert 'old: prepare timed out' in outcome.reason
    assert coordinator.stats()['timeouts'] == 1
    assert register.get(MAC).location == HOME
    assert outcome.timings['prepare_ms'] == pytest.approx(1000.0, abs=5)


def test_prepare_waits_share_one_deadline(coordinator, clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events, names=('new', 'old'),
                                     new={'prepare_time': 0.6},
                                     old={'prepare_time': 0.6})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert 'old: prepare timed out' in outcome.reason


def test_abort_raising_does_not_stop_other_aborts(coordinator, clock,
                                                  events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     new={'prepare': 'error'})

    def broken_abort():
        events.append(('abort', 'home'))
        raise OSError('connection lost')

    participants[1].abort = broken_abort

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert sorted(calls(events, 'abort')) == ['home', 'new', 'old']


def test_host_released_during_prepare_aborts(coordinator, register, clock,
                                             events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(
        clock, events, new={'during_prepare': lambda: register.release(MAC)})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert outcome.reason == 'host is no longer registered'
    assert calls(events, 'commit') == []


def test_declined_address_during_prepare_aborts(coordinator, register,
                                                clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(
        clock, events, new={'during_prepare': lambda: register.decline(MAC)})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'aborted'
    assert 'binding changed' in outcome.reason
    assert register.get(MAC).location == HOME


# -- failures in the commit phase ------------------------------------


def test_commit_error_fails_without_register_update(coordinator, register,
                                                    clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     home={'commit': 'error'})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'failed'
    assert 'home: commit failed' in outcome.reason
    binding = register.get(MAC)
    assert binding.location == HOME
    assert binding.seq == 0
    assert calls(events, 'commit') == ['new', 'home']
    assert sorted(calls(events, 'abort')) == ['home', 'old']
    assert coordinator.stats()['failed'] == 1


def test_commit_timeout_fails(coordinator, register, clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     old={'commit_time': 3.0})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'failed'
    assert 'old: commit timed out' in outcome.reason
    assert register.get(MAC).location == HOME


def test_host_released_during_commit_fails(coordinator, register, clock,
                                           events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(
        clock, events, old={'during_commit': lambda: register.release(MAC)})

    outcome = coordinator.run(handover, participants)

    assert outcome.status == 'failed'
    assert outcome.reason == 'host is no longer registered'


# -- supersession: the last move wins --------------------------------


def test_newer_move_supersedes_running_one(coordinator, register, clock,
                                           events):
    first = coordinator.request(MAC, *AWAY)
    queued = []
    participants = make_participants(
        clock, events,
        new={'during_prepare': lambda: queued.append(
            coordinator.request(MAC, *ELSEWHERE))})

    outcome = coordinator.run(first, participants)

    assert outcome.status == 'aborted'
    assert outcome.reason.startswith('superseded by a move to cell 3')
    assert sorted(calls(events, 'abort')) == ['home', 'new', 'old']
    assert queued[0].status == 'queued'
    assert register.get(MAC).location == HOME

    second = coordinator.next_for(MAC)
    assert second is queued[0]
    assert second.status == 'pending'
    assert second.before.location == HOME
    assert coordinator.run(second, []).status == 'committed'
    assert register.get(MAC).location == ELSEWHERE


def test_only_newest_queued_move_survives(coordinator, register, clock,
                                          events):
    first = coordinator.request(MAC, *AWAY)
    fourth = (4, 0x4, 2)

    def moves_arrive():
        coordinator.request(MAC, *ELSEWHERE)
        coordinator.request(MAC, *fourth)

    participants = make_participants(clock, events,
                                     new={'during_prepare': moves_arrive})

    coordinator.run(first, participants)
    latest = coordinator.next_for(MAC)
    coordinator.run(latest, [])

    assert tuple(latest.target) == fourth
    assert register.get(MAC).location == fourth
    assert coordinator.next_for(MAC) is None
    statuses = [(record['to']['cell'], record['status'], record['reason'])
                for record in coordinator.history()]
    assert statuses[0] == (3, 'aborted',
                           'replaced by a newer move before it ran')
    assert statuses[1][:2] == (2, 'aborted')
    assert statuses[2] == (4, 'committed', None)


def test_move_during_commit_does_not_abort(coordinator, register, clock,
                                           events):
    first = coordinator.request(MAC, *AWAY)
    participants = make_participants(
        clock, events,
        old={'during_commit': lambda: coordinator.request(MAC, *ELSEWHERE)})

    outcome = coordinator.run(first, participants)

    assert outcome.status == 'committed'
    assert register.get(MAC).location == AWAY
    second = coordinator.next_for(MAC)
    assert second.before.location == AWAY
    assert coordinator.run(second, []).status == 'committed'
    assert register.get(MAC).location == ELSEWHERE
    assert register.get(MAC).seq == 2


def test_move_superseded_before_it_starts_aborts_at_once(coordinator,
                                                         clock, events):
    first = coordinator.request(MAC, *AWAY)
    coordinator.request(MAC, *ELSEWHERE)

    outcome = coordinator.run(first, make_participants(clock, events))

    assert outcome.status == 'aborted'
    assert 'superseded' in outcome.reason
    assert calls(events, 'prepare') == []


def test_queued_return_to_start_is_dropped(coordinator, register, clock,
                                           events):
    first = coordinator.request(MAC, *AWAY)
    participants = make_participants(
        clock, events,
        new={'during_prepare': lambda: coordinator.request(MAC, *HOME)})

    coordinator.run(first, participants)

    assert coordinator.next_for(MAC) is None
    assert register.get(MAC).location == HOME
    assert coordinator.history()[-1]['reason'] == 'host is already there'


def test_queued_move_cannot_run_directly(coordinator):
    coordinator.request(MAC, *AWAY)
    queued = coordinator.request(MAC, *ELSEWHERE)

    with pytest.raises(ValueError, match='only a pending hand-over'):
        coordinator.run(queued, [])


def test_next_for_waits_while_move_runs(coordinator, clock, events):
    first = coordinator.request(MAC, *AWAY)
    seen = []

    def move_arrives_and_caller_asks():
        coordinator.request(MAC, *ELSEWHERE)
        seen.append(coordinator.next_for(MAC))

    participants = make_participants(
        clock, events, new={'during_prepare': move_arrives_and_caller_asks})

    coordinator.run(first, participants)

    assert seen == [None]
    assert coordinator.next_for(MAC).status == 'pending'


def test_next_for_abandons_move_that_never_ran(coordinator):
    skipped = coordinator.request(MAC, *AWAY)
    coordinator.request(MAC, *ELSEWHERE)

    second = coordinator.next_for(MAC)

    assert skipped.status == 'aborted'
    assert skipped.reason == 'abandoned before it ran'
    assert tuple(second.target) == ELSEWHERE
    assert second.status == 'pending'


def test_handover_exposes_target_fields(coordinator):
    handover = coordinator.request(MAC, *AWAY)

    assert (handover.cell, handover.dpid, handover.port) == AWAY


def test_new_request_after_forgotten_queue_replaces_it(coordinator,
                                                       register):
    first = coordinator.request(MAC, *AWAY)
    coordinator.request(MAC, *ELSEWHERE)
    coordinator.run(first, [])

    newest = coordinator.request(MAC, 4, 0x4, 1)

    assert newest.status == 'pending'
    assert coordinator.next_for(MAC) is None


def test_cancel_records_aborted_move(coordinator):
    handover = coordinator.request(MAC, *AWAY)

    coordinator.cancel(handover, 'no path to cell 2')

    assert handover.status == 'aborted'
    assert coordinator.history()[-1]['reason'] == 'no path to cell 2'
    assert coordinator.request(MAC, *AWAY) is not None


# -- history and statistics ------------------------------------------


def test_history_has_timings_for_each_phase(coordinator, clock, events):
    handover = coordinator.request(MAC, *AWAY, detected_at=clock.now)
    clock.advance(0.004)
    participants = make_participants(
        clock, events, names=('new', 'old'),
        new={'prepare_time': 0.002, 'commit_time': 0.003},
        old={'prepare_time': 0.001, 'commit_time': 0.001})

    coordinator.run(handover, participants)

    timings = coordinator.history()[-1]['timings']
    assert tuple(timings) == TIMING_KEYS
    assert timings['queued_ms'] == pytest.approx(4.0)
    assert timings['prepare_ms'] == pytest.approx(3.0)
    assert timings['commit_ms'] == pytest.approx(4.0)
    assert timings['total_ms'] == pytest.approx(11.0)


def test_history_record_names_places_and_outcome(coordinator, register,
                                                 clock):
    coordinator.run(coordinator.request(MAC, *AWAY), [])

    record = coordinator.history()[-1]

    assert record['mac'] == MAC
    assert record['from'] == {'cell': 1, 'dpid': 1, 'port': 1}
    assert record['to'] == {'cell': 2, 'dpid': 2, 'port': 1}
    assert record['seq'] == 1
    assert record['status'] == 'committed'
    assert record['reason'] is None
    assert record['started_at'] == register.clock()


def test_aborted_record_has_no_commit_time(coordinator, clock, events):
    handover = coordinator.request(MAC, *AWAY)
    participants = make_participants(clock, events,
                                     new={'prepare': 'error'})

    coordinator.run(handover, participants)

    timings = coordinator.history()[-1]['timings']
    assert timings['commit_ms'] is None
    assert timings['prepare_ms'] is not None
    assert timings['total_ms'] is not None


def test_history_keeps_only_latest(register, clock):
    coordinator = HandoverCoordinator(register, clock=clock, history=3)
    places = [AWAY, ELSEWHERE, HOME, AWAY, ELSEWHERE]

    for place in places:
        coordinator.run(coordinator.request(MAC, *place), [])

    history = coordinator.history()
    assert len(history) == 3
    assert [record['to']['cell'] for record in history] == [1, 2, 3]


def test_stats_count_outcomes(coordinator, clock, events):
    coordinator.run(coordinator.request(MAC, *AWAY), [])
    failing = make_participants(clock, events, names=('new',),
                                new={'prepare': 'error'})
    coordinator.run(coordinator.request(MAC, *ELSEWHERE), failing)

    stats = coordinator.stats()

    assert stats['requested'] == 2
    assert stats['committed'] == 1
    assert stats['aborted'] == 1
    assert stats['running'] == 0


def test_failed_waitable_reports_reason(coordinator, register):
    class Rejecting:
        name = 'dpid 0x2 (new)'

        def prepare(self):
            return Failed('bundle add rejected: bad match')

        def commit(self):
            return Ready()

        def abort(self):
            pass

    outcome = coordinator.run(coordinator.request(MAC, *AWAY), [Rejecting()])

    assert outcome.reason == ('dpid 0x2 (new): prepare failed: bundle add '
                              'rejected: bad match')

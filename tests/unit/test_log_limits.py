"""TopologyErrorLimiter: one counted line a minute for Ryu's tracebacks."""

import logging
import sys

from tmip_ryu.log_limits import TopologyErrorLimiter


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def handler_error_record(app='switches'):
    try:
        raise UnicodeDecodeError('utf-8', b'\xff', 0, 1, 'invalid byte')
    except UnicodeDecodeError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        'ryu.base.app_manager', logging.ERROR, __file__, 1,
        '%s: Exception occurred during handler processing. Backtrace '
        'from offending handler [%s] servicing event [%s] follows.',
        (app, 'lldp_packet_in_handler', 'EventOFPPacketIn'), exc_info)


def test_first_error_becomes_one_warning_line():
    limiter = TopologyErrorLimiter(clock=FakeClock())
    record = handler_error_record()

    assert limiter.filter(record)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert 'UnicodeDecodeError' in record.getMessage()
    assert 'lldp_packet_in_handler' in record.getMessage()


def test_repeats_within_a_minute_are_counted_not_logged():
    clock = FakeClock()
    counted = []
    limiter = TopologyErrorLimiter(lambda: counted.append(1), clock=clock)
    limiter.filter(handler_error_record())

    kept = [limiter.filter(handler_error_record()) for _ in range(5)]
    clock.now += 61
    later = handler_error_record()

    assert kept == [False] * 5
    assert limiter.filter(later)
    assert '5 more such errors' in later.getMessage()
    assert len(counted) == 7


def test_other_apps_errors_pass_unchanged():
    limiter = TopologyErrorLimiter(clock=FakeClock())
    record = handler_error_record(app='TmipController')

    assert limiter.filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None

"""Turn Ryu topology's tracebacks on malformed frames into counted lines.

``ryu.topology.switches`` (Ryu 4.34) parses every packet-in for host and
LLDP discovery and raises on truncated frames and malformed LLDP (for
example ``struct.error``, ``UnicodeDecodeError``).  Ryu's event loop then
logs a 15-line traceback per frame, so any host could flood the log.
This filter replaces those records with one line a minute that says what
failed and how often.
"""

import logging
import time

RYU_APP_LOGGER = 'ryu.base.app_manager'
TOPOLOGY_APP = 'switches'  # the name ryu.topology.switches gives itself


class TopologyErrorLimiter(logging.Filter):
    """Rate-limits handler errors of Ryu's topology app to one a minute."""

    def __init__(self, on_error=None, interval=60.0, clock=time.monotonic):
        super().__init__()
        self.on_error = on_error
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self._last = None

    def filter(self, record):
        if not record.args or record.args[0] != TOPOLOGY_APP:
            return True
        if self.on_error is not None:
            self.on_error()
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg = ('Ryu topology app failed on a frame it could not '
                      'parse (%s: %s) in %s; %d more such errors since '
                      'the last line')
        record.args = (type(error).__name__, error, record.args[1],
                       self.suppressed)
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.WARNING
        record.levelname = 'WARNING'
        self._last = now
        self.suppressed = 0
        return True


def install(on_error=None):
    """Attach the limiter to Ryu's app manager logger; return it."""
    limiter = TopologyErrorLimiter(on_error)
    logging.getLogger(RYU_APP_LOGGER).addFilter(limiter)
    return limiter

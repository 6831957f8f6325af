"""Start ``ryu-manager tmip_ryu.apps`` as a user would, and stop it by pid."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RYU_MANAGER = os.path.join(os.path.dirname(sys.executable), 'ryu-manager')

if os.path.join(REPO, 'mininet') not in sys.path:
    sys.path.insert(0, os.path.join(REPO, 'mininet'))

import tmip_topo  # noqa: E402  (found through the path set just above)


def wait_for(predicate, timeout, interval=0.05, message='condition'):
    """Call ``predicate`` until it returns a true value or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError('timed out after %.1f s waiting for %s'
                               % (timeout, message))
        time.sleep(interval)


class Controller:
    """One ``ryu-manager tmip_ryu.apps`` process on its own ports."""

    def __init__(self, config_text=None, extra_args=(), workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix='tmip-ctl-')
        self.of_port = tmip_topo.listen_port()
        self.rest_port = tmip_topo.listen_port()
        self.log_path = os.path.join(self.workdir, 'ryu-manager.log')
        self.state_path = os.path.join(self.workdir, 'tmip-state.sqlite')
        self.config_path = os.path.join(self.workdir, 'tmip.conf')
        with open(self.config_path, 'w') as config:
            config.write(config_text or '[tmip]\n')
            if 'state_file' not in (config_text or ''):
                config.write('state_file = %s\n' % self.state_path)
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def of_target(self):
        """The ovs-vsctl set-controller target of this controller."""
        return 'tcp:127.0.0.1:%d' % self.of_port

    def start(self, timeout=30):
        """Start ryu-manager; wait until it serves REST and OpenFlow."""
        args = [RYU_MANAGER, 'tmip_ryu.apps',
                '--ofp-tcp-listen-port', str(self.of_port),
                '--wsapi-port', str(self.rest_port),
                '--config-file', self.config_path] + self.extra_args
        log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        wait_for(self._rest_is_up, timeout, interval=0.2,
                 message='the REST API of ryu-manager (log: %s)'
                 % self.log_path)
        wait_for(lambda: tmip_topo.listening(self.of_port), 5,
                 message='ryu-manager to listen on OpenFlow port %d (log: '
                 '%s)' % (self.of_port, self.log_path))
        return self

    def _rest_is_up(self):
        if self.process.poll() is not None:
            raise RuntimeError('ryu-manager exited with %s; log:\n%s'
                               % (self.process.returncode, self.log_text()))
        try:
            self.get('/tmip/cells')
        except (OSError, urllib.error.URLError):
            return False
        return True

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.rest_port, path)

    def get(self, path):
        """GET a REST path and return the decoded JSON body."""
        with urllib.request.urlopen(self.url(path), timeout=5) as reply:
            return json.loads(reply.read().decode())

    def get_status(self, path):
        """GET a REST path and return (status, decoded JSON body)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as reply:
                return reply.status, json.loads(reply.read().decode())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode())

    def log_text(self):
        with open(self.log_path, errors='replace') as log:
            return log.read()

    def log_tail(self, count):
        """Return the last ``count`` lines of the log."""
        return '\n'.join(self.log_text().splitlines()[-count:])

    def state(self):
        """Describe the process: running, with its pid, or how it ended."""
        if self.process is None:
            return 'was never started'
        if self.process.poll() is None:
            return 'runs as pid %d' % self.process.pid
        return 'exited with status %d' % self.process.returncode

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop this ryu-manager by its pid; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def kill(self):
        """Kill this ryu-manager with SIGKILL, as a crash would."""
        self.stop(sig=signal.SIGKILL)

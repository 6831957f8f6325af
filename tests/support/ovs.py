"""Create and remove OVS bridges (userspace datapath) for one test."""

import subprocess


def run(*args, check=True):
    """Run a command and return its standard output as text."""
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (
            ' '.join(args), result.returncode, result.stderr.strip()))
    return result.stdout


class Bridges:
    """Bridges a test created; ``remove_all`` deletes exactly those."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.names = []

    def add(self, index, dpid, controller_target):
        """Add bridge <prefix><index> with the given datapath id."""
        name = '%s%d' % (self.prefix, index)
        run('ovs-vsctl', '--may-exist', 'add-br', name, '--',
            'set', 'bridge', name, 'datapath_type=netdev',
            'protocols=OpenFlow13,OpenFlow14', 'fail_mode=secure',
            'other-config:datapath-id=%016x' % dpid, '--',
            'set-controller', name, controller_target)
        self.names.append(name)
        return name

    def remove_all(self):
        for name in reversed(self.names):
            run('ovs-vsctl', '--if-exists', 'del-br', name, check=False)
        self.names.clear()


def dump_flows(bridge, cookie_filter=None):
    """Return the flows of a bridge as ovs-ofctl prints them, one a line."""
    args = ['ovs-ofctl', '-O', 'OpenFlow14', '--no-stats', 'dump-flows',
            bridge]
    if cookie_filter:
        args.append('cookie=%s' % cookie_filter)
    lines = run(*args).splitlines()
    return [line.strip() for line in lines
            if line.strip() and not line.startswith('OFPST_FLOW')]


def is_connected(bridge):
    """Tell whether the bridge's controller connection is up."""
    uuids = run('ovs-vsctl', 'get', 'bridge', bridge, 'controller',
                check=False).strip().strip('[]')
    if not uuids:
        return False
    text = run('ovs-vsctl', 'get', 'controller', uuids.split(',')[0],
               'is_connected', check=False)
    return text.strip() == 'true'

"""The controller starts from the environment and talks to a real OVS."""

import socket
import urllib.request

import pytest

from emulation import emulation_factory  # noqa: F401
from support.ovs import dump_flows, is_connected
from support.processes import Controller, wait_for

pytestmark = pytest.mark.integration


def test_ryu_manager_logs_that_tmip_is_loaded(controller_factory):
    controller = controller_factory()

    assert 'tmip_ryu loaded' in controller.log_text()


def test_rest_port_answers_http_get(controller_factory):
    controller = controller_factory()

    with urllib.request.urlopen(controller.url('/tmip/cells'),
                                timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers['Content-Type'].startswith('application/json')


def test_ovs_bridge_connects_and_gets_table_miss(controller_factory,
                                                 bridges):
    controller = controller_factory()
    bridge = bridges.add(1, 1, controller.of_target)

    wait_for(lambda: is_connected(bridge), 15, message='bridge to connect')
    wait_for(lambda: any('priority=0' in flow and 'CONTROLLER' in flow
                         for flow in dump_flows(bridge)),
             15, message='the table-miss flow on %s' % bridge)


def test_taken_rest_port_stops_start_with_one_sentence(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(('127.0.0.1', 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        controller = Controller(workdir=str(tmp_path))
        controller.rest_port = port

        with pytest.raises(RuntimeError) as raised:
            controller.start(timeout=20)

    assert 'is already in use' in str(raised.value)
    assert '--wsapi-port' in str(raised.value)
    assert controller.process.returncode == 1


def test_unconnected_bridges_reported_with_state(controller_factory,
                                                 emulation_factory):
    emulation = emulation_factory(cells=1, hosts=1)
    controller = controller_factory(emulation.config())
    controller.stop()

    with pytest.raises(TimeoutError) as raised:
        emulation.connect(controller, timeout=2)

    report = str(raised.value)
    assert 'ryu-manager exited with status' in report
    for name in emulation.switch_names:
        assert '%s: %s not connected' % (name, controller.of_target) \
            in report
    assert 'tmip_ryu loaded' in report

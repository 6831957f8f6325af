"""The controller starts from the environment and talks to a real OVS."""

import urllib.request

import pytest

from support.ovs import dump_flows, is_connected
from support.processes import wait_for

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

"""Large REST responses let the controller's other green threads run."""

import json
import types

from ryu.lib import hub

from tmip_ryu.apps import rest
from tmip_ryu.mlr import Register

HOSTS = 2 * rest.LARGE + 500


def app_with_hosts(count):
    register = Register(pools={1: '100.64.0.0/12'})
    for index in range(count):
        mac = '02:00:00:%02x:%02x:%02x' % (index >> 16, (index >> 8) & 0xff,
                                           index & 0xff)
        assert register.attach(mac, 1, 1, 2).binding is not None
    return types.SimpleNamespace(register=register)


def test_hosts_listing_yields_while_built():
    app = app_with_hosts(HOSTS)
    ticks = []

    def ticker():
        while True:
            ticks.append(1)
            hub.sleep(0)
    thread = hub.spawn(ticker)
    hosts = rest.hosts_of(app)
    hub.kill(thread)

    assert len(hosts) == HOSTS
    assert [h['mac'] for h in hosts] == sorted(h['mac'] for h in hosts)
    assert len(ticks) >= 2


def test_large_body_encodes_like_small_one():
    body = {'hosts': [{'mac': '02:00:00:00:00:%02x' % i, 'n': i}
                      for i in range(50)]}

    large = rest.json_response(body, large=True)
    small = rest.json_response(body)

    assert large.body == small.body
    assert json.loads(large.body) == body

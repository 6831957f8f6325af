"""The REST API answers junk with a JSON error and the right status."""

import json
import urllib.error
import urllib.request

import pytest

from support.processes import Controller

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def controller(tmp_path_factory):
    """One controller for the module: these tests only read from it."""
    started = Controller(workdir=str(tmp_path_factory.mktemp('rest')))
    yield started.start()
    started.stop()


@pytest.mark.parametrize('path, status', [
    ('/tmip/hosts/zz', 400),
    ('/tmip/hosts/ff:ff:ff:ff:ff:ff', 400),
    ('/tmip/hosts/01-00-5e-00-00-01', 400),
    ('/tmip/hosts/%00', 400),
    ('/tmip/hosts/02:00:00:00:00:09', 404),
    ('/tmip/flows/abc', 400),
    ('/tmip/flows/7', 404),
    ('/tmip/no/such/path', 404),
])
def test_bad_request_gets_json_error(controller, path, status):
    code, body = controller.get_status(path)

    assert code == status
    assert body['status'] == status
    assert body['error']


def test_post_is_rejected_with_405(controller):
    request = urllib.request.Request(controller.url('/tmip/hosts'),
                                     data=b'{}', method='POST')

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == 405
    assert 'read-only' in json.loads(raised.value.read())['error']


@pytest.mark.parametrize('path', ['/tmip/topology', '/tmip/hosts',
                                  '/tmip/cells', '/tmip/handovers',
                                  '/tmip/counters'])
def test_read_endpoints_answer_json(controller, path):
    code, body = controller.get_status(path)

    assert code == 200
    assert isinstance(body, (list, dict))

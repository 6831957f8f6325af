"""Traffic between roaming hosts and a correspondent behind the router."""

import time

import pytest

from emulation import (emulation_factory, ping,  # noqa: F401
                       tmip, wait_binding_cell)
import tmip_topo

pytestmark = pytest.mark.integration


def _roam(emulation, controller, host, cell):
    emulation.move(host, cell)
    wait_binding_cell(controller, host, cell)


def test_ext_reaches_host_at_home_and_roaming(tmip):
    emulation, controller = tmip(cells=3, hosts=1)
    roaming = emulation.host(1)
    address = emulation.address(roaming)
    assert ping(emulation.ext, address, count=3, timeout=2) >= 2

    _roam(emulation, controller, roaming, 3)
    session = emulation.iperf(emulation.ext, roaming, 5201, duration=3)

    assert ping(emulation.ext, address, count=3, timeout=2) >= 2
    assert ping(roaming, tmip_topo.EXTERNAL_HOST_ADDRESS, count=3,
                timeout=2) >= 2
    assert session.finish()


def test_reverse_tunnelling_passes_router_rp_filter(tmip):
    emulation, controller = tmip(cells=2, hosts=1, reverse_tunnelling=True)
    emulation.router.set_rp_filter(1)
    roaming = emulation.host(1)
    address = emulation.address(roaming)

    _roam(emulation, controller, roaming, 2)

    assert ping(emulation.ext, address, count=3, timeout=2) >= 2
    assert ping(roaming, tmip_topo.EXTERNAL_HOST_ADDRESS, count=3,
                timeout=2) >= 2


def test_rp_filter_drops_roaming_host_without_reverse_tunnel(tmip):
    # The counterpart of the test above: it shows that the router's filter
    # is on and that reverse tunnelling is what gets traffic through.
    emulation, controller = tmip(cells=2, hosts=1, reverse_tunnelling=False)
    emulation.router.set_rp_filter(1)
    roaming = emulation.host(1)
    address = emulation.address(roaming)
    assert ping(emulation.ext, address, count=3, timeout=2) >= 2

    _roam(emulation, controller, roaming, 2)
    time.sleep(0.5)

    assert ping(emulation.ext, address, count=3, timeout=1) == 0

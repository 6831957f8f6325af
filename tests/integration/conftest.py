"""Fixtures for integration tests: controllers and OVS bridges."""

import itertools
import os

import pytest

from support.ovs import Bridges
from support.processes import Controller

_bridge_prefixes = itertools.count()


@pytest.fixture
def controller_factory(tmp_path):
    """Start ryu-manager processes for one test; stop them afterwards."""
    started = []

    def start(config_text=None, extra_args=()):
        workdir = tmp_path / ('controller%d' % len(started))
        workdir.mkdir()
        controller = Controller(config_text, extra_args, str(workdir))
        started.append(controller)
        return controller.start()

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def bridges():
    """OVS bridges for one test, named so that they cannot clash."""
    prefix = 'tt%d%dx' % (os.getpid() % 1000, next(_bridge_prefixes))
    created = Bridges(prefix)
    yield created
    created.remove_all()

"""Pytest configuration shared by unit and integration tests."""

import os
import sys

import pytest

# tests/support is imported as ``support`` by every test module.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(config, items):
    """Skip integration tests, with the reason, when not running as root."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason='integration tests need root')
    for item in items:
        if 'integration' in item.keywords:
            item.add_marker(skip)

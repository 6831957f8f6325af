"""The setup scripts: idempotent, and one clear sentence when they fail."""

import os
import shutil
import subprocess

import pytest

from support.processes import REPO

pytestmark = pytest.mark.integration


def run_as_nobody(*args):
    """Run a command as the unprivileged user nobody."""
    return subprocess.run(
        ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
         *args], cwd=REPO, capture_output=True, text=True)


def test_second_setup_changes_nothing():
    result = subprocess.run(['make', '-s', 'setup'], cwd=REPO,
                            capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert result.stderr == ''


@pytest.mark.parametrize('script', ['install-debian-packages.sh',
                                    'start-ovs.sh'])
def test_setup_without_root_says_so(script):
    result = run_as_nobody('sh', os.path.join('scripts', script))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert 'needs root' in lines[0]


def test_make_test_without_root_says_so():
    result = run_as_nobody('sh', 'scripts/check-root.sh', 'make test')

    assert result.returncode != 0
    assert result.stderr.startswith('error: make test needs root')


def test_package_install_without_apt_says_so(tmp_path):
    # A PATH with the shell tools but without apt-get.
    for tool in ('id', 'dpkg-query', 'dirname', 'cat'):
        found = shutil.which(tool)
        if found:
            os.symlink(found, tmp_path / tool)
    result = subprocess.run(
        ['/bin/sh', 'scripts/install-debian-packages.sh'], cwd=REPO,
        capture_output=True, text=True, env={'PATH': str(tmp_path)})

    assert result.returncode != 0
    assert 'apt-get not found' in result.stderr

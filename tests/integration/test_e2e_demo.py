"""The demo's roaming scenario, run against a test controller."""

import os

import pytest

import emulation  # noqa: F401 (puts mininet/ on sys.path)
import demo

pytestmark = pytest.mark.integration


@pytest.mark.parametrize('links', [[], ['--prewired']],
                         ids=['cable', 'radio'])
def test_demo_roams_host_through_every_cell(controller_factory, tmp_path,
                                            capsys, links):
    prefix = 'e%02dd' % (os.getpid() % 100)
    args = demo.parse_arguments(['--prefix', prefix, '--dwell', '2',
                                 '--run-dir', str(tmp_path / 'demo')]
                                + links)
    run = demo.Demo(args)
    try:
        run.build()
        controller = controller_factory(run.config_text())
        run.rest = demo.Rest(controller.rest_port)
        run.connect(controller.of_target)
        run.start_dhcp()
        survived = run.play()
        run.summary()
    finally:
        run.stop()

    report = capsys.readouterr().out
    moves = [line for line in report.splitlines()
             if line.startswith('move ')]
    assert survived, report
    assert len(moves) == 3, report
    for line in moves:
        assert 'hand-over ' in line, line
        assert ' ms (prepare' in line, line
        assert 'DEAD' not in line, line
    assert 'iperf3 %sext -> %sh1: completed' % (prefix, prefix) in report
    assert 'home cell 1, now cell 1' in report

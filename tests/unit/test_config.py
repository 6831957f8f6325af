"""The [tmip] options: defaults, parsing and one-sentence errors."""

import socket

import pytest
from oslo_config import cfg as oslo_cfg

from tmip_ryu import config


@pytest.fixture
def conf(tmp_path):
    """A private ConfigOpts with the [tmip] options and a config file."""
    def load(text):
        path = tmp_path / 'tmip.conf'
        path.write_text('[tmip]\n' + text)
        opts = oslo_cfg.ConfigOpts()
        opts.register_opts(config.OPTIONS, group=config.GROUP)
        opts(args=['--config-file', str(path)], project='tmip-test')
        return opts
    return load


def test_defaults_need_no_config(conf):
    settings = config.load_settings(conf(''))

    assert settings.uplinks == ()
    assert settings.route_optimisation is True
    assert settings.reverse_tunnelling is False
    assert settings.lease_time == 3600
    assert settings.gateway_mac == '02:00:00:00:00:01'


def test_uplinks_parse_into_ports_and_addresses(conf):
    settings = config.load_settings(
        conf('uplinks = 1:1:172.16.1.1/30:172.16.1.2, '
             '2:5:172.16.2.1/30:172.16.2.2\n'))

    first, second = settings.uplinks
    assert (first.dpid, first.port) == (1, 1)
    assert str(first.interface) == '172.16.1.1/30'
    assert str(first.next_hop) == '172.16.1.2'
    assert (second.dpid, second.port) == (2, 5)


def test_cell_is_dpid_unless_configured(conf):
    settings = config.load_settings(conf('cell_ids = 0x1000:7\n'))

    assert settings.cell_of(3) == 3
    assert settings.cell_of(0x1000) == 7
    assert settings.cell_of(300) is None


def test_sample_config_file_loads(tmp_path):
    opts = oslo_cfg.ConfigOpts()
    opts.register_opts(config.OPTIONS, group=config.GROUP)
    opts(args=['--config-file', 'etc/tmip.conf.sample'], project='t')

    settings = config.load_settings(opts)

    assert settings.state_file == config.DEFAULT_STATE_FILE


@pytest.mark.parametrize('text, option', [
    ('uplinks = 1:1:172.16.1.1:172.16.1.2\n', 'uplinks'),
    ('uplinks = 1:1:172.16.1.1/30\n', 'uplinks'),
    ('uplinks = 1:x:172.16.1.1/30:172.16.1.2\n', 'uplinks'),
    ('uplinks = 1:1:172.16.1.1/30:172.16.9.2\n', 'uplinks'),
    ('uplinks = 1:1:172.16.1.1/30:172.16.1.2,1:1:172.16.1.1/30:'
     '172.16.1.2\n', 'uplinks'),
    ('cell_pools = 1:10.1.0.0/33\n', 'cell_pools'),
    ('cell_pools = 1:10.0.0.0/8, 2:10.2.0.0/16\n', 'cell_pools'),
    ('cell_ids = 5:300\n', 'cell_ids'),
    ('gateway_mac = 01:00:00:00:00:01\n', 'gateway_mac'),
    ('gateway_mac = not-a-mac\n', 'gateway_mac'),
    ('lease_time = 10\n', 'lease_time'),
    ('handover_timeout = 0\n', 'handover_timeout'),
    ('flush_interval_ms = 0\n', 'flush_interval_ms'),
])
def test_wrong_value_names_its_option(conf, text, option):
    with pytest.raises(config.ConfigError) as raised:
        config.load_settings(conf(text))

    assert str(raised.value).startswith(option)


def test_non_integer_lease_time_is_one_sentence(conf):
    with pytest.raises(config.ConfigError) as raised:
        config.load_settings(conf('lease_time = soon\n'))

    assert 'lease_time' in str(raised.value)


def test_port_in_use_is_reported():
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(config.ConfigError) as raised:
            config.check_port_free('127.0.0.1', port, 'wsapi_port')

    assert 'already in use' in str(raised.value)
    assert '--wsapi-port' in str(raised.value)

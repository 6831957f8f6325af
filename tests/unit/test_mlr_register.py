"""Unit tests of the register: bindings, allocation, leases, lookups."""

import ipaddress

import pytest

from tmip_ryu.mlr import (
    EXPIRED, AttachResult, Binding, PoolExhausted, Register, normalize_mac)

MAC_A = '02:00:00:00:00:0a'
MAC_B = '02:00:00:00:00:0b'
MAC_C = '02:00:00:00:00:0c'


class FakeClock:
    """A manually advanced wall clock."""

    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def register(clock):
    return Register(clock=clock, lease_time=600,
                    pools={1: '10.1.0.0/16', 2: '192.168.8.0/29'})


# -- attach -----------------------------------------------------------


def test_first_attach_creates_binding_in_home_cell(register, clock):
    result = register.attach(MAC_A, 1, 0x1, 3)

    assert isinstance(result, AttachResult)
    assert result.created is True
    assert result.error is None
    binding = result.binding
    assert binding.mac == MAC_A
    assert binding.home_cell == 1
    assert binding.cell == 1
    assert binding.dpid == 0x1
    assert binding.port == 3
    assert binding.state == 'attached'
    assert binding.roaming is False
    assert binding.seq == 0
    assert binding.lease_start == clock.now
    assert binding.lease_time == 600
    assert binding.lease_expires == clock.now + 600
    assert binding.client_id is None


def test_new_binding_gets_aligned_block_from_home_pool(register):
    binding = register.attach(MAC_A, 1, 1, 1).binding

    assert binding.network == ipaddress.IPv4Network('10.1.0.0/30')
    assert binding.gateway == ipaddress.IPv4Address('10.1.0.1')
    assert binding.address == ipaddress.IPv4Address('10.1.0.2')
    assert binding.broadcast == ipaddress.IPv4Address('10.1.0.3')
    assert binding.netmask == ipaddress.IPv4Address('255.255.255.252')


def test_consecutive_hosts_get_distinct_blocks(register):
    first = register.attach(MAC_A, 1, 1, 1).binding
    second = register.attach(MAC_B, 1, 1, 2).binding

    assert first.network != second.network
    assert second.network == ipaddress.IPv4Network('10.1.0.4/30')


def test_attach_normalises_mac(register):
    binding = register.attach('02-00-00-00-00-0A', 1, 1, 1).binding

    assert binding.mac == MAC_A
    assert register.get('02000000000a') is binding


def test_known_mac_attach_returns_binding_unchanged(register, clock):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    before = binding.to_dict()
    clock.advance(30)

    result = register.attach(MAC_A, 2, 9, 4)

    assert result.created is False
    assert result.binding is binding
    assert binding.to_dict() == before


def test_same_mac_returning_gets_its_old_block(register, clock):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    register.attach(MAC_B, 1, 1, 2)
    clock.advance(300)

    again = register.attach(MAC_A, 1, 1, 1).binding

    assert again.address == binding.address


def test_default_pool_is_ten_cell_slash_sixteen(clock):
    register = Register(clock=clock)

    binding = register.attach(MAC_A, 42, 1, 1).binding

    assert binding.network == ipaddress.IPv4Network('10.42.0.0/30')
    assert register.pools()[42] == ipaddress.IPv4Network('10.42.0.0/16')


def test_exhausted_pool_returns_error_result(register):
    register.attach(MAC_A, 2, 1, 1)
    register.attach(MAC_B, 2, 1, 2)

    result = register.attach(MAC_C, 2, 1, 3)

    assert result.binding is None
    assert result.created is False
    assert isinstance(result.error, PoolExhausted)
    assert result.error.cell == 2
    assert result.error.pool == ipaddress.IPv4Network('192.168.8.0/29')
    assert register.get(MAC_C) is None


def test_cell_without_pool_returns_error_result(clock):
    register = Register(clock=clock,
                        default_pool=lambda cell: None,
                        pools={1: '10.1.0.0/24'})

    result = register.attach(MAC_A, 7, 1, 1)

    assert result.binding is None
    assert isinstance(result.error, PoolExhausted)
    assert result.error.pool is None
    assert 'no address pool' in str(result.error)
    assert register.pool_usage(7)['size'] == 0


@pytest.mark.parametrize('mac', [
    'zz:00:00:00:00:01', '02:00:00:00:00', '', None, 42, b'\x02\x00',
    'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01'])
def test_attach_rejects_malformed_or_group_mac(register, mac):
    with pytest.raises(ValueError):
        register.attach(mac, 1, 1, 1)


@pytest.mark.parametrize('cell', [0, 255, -1, '1', 1.0, None])
def test_attach_rejects_cell_outside_range(register, cell):
    with pytest.raises(ValueError, match='invalid cell'):
        register.attach(MAC_A, cell, 1, 1)


@pytest.mark.parametrize('dpid, port', [
    (-1, 1), (1 << 64, 1), (1, -1), (1, 1 << 32), ('1', 1)])
def test_attach_rejects_bad_location(register, dpid, port):
    with pytest.raises(ValueError):
        register.attach(MAC_A, 1, dpid, port)


def test_attach_accepts_largest_dpid(register):
    binding = register.attach(MAC_A, 1, (1 << 64) - 1, 1).binding

    assert binding.dpid == (1 << 64) - 1


# -- pools ------------------------------------------------------------


def test_overlapping_pools_are_rejected(clock):
    with pytest.raises(ValueError, match='overlap'):
        Register(clock=clock, pools={1: '10.2.0.0/16'})


def test_pool_with_host_bits_is_rejected(clock):
    with pytest.raises(ValueError, match='invalid address pool'):
        Register(clock=clock, pools={1: '10.1.0.5/16'})


def test_pool_smaller_than_a_block_is_rejected(clock):
    with pytest.raises(ValueError, match='too small'):
        Register(clock=clock, pools={1: '10.1.0.0/31'})


def test_pool_for_invalid_cell_is_rejected(clock):
    with pytest.raises(ValueError, match='invalid cell'):
        Register(clock=clock, pools={300: '172.16.0.0/16'})


def test_pool_usage_counts_blocks(register):
    register.attach(MAC_A, 2, 1, 1)

    usage = register.pool_usage(2)

    assert usage == {'size': 2, 'used': 1, 'free': 1, 'quarantined': 0}


def test_pool_of_maps_address_to_cell(register):
    assert register.pool_of('10.1.200.9') == 1
    assert register.pool_of('192.168.8.5') == 2
    assert register.pool_of('8.8.8.8') is None


def test_allocation_prefers_never_used_blocks(register):
    first = register.attach(MAC_A, 1, 1, 1).binding
    register.release(MAC_A)

    second = register.attach(MAC_B, 1, 1, 1).binding

    assert second.network != first.network


def test_freed_blocks_are_reused_oldest_first(clock):
    register = Register(clock=clock, pools={1: '10.1.0.0/28'})
    macs = ['02:00:00:00:01:%02x' % i for i in range(4)]
    networks = [register.attach(mac, 1, 1, 1).binding.network
                for mac in macs]
    register.release(macs[2])
    register.release(macs[0])

    reused = [register.attach('02:00:00:00:02:%02x' % i, 1, 1, 1)
              .binding.network for i in range(2)]

    assert reused == [networks[2], networks[0]]


# -- lookups ----------------------------------------------------------


def test_by_address_finds_host_address_only(register):
    binding = register.attach(MAC_A, 1, 1, 1).binding

    assert register.by_address('10.1.0.2') is binding
    assert register.by_address(ipaddress.IPv4Address('10.1.0.2')) is binding
    assert register.by_address(int(binding.address)) is binding
    assert register.by_address('10.1.0.1') is None
    assert register.by_address('10.1.0.6') is None


def test_owner_of_finds_any_address_of_block(register):
    binding = register.attach(MAC_A, 1, 1, 1).binding

    for last in range(4):
        assert register.owner_of('10.1.0.%d' % last) is binding
    assert register.owner_of('10.1.0.4') is None


def test_by_address_rejects_malformed_address(register):
    with pytest.raises(ValueError, match='invalid IPv4 address'):
        register.by_address('10.1.0.300')


def test_get_unknown_mac_returns_none(register):
    assert register.get(MAC_A) is None
    assert MAC_A not in register


def test_len_and_bindings_list_live_bindings(register):
    register.attach(MAC_A, 1, 1, 1)
    register.attach(MAC_B, 1, 1, 2)
    register.release(MAC_A)

    assert len(register) == 1
    assert [binding.mac for binding in register.bindings()] == [MAC_B]


# -- renew ------------------------------------------------------------


def test_renew_starts_lease_from_now(register, clock):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    clock.advance(500)

    renewed = register.renew(MAC_A)

    assert renewed is binding
    assert binding.lease_start == clock.now
    assert binding.lease_expires == clock.now + 600


def test_renew_sets_lease_time_and_client_id(register):
    register.attach(MAC_A, 1, 1, 1)

    binding = register.renew(MAC_A, lease_time=7200, client_id=b'\x01\x02')

    assert binding.lease_time == 7200
    assert binding.client_id == b'\x01\x02'
    assert register.renew(MAC_A).client_id == b'\x01\x02'


def test_renew_keeps_address(register, clock):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    address = binding.address
    clock.advance(100)

    assert register.renew(MAC_A).address == address


def test_renew_unknown_mac_raises_key_error(register):
    with pytest.raises(KeyError, match='no binding'):
        register.renew(MAC_A)


@pytest.mark.parametrize('lease_time', [0, -5, 1.5, '60'])
def test_renew_rejects_invalid_lease_time(register, lease_time):
    register.attach(MAC_A, 1, 1, 1)

    with pytest.raises(ValueError, match='invalid lease time'):
        register.renew(MAC_A, lease_time=lease_time)


def test_renewed_lease_outlives_original_expiry(register, clock):
    register.attach(MAC_A, 1, 1, 1)
    clock.advance(500)
    register.renew(MAC_A)
    clock.advance(200)

    assert register.expire() == []
    assert register.get(MAC_A) is not None


# -- release ----------------------------------------------------------


def test_release_removes_binding_and_frees_block(register):
    register.attach(MAC_A, 2, 1, 1)
    register.attach(MAC_B, 2, 1, 2)

    released = register.release(MAC_A)

    assert released.state == EXPIRED
    assert register.get(MAC_A) is None
    assert register.by_address(released.address) is None
    assert register.pool_usage(2)['free'] == 1
    assert register.attach(MAC_C, 2, 1, 3).binding.network == \
        released.network


def test_release_unknown_mac_returns_none(register):
    assert register.release(MAC_A) is None


# -- decline ----------------------------------------------------------


def test_decline_gives_fresh_block_in_home_cell(register, clock):
    old = register.attach(MAC_A, 1, 1, 1).binding
    register.renew(MAC_A, client_id=b'id')
    clock.advance(10)

    new = register.decline(MAC_A)

    assert new is not None
    assert new.network != old.network
    assert new.home_cell == 1
    assert new.client_id == b'id'
    assert new.lease_start == clock.now
    assert old.state == EXPIRED
    assert register.get(MAC_A) is new
    assert register.by_address(old.address) is None


def test_declined_block_is_quarantined(clock):
    register = Register(clock=clock, pools={1: '10.1.0.0/29'},
                        decline_quarantine=3600)
    old = register.attach(MAC_A, 1, 1, 1).binding

    register.decline(MAC_A)

    assert register.pool_usage(1) == {
        'size': 2, 'used': 1, 'free': 0, 'quarantined': 1}
    result = register.attach(MAC_B, 1, 1, 2)
    assert result.binding is None
    assert isinstance(result.error, PoolExhausted)
    assert register.owner_of(old.address) is None


def test_quarantined_block_returns_after_quarantine(clock):
    register = Register(clock=clock, pools={1: '10.1.0.0/29'},
                        decline_quarantine=3600)
    old = register.attach(MAC_A, 1, 1, 1).binding
    register.decline(MAC_A)
    clock.advance(3600)

    binding = register.attach(MAC_B, 1, 1, 2).binding

    assert binding.network == old.network
    assert register.pool_usage(1)['quarantined'] == 0


def test_decline_with_exhausted_pool_leaves_host_unbound(clock):
    register = Register(clock=clock, pools={1: '10.1.0.0/30'})
    register.attach(MAC_A, 1, 1, 1)

    assert register.decline(MAC_A) is None
    assert register.get(MAC_A) is None
    assert register.pool_usage(1)['quarantined'] == 1


def test_decline_keeps_location_and_sequence(register):
    register.attach(MAC_A, 1, 1, 1)
    register.commit_move(MAC_A, 2, 5, 7)

    new = register.decline(MAC_A)

    assert new.location == (2, 5, 7)
    assert new.seq == 1
    assert new.state == 'roaming'
    assert new.home_cell == 1


def test_decline_unknown_mac_returns_none(register):
    assert register.decline(MAC_A) is None


# -- expire -----------------------------------------------------------


def test_expire_removes_run_out_leases(register, clock):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    clock.advance(100)
    register.attach(MAC_B, 1, 1, 2)
    clock.advance(500)

    expired = register.expire()

    assert expired == [binding]
    assert binding.state == EXPIRED
    assert register.get(MAC_A) is None
    assert register.get(MAC_B) is not None


def test_expire_frees_block(clock):
    register = Register(clock=clock, lease_time=60,
                        pools={1: '10.1.0.0/30'})
    register.attach(MAC_A, 1, 1, 1)
    clock.advance(60)

    register.expire()

    assert register.pool_usage(1)['used'] == 0
    assert register.attach(MAC_B, 1, 1, 1).binding is not None


def test_expire_with_explicit_time(register, clock):
    register.attach(MAC_A, 1, 1, 1)

    assert register.expire(now=clock.now + 599) == []
    assert len(register.expire(now=clock.now + 600)) == 1


def test_expired_host_returning_is_registered_anew(register, clock):
    old = register.attach(MAC_A, 1, 1, 1).binding
    clock.advance(600)
    register.expire()

    result = register.attach(MAC_A, 1, 1, 1)

    assert result.created is True
    assert result.binding is not old


def test_expire_after_many_renewals_keeps_index_small(register, clock):
    register.attach(MAC_A, 1, 1, 1)
    for _ in range(5000):
        clock.advance(1)
        register.renew(MAC_A)
        register.expire()

    assert len(register._expiry) <= 2 * len(register) + 1024
    clock.advance(600)
    assert [binding.mac for binding in register.expire()] == [MAC_A]


# -- moves ------------------------------------------------------------


def test_commit_move_updates_location_and_sequence(register):
    register.attach(MAC_A, 1, 1, 1)

    binding = register.commit_move(MAC_A, 2, 0x2, 5)

    assert binding.location == (2, 0x2, 5)
    assert binding.seq == 1
    assert binding.state == 'roaming'
    assert binding.roaming is True
    assert binding.address == ipaddress.IPv4Address('10.1.0.2')


def test_move_back_home_is_attached_again(register):
    register.attach(MAC_A, 1, 1, 1)
    register.commit_move(MAC_A, 2, 0x2, 5)

    binding = register.commit_move(MAC_A, 1, 0x1, 2)

    assert binding.state == 'attached'
    assert binding.roaming is False
    assert binding.seq == 2


# -- group commit without a store -----------------------------------


def test_changes_are_pending_until_flush(register):
    register.attach(MAC_A, 1, 1, 1)
    register.attach(MAC_B, 1, 1, 2)
    register.renew(MAC_A)

    assert register.pending_writes == 2


def test_flush_without_store_clears_pending(register):
    register.attach(MAC_A, 1, 1, 1)

    register.flush()

    assert register.pending_writes == 0
    assert register.durable_generation == register.generation


# -- binding ----------------------------------------------------------


def test_binding_to_dict_is_json_ready(register):
    import json

    binding = register.attach(MAC_A, 1, 0x10, 4).binding
    register.renew(MAC_A, client_id=b'\x01\xaa')

    values = json.loads(json.dumps(binding.to_dict()))

    assert values['mac'] == MAC_A
    assert values['network'] == '10.1.0.0/30'
    assert values['address'] == '10.1.0.2'
    assert values['gateway'] == '10.1.0.1'
    assert values['broadcast'] == '10.1.0.3'
    assert values['netmask'] == '255.255.255.252'
    assert values['client_id'] == '01aa'
    assert values['dpid'] == 0x10
    assert values['roaming'] is False
    assert values['lease_expires'] == binding.lease_expires


def test_binding_copy_is_independent(register):
    binding = register.attach(MAC_A, 1, 1, 1).binding
    snapshot = binding.copy()

    register.commit_move(MAC_A, 2, 2, 2)

    assert snapshot.cell == 1
    assert snapshot.seq == 0


def test_binding_has_no_instance_dict():
    binding = Binding(MAC_A, 1, 1, 1, 1, 0x0a010000, 0.0, 60)

    assert not hasattr(binding, '__dict__')


@pytest.mark.parametrize('text, expected', [
    ('AA:BB:CC:DD:EE:F0', 'aa:bb:cc:dd:ee:f0'),
    ('aa-bb-cc-dd-ee-f0', 'aa:bb:cc:dd:ee:f0'),
    ('AABBCCDDEEF0', 'aa:bb:cc:dd:ee:f0'),
    (b'\xaa\xbb\xcc\xdd\xee\xf0', 'aa:bb:cc:dd:ee:f0'),
])
def test_normalize_mac_accepts_common_forms(text, expected):
    assert normalize_mac(text) == expected

"""LayeredMap behaves like a dict that is copied on every change."""

import pytest
from hypothesis import given, strategies as st

from openflow_rules.network import LayeredMap

keys = st.integers(0, 40)
operations = st.lists(st.tuples(st.sampled_from(['set', 'remove']), keys,
                                st.integers()), max_size=300)


@given(base=st.dictionaries(keys, st.integers(), max_size=30),
       steps=operations)
def test_every_version_matches_dict_model(base, steps):
    versions = [(LayeredMap(dict(base)), dict(base))]
    for operation, key, value in steps:
        layered, model = versions[-1]
        if operation == 'set':
            layered = layered.with_item(key, value)
            model = dict(model)
            model[key] = value
        elif key in model:
            layered = layered.without(key)
            model = dict(model)
            del model[key]
        else:
            continue
        versions.append((layered, model))

    for layered, model in versions:
        assert dict(layered.items()) == model
        assert len(layered) == len(model)
        assert sorted(layered) == sorted(model)
        for key in range(41):
            assert (key in layered) == (key in model)
            assert layered.get(key, 'none') == model.get(key, 'none')


def test_removed_key_raises_key_error():
    layered = LayeredMap({1: 'a'}).without(1)

    with pytest.raises(KeyError):
        layered[1]
    with pytest.raises(KeyError):
        layered.without(1)


def test_changes_fold_into_new_base_past_square_root():
    layered = LayeredMap({key: key for key in range(10000)})

    for key in range(150):
        layered = layered.with_item(key, -key)

    assert len(layered._changes) < 150
    assert layered[149] == -149
    assert layered[9999] == 9999
    assert len(layered) == 10000


def test_equal_to_dict_with_same_items():
    assert LayeredMap({1: 'a'}).with_item(2, 'b') == {1: 'a', 2: 'b'}

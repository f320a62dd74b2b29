"""Label mappings, class splits and the ImageNet draws."""

from __future__ import annotations

import numpy as np
import pytest

from imprint.study.tasks import (
    expand_mappings,
    imagenet_merge_tables,
    mapping,
    select_task,
    task_classes,
)


def test_mod_mappings_need_two_classes_at_least():
    np.testing.assert_array_equal(mapping("mod5")(np.arange(12)), np.arange(12) % 5)
    for name in ("mod0", "mod1"):
        with pytest.raises(ValueError, match=f"mapping='{name}' is not valid; mod<n> needs n >= 2"):
            mapping(name)


def test_task_classes_after_mapping():
    assert task_classes(10, "none", "short") == [0, 1, 2]
    assert task_classes(10, "mod5", "upper") == []
    assert task_classes(40, "mod10", "odd") == [1, 3, 5, 7, 9]
    assert task_classes(1000, "imagenet_merge_d3_r2", "all") == list(range(10))


def test_all_even_and_odd_take_every_class_of_larger_data_sets():
    y = np.arange(13).repeat(2)
    for split, wanted in (("all", range(13)), ("even", range(0, 13, 2)), ("odd", range(1, 13, 2))):
        assert task_classes(13, "none", split) == list(wanted)
        assert sorted(set(select_task(y[:, None], y, "none", split)[1])) == list(wanted)
    assert task_classes(13, "none", "upper") == [5, 6, 7, 8, 9]  # fixed lists stay fixed
    table = {0: 1, 3: 0, 12: 1}  # your own mapping: unlisted classes are dropped
    assert select_task(y[:, None], y, "mine", "all", table)[1].tolist() == [1, 1, 0, 0, 1, 1]


def test_merge_remaps_are_nested_and_merge_d_classes_of_one_draw():
    tables = imagenet_merge_tables()
    assert len(tables) == 10 and all(len(rep) == 10 for rep in tables)
    pool = set(tables[0][-1])
    assert len(pool) == 100
    for rep in tables:
        assert set(rep[-1]) == pool  # every repetition shuffles the same 100 classes
        for d, table in enumerate(rep, start=1):
            assert np.bincount(list(table.values())).tolist() == [d] * 10
            if d > 1:
                assert rep[d - 2].items() <= table.items()  # map{d-1} inside map{d}


def test_patterns_expand_in_order_and_select_task_drops_unmapped_labels():
    assert expand_mappings(["none", "imagenet_merge_d*_r0"]) == [
        "none", *[f"imagenet_merge_d{d}_r0" for d in range(1, 11)],
    ]  # fmt: skip
    table = imagenet_merge_tables()[0][0]  # d = 1: ten ImageNet classes, one per task class
    y = np.array([*table, 999_999 % 1000])
    x = np.arange(len(y))[:, None].astype(np.float32)
    kept_x, kept_y = select_task(x, y, "imagenet_merge_d1_r0", "all")
    assert sorted(kept_y.tolist()) == list(range(10))
    assert len(kept_x) == 10 + (999 in table)

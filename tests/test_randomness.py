"""Random streams keyed by (seed, stage, class label)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imprint.method.batch import ClassBatch
from imprint.method.generators import GEN, GenContext
from imprint.method.presample import fewshot
from imprint.method.randomness import ClassStreams, class_key
from tests.conftest import make_task


def test_class_keys_name_a_label_whatever_its_type():
    assert class_key(3) == class_key(np.int64(3)) == class_key(3.0) == "3"
    assert class_key(2.5) == "2.5"
    assert class_key("cat") == "cat"


def test_a_class_draws_the_same_values_in_any_company():
    mask = torch.tensor([[True, True, False], [True, True, True]])
    together = ClassStreams.keyed(4, "gen", ["a", "b"]).uniform_masked(mask)
    alone = ClassStreams.keyed(4, "gen", ["b"]).uniform_masked(mask[1:])
    assert torch.equal(together[1], alone[0])
    assert together[0, 2] == np.inf
    assert not torch.equal(together[0, :2], together[1, :2])
    other_stage = ClassStreams.keyed(4, "presample", ["b"]).uniform(3, torch.device("cpu"))
    assert not torch.equal(other_stage[0], alone[0])


@pytest.mark.parametrize("gen", ["random", "kmeans", "fps", "kmedoids_pam"])
def test_random_proxies_and_fewshot_draws_of_a_class_ignore_the_other_classes(gen):
    """Dropping and reordering the other classes leaves a class's sample and proxies as they
    were: its draws come from its own stream."""
    x, y = make_task(n_classes=4, per_class=30, seed=2)
    keys = ["ant", "bee", "cat", "dog"]
    full = fewshot(ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 4, keys), 12, 5)
    keep = y >= 2
    part = ClassBatch.from_labels(
        torch.tensor(x[keep]), torch.tensor(3 - y[keep]), 2, ["dog", "cat"]
    )
    part = fewshot(part, 12, 5)
    assert torch.equal(part.x[1], full.x[2]) and torch.equal(part.x[0], full.x[3])
    proxies = GEN[gen](full, 3, GenContext(seed=9))
    alone = GEN[gen](part, 3, GenContext(seed=9))
    for c_full, c_part in ((2, 1), (3, 0)):
        torch.testing.assert_close(
            alone.weights[alone.labels == c_part], proxies.weights[proxies.labels == c_full]
        )

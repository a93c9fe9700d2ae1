"""Grouping generic system logs: mailscope's deterministic fingerprints against Drain (drain3).

Drain clusters by token position and similarity and learns as it goes, so its
cluster ids depend on history; mailscope's fingerprints are a pure function of
each line. Both are scored with the LogPAI grouping accuracy against the
generator's ground-truth templates, on the systems the masking rules were
tuned on and on a second family kept out of tuning.
"""

import random

import pytest

from mailscope.processors.errors import classify
from tests.generic_logs import SYSTEMS, UNSEEN_SYSTEMS, compare_with_drain, fill

LINES = 1000


@pytest.mark.parametrize("systems,seed", [(SYSTEMS, 3), (UNSEEN_SYSTEMS, 11)], ids=["tuned", "unseen"])
def test_grouping_is_at_least_as_good_as_drain(systems, seed):
    mean_ours, mean_drain, ours, drain = compare_with_drain(systems, seed, LINES)
    assert mean_ours >= mean_drain, (ours, drain)
    assert mean_ours >= 0.9, ours


def test_fingerprints_do_not_depend_on_what_came_before():
    rng = random.Random(5)
    lines = [fill(t, rng) for templates in SYSTEMS.values() for t in templates]
    forward = [classify(line).fingerprint for line in lines]
    backward = [classify(line).fingerprint for line in reversed(lines)][::-1]
    assert forward == backward

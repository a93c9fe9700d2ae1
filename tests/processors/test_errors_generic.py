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
from tests.errors_corpus import grouping_accuracy
from tests.generic_logs import SYSTEMS, UNSEEN_SYSTEMS, drain_clusters, fill

LINES = 1000


def compare(systems, seed):
    rng = random.Random(seed)
    ours, drain = {}, {}
    for name, templates in systems.items():
        weights = [rng.uniform(0.2, 3.0) for _ in templates]
        truth, lines = [], []
        for _ in range(LINES):
            index = rng.choices(range(len(templates)), weights)[0]
            truth.append(index)
            lines.append(fill(templates[index], rng))
        ours[name] = grouping_accuracy(truth, [classify(line).fingerprint for line in lines])
        drain[name] = grouping_accuracy(truth, drain_clusters(lines))
    return ours, drain


@pytest.mark.parametrize("systems,seed", [(SYSTEMS, 3), (UNSEEN_SYSTEMS, 11)], ids=["tuned", "unseen"])
def test_grouping_is_at_least_as_good_as_drain(systems, seed):
    ours, drain = compare(systems, seed)
    mean_ours = sum(ours.values()) / len(ours)
    mean_drain = sum(drain.values()) / len(drain)
    assert mean_ours >= mean_drain, (ours, drain)
    assert mean_ours >= 0.9, ours


def test_fingerprints_do_not_depend_on_what_came_before():
    rng = random.Random(5)
    lines = [fill(t, rng) for templates in SYSTEMS.values() for t in templates]
    forward = [classify(line).fingerprint for line in lines]
    backward = [classify(line).fingerprint for line in reversed(lines)][::-1]
    assert forward == backward

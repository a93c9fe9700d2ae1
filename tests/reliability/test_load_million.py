"""1,000,000 spans, 100,000 distinct error messages, 10,000 distinct span names: memory stays bounded.

The spans go through mailscope's whole enrichment pipeline with no exporter
(tests/reliability/million_spans.py, its own process, started in the background
when this test is collected). Resident memory measured after the first 200,000
spans and at the end must grow by less than RSS_GROWTH_BOUND (README: "Bounded
memory"; measured growth is well under 1 MB), and every per-process table is
filled to its cap and no further: span names with baselines and memory histograms
(MAILSCOPE_MAX_TRACKED_NAMES), error fingerprints tracked and used as labels
(MAILSCOPE_ERROR_PATTERNS_MAX), the classification caches, and the metric points
the SDK holds for the capped labels (cap + the `other` overflow).
"""

from __future__ import annotations

import json

RSS_GROWTH_BOUND = 16 * 1024 * 1024


def test_a_million_spans_stay_within_bounded_memory(million_run, capsys):
    code, stdout, stderr = million_run
    assert code == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["spans"] == 1_000_000
    growth = report["rss_end"] - report["rss_warm"]
    with capsys.disabled():
        print(f"\n[reliability] 1M spans: RSS {report['rss_warm'] / 2**20:.1f} MiB after 200k, "
              f"{report['rss_end'] / 2**20:.1f} MiB at the end (growth {growth / 2**20:+.2f} MiB)")
    assert growth < RSS_GROWTH_BOUND, report

    tables = report["tables"]
    names_cap = report["config"]["max_tracked_names"]
    patterns_cap = report["config"]["error_patterns_max"]
    # far more distinct values went through than any cap: each table is exactly full
    assert tables["slow.names"] == [names_cap, names_cap]
    assert tables["errors.occurrences"] == [patterns_cap, patterns_cap]
    assert tables["errors.labels"] == [patterns_cap, patterns_cap]
    for name in ("errors.classify_cache", "errors.message_cache"):
        size, cap = tables[name]
        assert size == cap, (name, tables[name])
    for name in ("memory.labels", "patterns.token_cache", "safety.log_once", "slow.labels"):
        size, cap = tables[name]
        assert size <= cap, (name, tables[name])
    assert tables["memory.open"][0] == 0  # every started span was ended and forgotten
    # the SDK's own per-label-set state is bounded by the caps too (+1 for `other`)
    assert report["metric_points"]["mailscope.errors"] <= patterns_cap + 1
    assert report["metric_points"]["mailscope.memory.delta"] <= names_cap + 1

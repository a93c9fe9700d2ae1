"""The report's TEMPLATES section and the rules that keep RECOMMENDATIONS readable.

Per-engine numbers and missing-variable pairs are checked against the oracle in
test_report.py (tests/support/report_oracle.py); here: that every output shows
the section, that the recommendation fires, and the high-variance rule's limits.
"""

from __future__ import annotations

import pytest

from mailscope.report.rules import MAX_INFO_PER_RULE, recommendations, rule_high_variance
from tests.report.test_report import report_json, run_cli
from tests.support import report_oracle as oracle
from tests.support.otlp_gen import write_trace_file


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("templates") / "traces.jsonl"
    write_trace_file(path, 3000, seed=5)
    return path


def test_templates_section_in_json_terminal_and_html(generated, tmp_path):
    report = report_json(generated)
    expected = oracle.compute(oracle.load(generated))["templates"]
    t = report["templates"]
    assert {e["engine"] for e in t["by_engine"]} == {"jinja2", "liquid"}
    assert expected["missing"] and len(t["missing_variables"]) == len(expected["missing"])
    # one recommendation per template that rendered with missing variables, naming the variables
    found = {r["subject"]: r for r in report["recommendations"] if r["rule"] == "missing_variables"}
    assert set(found) == {template for template, _ in expected["missing"]}
    for (template, variable) in expected["missing"]:
        assert variable in found[template]["title"]

    text = run_cli(generated).stdout
    section = text.split("TEMPLATES", 1)[1].split("RECOMMENDATIONS", 1)[0]
    assert "liquid" in section and "jinja2" in section and "coupon" in section and "promo.liquid" in section
    page = tmp_path / "r.html"
    assert run_cli(generated, "--html", page).returncode == 0
    html = page.read_text()
    assert 'id="templates"' in html and "<code>coupon</code>" in html


def _op(key, kind="operation", count=50, mean=2.0, max_=500.0):
    return {"key": key, "kind": kind, "count": count, "threshold_ms": None,
            "latency_ms": {"mean": mean, "max": max_, "p50": mean, "p95": mean}}


def test_blocking_pops_and_receives_stay_out_of_the_high_variance_rule():
    report = {"operations": [
        _op("queue.receive"), _op("BRPOP", "span"), _op("BLMOVE", "span"), _op("bzpopmin", "span"),
        _op("LPUSH", "span"), _op("send"),
    ]}
    assert [f["subject"] for f in rule_high_variance(report)] == ["LPUSH", "send"]


def _empty_report(operations):
    return {
        "operations": operations,
        "errors": {"patterns": [], "by_category": []},
        "templates": {"loads_with_cache_info": 0, "hit_ratio": None, "missing_variables": []},
        "memory_growth": [],
        "smtp": {"sends": 0, "connects": 0},
    }


def test_one_rule_gives_at_most_three_info_findings_then_a_count_of_the_rest():
    names = [f"op{i}" for i in range(7)]
    recs = recommendations(_empty_report([_op(n) for n in names]))
    variance = [r for r in recs if r["rule"] == "high_variance"]
    assert [r["subject"] for r in variance[:MAX_INFO_PER_RULE]] == names[:MAX_INFO_PER_RULE]
    assert len(variance) == MAX_INFO_PER_RULE + 1
    more = variance[-1]
    assert more["more"] == 4 and more["title"] == "+4 more high_variance findings"
    assert all(n in more["detail"] for n in names[MAX_INFO_PER_RULE:])
    # three are shown as they are
    assert len([r for r in recommendations(_empty_report([_op(n) for n in names[:3]])) if r["rule"] == "high_variance"]) == 3

"""The report's DELIVERY section from email.delivery spans: rates and findings with the alert rules'
thresholds, latency percentiles, bounce patterns, and caps that keep it bounded."""

import pytest

from mailscope import attributes as attr
from mailscope.report.delivery import MAX_ROWS
from mailscope.report.model import ReportModel
from mailscope.report.html import render as html_render
from mailscope.report.text import render


def delivery_span(n, status, domain="clients.example.org", latency=None, category=None, pattern=None, parent=True):
    attrs = {attr.OPERATION: attr.OP_DELIVERY, attr.PROVIDER: "sendgrid", attr.DELIVERY_STATUS: status,
             attr.RECIPIENTS_DOMAINS: [domain]}
    if latency is not None:
        attrs[attr.DELIVERY_LATENCY] = latency
    if category:
        attrs.update({attr.ERROR_CATEGORY: category, attr.ERROR_PATTERN: pattern, attr.ERROR_RETRYABLE: False})
    start = 1_765_000_000_000_000_000 + n * 1_000_000
    return {"name": attr.SPAN_DELIVERY, "trace_id": f"{n:032x}", "span_id": f"{n:016x}",
            "parent_span_id": f"{n + 1:016x}" if parent else "", "start_ns": start, "end_ns": start,
            "attributes": attrs, "resource": {attr.SERVICE_NAME: "webhooks"},
            "status_code": "ERROR" if status in attr.DELIVERY_FAILURES else "UNSET"}


def model_of(spans):
    model = ReportModel()
    for span in spans:
        model.add(span)
    return model.result()


def test_rates_latency_patterns_and_findings():
    spans = [delivery_span(i, "delivered", latency=float(i + 1)) for i in range(90)]
    spans += [delivery_span(100 + i, "bounced", domain="gone.example.io", category="recipient",
                            pattern="550 5.1.1 user unknown") for i in range(6)]
    spans += [delivery_span(200, "complained", parent=False)]
    report = model_of(spans)
    d = report["delivery"]
    assert (d["events"], d["in_send_trace"]) == (97, 96)
    assert d["bounce_rate"] == pytest.approx(6 / 96) and d["complaint_rate"] == pytest.approx(1 / 90)
    assert d["latency"]["count"] == 90 and d["latency"]["p50_s"] == pytest.approx(45, rel=0.05)
    assert d["latency"]["p99_s"] == pytest.approx(90, rel=0.05)
    assert report["journey"]["accepted_to_delivered"] == d["accepted_to_delivered"]
    assert d["bounce_patterns"][0]["count"] == 6 and d["bounce_patterns"][0]["category"] == "recipient"
    found = {f["rule"]: f["severity"] for f in report["recommendations"]}
    assert found["complaint_rate"] == "critical" and found["bounce_rate"] == "warning"
    assert report["recommendations"][0]["severity"] == "critical"
    text = render(report)
    assert "DELIVERY  97 provider events, 96 in their send's trace" in text
    assert "accepted -> delivered: p50 " in text and "recipient: " in text
    page = html_render(report)
    assert '<section id="delivery">' in page and "550 5.1.1 user unknown" in page


def test_reports_without_delivery_events_have_no_delivery_section():
    report = model_of([])
    assert report["delivery"]["events"] == 0
    assert "DELIVERY" not in render(report) and 'id="delivery"' not in html_render(report)


def test_low_rates_and_small_samples_raise_nothing():
    quiet = model_of([delivery_span(i, "delivered") for i in range(1000)] + [delivery_span(2000, "complained")])
    assert quiet["delivery"]["complaint_rate"] == pytest.approx(0.001)
    assert not {"complaint_rate", "bounce_rate"} & {f["rule"] for f in quiet["recommendations"]}
    few = model_of([delivery_span(1, "delivered"), delivery_span(2, "complained")])  # 100 %, but 2 events
    assert not {"complaint_rate"} & {f["rule"] for f in few["recommendations"]}


def test_outcome_rows_are_capped():
    report = model_of([delivery_span(i, "delivered", domain=f"d{i}.example.org") for i in range(MAX_ROWS + 50)])
    rows = report["delivery"]["outcomes"]
    assert len(rows) == MAX_ROWS + 1
    assert {"provider": "other", "domain": "other", "events": 50, "delivered": 50} in rows

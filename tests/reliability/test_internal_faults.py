"""A fault inside mailscope never reaches the app: results byte-for-byte unchanged, error logged once.

Each case runs the scaled-down pipeline (template -> Redis queue -> SMTP) under
`opentelemetry-instrument` with one of mailscope's own functions replaced by one
that raises on every call: the attribute extraction of each instrumentor, and
each stage of the enrichment pipeline. Every email also makes one application
span that fails (a handled lookup error), so the stages that read only failures
run on every email too. The app's results (every outcome and the
SHA-256 of every message it sent) equal the uninstrumented run's, the injected
fault fired on every email, and each place that caught it logged exactly once.
A failing privacy-critical stage (redaction) drops the spans it had to look at rather
than export them unredacted; any other failing stage costs only its own attributes.
"""

from __future__ import annotations

import re

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.reliability.apps import result_of, run_app, write_faulty_app, write_pipeline_app
from tests.support.address_forms import leaks
from tests.support.launcher import base_env

EMAILS = 25
INTERNAL = re.compile(r"mailscope: internal error in (.+?); it is swallowed")

INSTRUMENTOR_FAULTS = [
    "mailscope.instrumentation.templates.common:utf8_len",  # personalize: content size
    "mailscope.instrumentation.templates.common:KnownTemplates.served",  # template.load: cache hit
    "mailscope.instrumentation.common.send:envelope_attributes",  # send: recipients/domains
    "mailscope.instrumentation.common.send:headers_from_message",  # send: message id, headers
    "mailscope.instrumentation.common.send:reply_attributes",  # send/connect: SMTP reply
    "mailscope.instrumentation.queue.telemetry:_attributes",  # queue publish/receive/process
    "mailscope.instrumentation.queue.envelope:inject",  # queue: trace context into the payload
    "mailscope.instrumentation.queue.envelope:strip",  # queue: envelope out of the payload
]
STAGE_FAULTS = [
    "mailscope.processors.redact:EarlyRedactionStage.__call__",
    "mailscope.processors.error_type:ErrorTypeStage.__call__",
    "mailscope.processors.slow:SlowStage.__call__",
    "mailscope.processors.memory:MemoryStage.__call__",
    "mailscope.processors.errors:ErrorsStage.__call__",
    "mailscope.processors.operation_metrics:OperationMetricsStage.__call__",
    "mailscope.processors.redact:RedactionStage.__call__",
]
PRIVACY_CRITICAL = {"EarlyRedactionStage", "RedactionStage"}


def _env(tmp_path):
    return base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        MAILSCOPE_TRACES_FILE=tmp_path / "traces.jsonl",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        MAILSCOPE_QUEUE_ENVELOPE="json",
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, redis_url, smtp_port):
    script = write_pipeline_app(tmp_path_factory.mktemp("plain"))
    plain = run_app(script, base_env(), redis_url, smtp_port, EMAILS, "--failing-lookups", instrument=False)
    assert plain.returncode == 0, plain.stderr
    return result_of(plain)


@pytest.mark.parametrize("fault", INSTRUMENTOR_FAULTS + STAGE_FAULTS)
def test_a_fault_inside_mailscope_leaves_the_app_untouched(tmp_path, redis_url, smtp_port, reference, fault):
    script = write_faulty_app(tmp_path)
    result = run_app(
        script, {**_env(tmp_path), "RELIABILITY_FAULT": fault}, redis_url, smtp_port, EMAILS, "--failing-lookups"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result_of(result)["outcomes"] == reference["outcomes"]  # outcomes and sent bytes identical
    hits = int(re.search(r"fault-hits (\d+)", result.stdout).group(1))
    assert hits >= EMAILS, f"the injected fault fired {hits} times; the target is not on the hot path"
    # logged, and logged once per place that caught it, however often it fired
    places = INTERNAL.findall(result.stderr)
    assert places, result.stderr[-3000:]
    assert len(places) == len(set(places)), places
    assert result.stderr.count("RuntimeError: injected fault in") == len(places)  # one traceback per place

    spans = read_spans(str(tmp_path / "traces.jsonl"))
    sends = [s for s in spans if s["name"] == attr.SPAN_SEND]
    stage = fault.rpartition(":")[2].split(".")[0]
    if stage in PRIVACY_CRITICAL:
        # a span the failing stage had to look at is dropped, never exported unredacted: the failed
        # lookups (an exception event each) all went through it; spans the fast path found clean
        # never needed it
        assert not [s for s in spans if s["name"] == "profile.lookup"]
        exported = (tmp_path / "traces.jsonl").read_bytes()
        addresses = [f"reader{i}@mail{i % 7}.example.com" for i in range(EMAILS)]
        assert leaks(addresses, {"traces": exported}) == []
    else:
        assert len(sends) == EMAILS  # the fault cost its own attributes, not the spans

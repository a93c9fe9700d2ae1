"""End to end under the real `opentelemetry-instrument`: failing sends to SMTP servers whose
replies quote the addresses, and not one test address anywhere in the exported bytes."""

import json
import re
from contextlib import ExitStack

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import file_export_env, run_instrumented, write_script
from tests.support.smtp_server import Behaviour, SMTPTestServer

RECIPIENTS = ["zz.recipient.7731@example.org", "yy.full.5521+news@example.net"]
SENDER = "sender.q9@example.com"
LOCAL_PARTS = ["zz.recipient.7731", "yy.full.5521", "sender.q9", "msgid.k3"]

APP = f"""
import smtplib
import sys
from email.message import EmailMessage

from opentelemetry import trace

RECIPIENTS = {RECIPIENTS!r}
SENDER = {SENDER!r}


def message():
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(RECIPIENTS)
    msg["Subject"] = "Your weekly digest"
    msg["Message-ID"] = "<msgid.k3@example.com>"
    msg.set_content("hello")
    return msg


failures = 0
for port in sys.argv[1:]:
    try:
        with smtplib.SMTP("127.0.0.1", int(port), timeout=10) as smtp:
            smtp.send_message(message())
    except smtplib.SMTPException:
        failures += 1

# the app's own span, with addresses in every place a span can carry text
tracer = trace.get_tracer("newsletter.app")
linked = tracer.start_span("lookup")
linked.end()
link = trace.Link(linked.get_span_context(), {{"subscriber": RECIPIENTS[0]}})
with tracer.start_as_current_span("notify " + RECIPIENTS[0], links=[link]) as span:
    span.set_attribute("app.recipients", RECIPIENTS)
    span.add_event("retry " + RECIPIENTS[1], {{"who": RECIPIENTS[1], "url": "https://x.example/u?e=" + RECIPIENTS[0].replace("@", "%40")}})
    try:
        raise ValueError("could not deliver to " + repr({{RECIPIENTS[0]: (550, b"5.1.1 <" + RECIPIENTS[0].encode() + b"> unknown")}}))
    except ValueError as exc:
        span.record_exception(exc)
        span.set_status(trace.Status(trace.StatusCode.ERROR, "gave up on " + RECIPIENTS[1]))
print("failures", failures)
"""


def servers(stack):
    refuse = {
        RECIPIENTS[0]: f"550 5.1.1 <{RECIPIENTS[0]}>: Recipient address rejected: User unknown in virtual mailbox table",
        RECIPIENTS[1]: f"452 4.2.2 <{RECIPIENTS[1]}>: Mailbox full, over quota",
    }
    behaviours = [
        Behaviour(refuse=refuse),
        Behaviour(data_reply=f"554 5.7.1 Message from <{SENDER}> to <{RECIPIENTS[0]}> rejected as spam"),
        Behaviour(sender_reply=f"553 5.7.1 <{SENDER}>: Sender address rejected: not owned by user {RECIPIENTS[1]}"),
    ]
    return [stack.enter_context(SMTPTestServer(b)) for b in behaviours]


def run(tmp_path, mode):
    traces, metrics = tmp_path / f"traces-{mode}.jsonl", tmp_path / f"metrics-{mode}.jsonl"
    env = file_export_env(
        traces, metrics, OTEL_LOGS_EXPORTER="none", MAILSCOPE_REDACT=mode,
    )
    script = write_script(tmp_path, APP, name=f"app_{mode}.py")
    with ExitStack() as stack:
        ports = [s.port for s in servers(stack)]
        proc = run_instrumented(script, env, *ports)
    assert proc.returncode == 0, proc.stderr
    assert "failures 3" in proc.stdout, proc.stdout + proc.stderr
    return traces, metrics, proc


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_no_test_address_leaves_the_process(tmp_path, mode):
    traces, metrics, proc = run(tmp_path, mode)
    exported = traces.read_bytes() + metrics.read_bytes()
    assert traces.stat().st_size > 0 and metrics.stat().st_size > 0
    for local in LOCAL_PARTS:
        assert local.encode() not in exported, local
    for output in (proc.stdout, proc.stderr):
        for local in LOCAL_PARTS:
            assert local not in output

    spans = read_spans(str(traces))
    app = next(s for s in spans if s["name"].startswith("notify "))
    if mode == "domain":
        assert app["name"] == "notify <redacted>@example.org"
        assert app["attributes"]["app.recipients"] == ["<redacted>@example.org", "<redacted>@example.net"]
        assert b"<redacted>@example.org" in exported
    else:
        assert app["name"] == "notify <redacted>@<redacted>"
        assert b"@example.org" not in exported and b"%40example.org" not in exported
    # the app span was tagged by the errors stage as well
    assert app["attributes"][attr.ERROR_FINGERPRINT]


def test_failed_sends_are_tagged_with_category_pattern_and_fingerprint(tmp_path):
    traces, metrics, _ = run(tmp_path, "domain")
    sends = [s for s in read_spans(str(traces)) if s["name"] == attr.SPAN_SEND]
    assert len(sends) == 3
    categories = sorted(s["attributes"][attr.ERROR_CATEGORY] for s in sends)
    assert categories == ["content", "recipient", "validation"], [s["attributes"] for s in sends]
    for send in sends:
        a = send["attributes"]
        assert re.fullmatch(r"[0-9a-f]{16}", a[attr.ERROR_FINGERPRINT])
        assert a[attr.ERROR_OCCURRENCES] == 1
        assert "@" not in a[attr.ERROR_PATTERN] or "<email>" in a[attr.ERROR_PATTERN]
        assert isinstance(a[attr.ERROR_RETRYABLE], bool)
    points = [p for p in read_metric_points(str(metrics)) if p["name"] == attr.METRIC_ERRORS]
    labelled = {(p["attributes"][attr.ERROR_CATEGORY], p["attributes"][attr.ERROR_FINGERPRINT]) for p in points}
    for send in sends:
        a = send["attributes"]
        assert (a[attr.ERROR_CATEGORY], a[attr.ERROR_FINGERPRINT]) in labelled
    durations = [p for p in read_metric_points(str(metrics))
                 if p["name"] == attr.METRIC_OPERATION_DURATION and p["attributes"].get(attr.LABEL_OUTCOME) == "error"]
    assert {p["attributes"].get(attr.ERROR_CATEGORY) for p in durations} >= {"content", "recipient", "validation"}

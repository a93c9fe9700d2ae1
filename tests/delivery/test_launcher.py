"""Delivery feedback end to end, as users run it: two services under `opentelemetry-instrument`.

The app (it never imports mailscope) sends one message through each of SendGrid, Mailgun,
Postmark and SES (the local provider servers, moto for SES) with
`MAILSCOPE_DELIVERY_TRACKING=on`. The provider servers keep the bytes they received; from
them, as a provider would, the test builds the documented delivered / bounced / complained
events echoing the metadata, signs them as each provider signs, and posts them to the
receiver service: `mailscope webhooks serve` (wsgiref) or uvicorn serving
`mailscope.delivery:asgi_app`. Checked in the two services' OTLP JSON files: every event span
is a child of its send span in the app's trace, with the latency from the send time that
travelled, bounces classified, the delivery metrics, and no address in any exported byte.
With tracking off, what the app sent is byte for byte what it sends uninstrumented.
"""

import json
import signal
import subprocess
import sys
import time

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from mailscope.processors.errors import classify
from tests.support import delivery_apps as apps
from tests.support import delivery_events as de
from tests.support.delivery_receiver import HOST, receiver_process
from tests.support.launcher import file_export_env, free_port, run_instrumented, write_script
from tests.support.provider_servers import MailgunServer, MotoServer, PostmarkServer, SendGridServer, SESProxy

PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses")
BOUNCE = de.BOUNCE
LATENCY_S = 30  # the events below happen this long after the send time they carry


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def servers(moto):
    moto.reset()
    started = {
        "sendgrid": apps.recording(SendGridServer)(verified_senders=[apps.SENDER]).start(),
        "mailgun": apps.recording(MailgunServer)().start(),
        "postmark": apps.recording(PostmarkServer)(sender_signatures=[apps.SENDER]).start(),
        "ses": apps.recording(SESProxy)(moto.url).start(),
    }
    yield started
    for server in started.values():
        server.stop()


def send_all(tmp_path, servers, name, instrument=True, **env):
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"urls": {p: s.url for p, s in servers.items()}, "sender": apps.SENDER,
                                  "recipient": apps.RECIPIENT}))
    traces, metrics = tmp_path / f"{name}-traces.jsonl", tmp_path / f"{name}-metrics.jsonl"
    endpoints = (f"mailgun=127.0.0.1:{servers['mailgun'].port}/v3/*/messages,"
                 f"postmark=127.0.0.1:{servers['postmark'].port}/email*")
    full_env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none", MAILSCOPE_PROVIDER_ENDPOINTS=endpoints,
                               **env)
    result = run_instrumented(write_script(tmp_path, apps.SEND_APP, f"{name}.py"), full_env, config,
                              instrument=instrument)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("IDS "))
    return json.loads(line[4:]), traces, result


def mailscope_cli(*args) -> str:
    result = subprocess.run([sys.executable, "-m", "mailscope", *map(str, args)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def signed_requests(keys, provider, message_id, value):
    """(body, headers) of a delivered, a bounced and a complained event for one send."""
    _, _, sent_ms = value.rpartition("_")
    at = int(sent_ms) / 1000 + LATENCY_S
    out = []
    for kind in ("delivered", "bounced", "complained"):
        options = {"version": 1} if provider == "ses" and kind == "delivered" else {}  # SNS SHA1withRSA too
        out.append(keys.request(provider, kind, message_id, value, at=at, **options))
    return out


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_events_land_in_the_send_traces(tmp_path, servers, kind):
    ids, app_traces, app_run = send_all(tmp_path, servers, "app", MAILSCOPE_DELIVERY_TRACKING="on")
    values = {p: apps.tracking_value(p, apps.send_bodies(servers[p])[-1]) for p in PROVIDERS}
    assert all(values.values()), values

    keys = de.WebhookKeys()
    port = free_port()
    traces, metrics = tmp_path / "hooks-traces.jsonl", tmp_path / "hooks-metrics.jsonl"
    env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME="webhooks", **keys.env())
    receiver = receiver_process(kind, env, port)
    try:
        for provider in PROVIDERS:
            for body, headers in signed_requests(keys, provider, ids[provider], values[provider]):
                status, answer = de.post(f"http://{HOST}:{port}/{provider}", body, headers)
                assert status == 200, (provider, status, answer)
            # the same request again is a replay, refused; the app and its sends are unaffected
            assert de.post(f"http://{HOST}:{port}/{provider}", body, headers) == (401, b"replayed")
        time.sleep(1.5)  # one metric export interval (OTEL_METRIC_EXPORT_INTERVAL=500 ms) before stopping
    finally:
        receiver.send_signal(signal.SIGINT)
        out, err = receiver.communicate(timeout=60)
        keys.certs.stop()

    sends = {s["attributes"][attr.PROVIDER]: s for s in read_spans(str(app_traces)) if s["name"] == attr.SPAN_SEND}
    deliveries = [s for s in read_spans(str(traces)) if s["name"] == attr.SPAN_DELIVERY]
    assert len(deliveries) == 3 * len(PROVIDERS)
    for span in deliveries:
        a = span["attributes"]
        send = sends[a[attr.PROVIDER]]
        assert (span["trace_id"], span["parent_span_id"]) == (send["trace_id"], send["span_id"]), a
        assert a[attr.OPERATION] == attr.OP_DELIVERY and span["kind"] == "INTERNAL"
        assert a[attr.DELIVERY_LATENCY] == pytest.approx(LATENCY_S, abs=1)
        assert a[attr.RECIPIENTS_DOMAINS] == ["clients.example.org"]
        assert a[attr.MESSAGE_ID_HASH] == send["attributes"][attr.MESSAGE_ID_HASH], a[attr.PROVIDER]
        if a[attr.DELIVERY_STATUS] == attr.DELIVERY_BOUNCED:
            expected = classify(BOUNCE, "smtplib.SMTPRecipientsRefused")
            assert span["status_code"] == "ERROR"
            assert (a[attr.ERROR_CATEGORY], a[attr.ERROR_RETRYABLE], a[attr.ERROR_FINGERPRINT]) == \
                (expected.category, expected.retryable, expected.fingerprint)
            assert (a[attr.SMTP_RESPONSE_CODE], a[attr.SMTP_ENHANCED_STATUS]) == (550, "5.1.1")
        else:
            assert span["status_code"] != "ERROR"
    statuses = sorted((s["attributes"][attr.PROVIDER], s["attributes"][attr.DELIVERY_STATUS]) for s in deliveries)
    assert statuses == sorted((p, s) for p in PROVIDERS for s in ("delivered", "bounced", "complained"))

    latest = {}
    for point in read_metric_points(str(metrics)):
        latest[(point["name"], tuple(sorted(point["attributes"].items())))] = point
    events = {labels: p["value"] for (name, labels), p in latest.items() if name == attr.METRIC_DELIVERY_EVENTS}
    assert sum(events.values()) == 3 * len(PROVIDERS)
    bounced = {attr.PROVIDER: "ses", attr.DELIVERY_STATUS: "bounced", attr.ERROR_CATEGORY: "recipient"}
    assert events[tuple(sorted(bounced.items()))] == 1
    rejected = {labels: p["value"] for (name, labels), p in latest.items() if name == attr.METRIC_DELIVERY_REJECTED}
    assert rejected == {tuple(sorted({attr.PROVIDER: p, attr.LABEL_REASON: "replayed"}.items())): 1 for p in PROVIDERS}
    latency = [p for (name, _), p in latest.items() if name == attr.METRIC_DELIVERY_LATENCY]
    assert sum(p["count"] for p in latency) == 2 * len(PROVIDERS)  # delivered and bounced; not complaints

    # --- the report: a DELIVERY section, and the journey's accepted -> delivered figure ---------------
    report = json.loads(mailscope_cli("report", app_traces, traces, "--json"))
    delivery = report["delivery"]
    assert (delivery["events"], delivery["in_send_trace"]) == (12, 12)
    assert delivery["statuses"] == {"bounced": 4, "complained": 4, "delivered": 4}
    assert delivery["bounce_rate"] == pytest.approx(0.5) and delivery["complaint_rate"] == pytest.approx(1.0)
    assert [(r["provider"], r["domain"], r["events"]) for r in delivery["outcomes"]] == \
        [(p, "clients.example.org", 3) for p in sorted(PROVIDERS)]
    assert delivery["latency"]["count"] == 12
    assert delivery["latency"]["p50_s"] == pytest.approx(LATENCY_S, rel=0.05)
    assert report["journey"]["accepted_to_delivered"]["count"] == 4
    (pattern,) = delivery["bounce_patterns"]
    assert (pattern["count"], pattern["category"], pattern["retryable"]) == (4, "recipient", False)
    assert pattern["pattern"] == classify(BOUNCE).pattern and pattern["suggested_action"]
    text = mailscope_cli("report", app_traces, traces)
    assert "DELIVERY  12 provider events, 12 in their send's trace" in text
    assert "accepted -> delivered: p50 " in text and "bounce rate 50.00%, complaint rate 100.00%" in text

    everything = {"receiver traces": traces.read_bytes(), "receiver metrics": metrics.read_bytes(),
                  "receiver output": (out + err).encode(), "app traces": app_traces.read_bytes(),
                  "app output": (app_run.stdout + app_run.stderr).encode()}
    for where, data in everything.items():
        assert apps.RECIPIENT.encode() not in data and b"kim.lee@" not in data, where
        assert apps.SENDER.encode() not in data, where


def test_tracking_off_sends_the_bytes_an_uninstrumented_app_sends(tmp_path, servers, moto):
    send_all(tmp_path, servers, "plain", instrument=False)
    plain = {p: apps.send_bodies(s) for p, s in servers.items()}
    for server in servers.values():
        server.bodies.clear()
    moto.reset()
    send_all(tmp_path, servers, "off")
    off = {p: apps.send_bodies(s) for p, s in servers.items()}
    assert all(len(bodies) == 1 for bodies in plain.values()), plain
    assert off == plain

    for server in servers.values():
        server.bodies.clear()
    moto.reset()
    send_all(tmp_path, servers, "on", MAILSCOPE_DELIVERY_TRACKING="on")
    on = {p: apps.send_bodies(s) for p, s in servers.items()}
    for provider in ("sendgrid", "postmark"):
        sent, before = json.loads(on[provider][0]), json.loads(plain[provider][0])
        field = "custom_args" if provider == "sendgrid" else "Metadata"
        assert set(sent[field]) - set(before.get(field) or {}) == {"mailscope"}  # the app's own keys kept
        del sent[field]["mailscope"]
        if not sent[field]:
            del sent[field]
        assert sent == before  # nothing else changed
    assert on["mailgun"][0].startswith(plain["mailgun"][0]) and on["mailgun"][0] != plain["mailgun"][0]
    assert b"Tags.member.2.Name=mailscope" in on["ses"][0] and b"Tags.member.1.Name=campaign" in on["ses"][0]

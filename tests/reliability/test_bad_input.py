"""Bad input never changes what the app gets.

- Every MAILSCOPE_* variable, set to each kind of garbage (empty, negative,
  non-numeric, malformed globs, unknown modes, broken lists): exactly one warning
  naming it, and its default. (The launcher-level check that the app still runs
  and exports with every variable garbage is tests/test_foundation_launcher.py;
  here every form of garbage of every variable, in process.)
- Hypothesis-generated inputs to the SMTP and Redis-queue instrumentors - odd
  address types, large recipient lists, non-UTF-8 payloads, payloads that look
  like mailscope's queue envelope but are not - give the app exactly what it gets
  uninstrumented; plus a 10 MB message and a 10 MB queued payload.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st

from mailscope import attributes as attr
from mailscope.config import VARIABLES, Settings, load_settings
from tests.support.queue_harness import QueueHarness
from tests.support.smtp_server import Behaviour, SMTPTestServer
from tests.support.smtp_telemetry import smtp_telemetry  # noqa: F401

NUMBERS = ["", " ", "-1", "-0.5", "abc", "nan", "inf", "1e999", "0x10", "3;4"]
GLOBS = ["", ",", "a,,b", "[abc", "email.[*", "  ,x"]
MODES = ["", "RSS2", "-1", "on;off", "domain,full", "\x00"]
GARBAGE_FORMS = {
    "MAILSCOPE_SLOW_THRESHOLDS": ["", "email.*", "email.*=-5", "[=5", "*=abc", "a=1,,b=2", "*=0", "*=nan"],
    "MAILSCOPE_SLOW_BASELINE_FACTOR": ["", " ", "-1", "-0.5", "abc", "nan", "inf", "1e999", "3;4"],
    "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": NUMBERS + ["0", "2.5"],
    "MAILSCOPE_MEMORY": MODES,
    "MAILSCOPE_MEMORY_SPANS": GLOBS,
    "MAILSCOPE_REDACT": MODES,
    "MAILSCOPE_ERROR_PATTERNS_MAX": NUMBERS + ["0"],
    "MAILSCOPE_MAX_TRACKED_NAMES": NUMBERS + ["0"],
    "MAILSCOPE_TEMPLATES": GLOBS,
    "MAILSCOPE_QUEUES": GLOBS,
    "MAILSCOPE_QUEUE_REDIS_URL": ["", "localhost:6379", "http://127.0.0.1:6379", "-1"],
    "MAILSCOPE_QUEUE_ENVELOPE": MODES + ["JSONX"],
    "MAILSCOPE_OPERATIONS": ["send", "send=mod", "bogus=a:b", "send=a:b c", ",", "send=:f"],
    "MAILSCOPE_HEADER_ATTRIBUTES": ["X-A", "X A=b", "X-A=", "X-A=.bad", "X:A=b", ","],
    "MAILSCOPE_TRACES_FILE": ["", "   ", "a\x00b"],
    "MAILSCOPE_METRICS_FILE": ["", "   ", "a\x00b"],
    "MAILSCOPE_LOGS_FILE": ["", "   ", "a\x00b"],
    "MAILSCOPE_PROVIDER_ENDPOINTS": ["", "mailgun", "ses=host/path", "mailgun=hostonly", "mailgun=h /p", ","],
    "MAILSCOPE_DELIVERY_TRACKING": MODES + ["yes", "ON;"],
    "MAILSCOPE_WEBHOOK_SENDGRID_PUBLIC_KEY": ["x", "-----BEGIN PUBLIC KEY-----", "bm90IGEga2V5"],
    "MAILSCOPE_WEBHOOK_SES_TOPIC_ARNS": ["arn:[", "a,[b"],
    "MAILSCOPE_WEBHOOK_SES_CERT_ORIGINS": ["sns.amazonaws.com", "ftp://sns.x", "https://", "https://h/p", "https://a b"],
    "MAILSCOPE_DELIVERY_RELAYS": ["relay", "relay=postal", "=mailgun", "relay:x=mailgun", "re lay=ses", "a/b=ses"],
}
# Secrets are taken as given, never warned about (a warning would print them): see
# tests/test_foundation_launcher.py for what a garbage secret does.
SECRETS = {"MAILSCOPE_WEBHOOK_MAILGUN_SIGNING_KEY", "MAILSCOPE_WEBHOOK_POSTMARK_CREDENTIALS"}
CASES = [(var, value) for var, values in GARBAGE_FORMS.items() for value in values]


def test_every_variable_has_garbage_forms():
    assert set(GARBAGE_FORMS) | SECRETS == {v.env for v in VARIABLES}


@pytest.mark.parametrize("variable,value", CASES, ids=[f"{v}={x!r}" for v, x in CASES])
def test_garbage_gives_one_warning_and_the_default(caplog, variable, value):
    var = next(v for v in VARIABLES if v.env == variable)
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        first = load_settings({variable: value})
        again = load_settings({variable: value})  # reloading does not warn again
    warnings = [r for r in caplog.records if r.name == "mailscope" and variable in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "using the default" in warnings[0].getMessage()
    assert getattr(first, var.field) == getattr(Settings(), var.field) == getattr(again, var.field)
    assert first.invalid == (variable,)


# --- SMTP: hypothesis-generated sends ----------------------------------------------------
REFUSED = "gone@refused.example.net"

addresses = st.one_of(
    st.emails().map(str),
    st.emails().map(lambda a: a.encode()),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.just(REFUSED),
    st.builds(lambda u, d: Address("N", u, d), st.from_regex(r"[a-z]{1,8}", fullmatch=True),
              st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True)),
    st.integers(),
    st.none(),
)
recipient_lists = st.one_of(
    addresses,
    st.lists(addresses, max_size=8),
    st.lists(addresses, max_size=3).map(tuple),
    st.integers(min_value=50, max_value=400).map(lambda n: [f"r{i}@big{i % 13}.example.org" for i in range(n)]),
)
messages = st.one_of(
    st.binary(max_size=300),  # mostly not UTF-8
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b"Subject: x\r\nMessage-ID: <" + b[:20] + b">\r\n\r\n" + b),
    st.text(max_size=100).map(lambda t: f"To: {t}\r\nMessage-ID: {t}\r\nX-Campaign-ID: {t}\r\n\r\n{t}"),
    st.integers(),
    st.none(),
)


@pytest.fixture(scope="module")
def smtp_server():
    with SMTPTestServer(Behaviour(refuse={REFUSED: "550 5.1.1 <gone@refused.example.net> no such user"})) as server:
        yield server


def _send_outcome(server, sender, recipients, message):
    before = len(server.handler.messages)
    try:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            result = ("returned", repr(client.sendmail(sender, recipients, message)))
    except Exception as exc:  # what the app would see
        result = ("raised", type(exc), str(exc))
    received = [(m.mail_from, m.rcpt_tos, hashlib.sha256(m.content).hexdigest()) for m in server.handler.messages[before:]]
    return result, received


def _both_ways(telemetry, call):
    telemetry.instrumentor.uninstrument()
    try:
        plain = call()
    finally:
        telemetry.instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    return plain, call()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(sender=addresses, recipients=recipient_lists, message=messages)
def test_hypothesis_sends_behave_exactly_as_uninstrumented(smtp_telemetry, smtp_server, sender, recipients, message):  # noqa: F811
    plain, instrumented = _both_ways(smtp_telemetry, lambda: _send_outcome(smtp_server, sender, recipients, message))
    assert instrumented == plain


def _ten_mb_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", "big@reader.example.com", "10 MB"
    msg["Message-ID"] = "<ten-mb@shop.example>"
    msg.set_content("see attachment")
    msg.add_attachment(bytes(range(256)) * (10 * 1024 * 1024 // 256 // 4 * 3), maintype="application", subtype="octet-stream")
    return msg


def test_a_10_mb_message(smtp_telemetry, smtp_server):  # noqa: F811
    msg = _ten_mb_message()
    assert len(msg.as_bytes()) >= 10 * 1024 * 1024

    def call():
        before = len(smtp_server.handler.messages)
        with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=30) as client:
            result = client.send_message(msg)
        got = smtp_server.handler.messages[before:]
        return result, [hashlib.sha256(m.content).hexdigest() for m in got]

    smtp_telemetry.exporter.clear()
    plain, instrumented = _both_ways(smtp_telemetry, call)
    assert instrumented == plain
    send = smtp_telemetry.one(attr.SPAN_SEND)
    assert send.attributes[attr.MESSAGE_BYTES] >= 10 * 1024 * 1024


# --- Redis queue: hypothesis-generated payloads -------------------------------------------
# Members that resemble mailscope's envelope but are not what it writes (it writes
# {"traceparent": "00-...", "tracestate": "...", "enqueued_at": <float time>} or just the
# time, compactly, as the last member of a JSON object). A JSON object whose last member
# is exactly that form is indistinguishable from an enveloped one: `_mailscope` is a
# reserved key (README), so those are generated only inside payloads that are not objects.
not_a_time = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(),
                       st.floats(allow_nan=False, max_value=1e9))
lookalike_members = st.one_of(
    st.dictionaries(st.sampled_from(["traceparent", "tracestate", "enqueued_at", "x"]), not_a_time, max_size=3),
    st.fixed_dictionaries({"traceparent": st.text(max_size=60), "tracestate": st.just(""),
                           "enqueued_at": st.floats(min_value=1.1e9, max_value=2e9)}),
    st.just({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "enqueued_at": 5}),
    st.just({"enqueued_at": 1700000000.5, "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}),
)
exact_member = st.one_of(
    st.floats(min_value=1.1e9, max_value=2e9).map(lambda t: {"enqueued_at": t}),
    st.just({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "tracestate": "", "enqueued_at": 1700000000.5}),
)


def _envelope_like(head: str, member: dict, sep: str) -> str:
    import json

    return head + sep + '"_mailscope":' + json.dumps(member, separators=(",", ":")) + "}"


payloads = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.integers(),
    st.floats(allow_nan=False),
    st.builds(_envelope_like, st.sampled_from(['{"a":1', '{"to":"x@y.example"', '{"":0', "hello", "{", "[1", "{,"]),
              lookalike_members, st.sampled_from([",", ", ", ""])),
    st.builds(_envelope_like, st.sampled_from(["hello", "[1", "{,", '{"a":', "", '"s"']), exact_member,
              st.sampled_from([",", ""])),
    st.builds(lambda s: s.encode("utf-8", "surrogatepass") + b"\xff\xfe", st.text(max_size=50)),
)


@pytest.fixture(scope="module")
def queue_setup(tmp_path_factory):
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    harness = QueueHarness(queue_envelope="json", queues=("email_*",))
    try:
        yield harness, redis.Redis.from_url(server.url)
    finally:
        harness.close()
        server.close()


def _queue_outcome(client, values, how):
    client.delete("email_q")
    try:
        client.lpush("email_q", *values)
        if how == "brpop":
            got = [client.brpop(["email_q"], timeout=1) for _ in values]
        elif how == "rpop-count":
            got = client.rpop("email_q", len(values))
        else:
            got = client.lrange("email_q", 0, -1)
        return ("ok", got)
    except Exception as exc:
        return ("raised", type(exc), str(exc))


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(payloads, min_size=1, max_size=5), how=st.sampled_from(["brpop", "rpop-count", "lrange"]))
def test_hypothesis_queue_payloads_come_back_exactly(queue_setup, values, how):
    harness, client = queue_setup
    from mailscope.instrumentation.queue import QueueInstrumentor

    QueueInstrumentor().uninstrument()
    try:
        plain = _queue_outcome(client, values, how)
    finally:
        harness.instrument()
    instrumented = _queue_outcome(client, values, how)
    if how == "lrange":  # a peek is not a receive: it shows the envelope (documented)
        assert instrumented[0] == plain[0]
        return
    assert instrumented == plain


def test_a_10_mb_queued_payload(queue_setup):
    harness, client = queue_setup
    payload = b'{"to":"big@reader.example.com","body":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    client.delete("email_q")  # what the hypothesis test's last peek left behind
    harness.clear()
    client.lpush("email_q", payload)
    assert client.brpop(["email_q"], timeout=5)[1] == payload
    assert [s.name for s in harness.spans(prefix="send ")] == ["send email_q"]

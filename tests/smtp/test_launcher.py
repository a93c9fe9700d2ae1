"""Sends under the real `opentelemetry-instrument` launcher, against real aiosmtpd servers.

The app below never imports mailscope. It sends with smtplib and aiosmtplib and
meets every kind of outcome: accepted, partly refused, wholly refused, DATA
rejected, sender refused, dropped connection, failed AUTH. The exported OTLP
JSON (traces and metrics) and the process output must contain none of the
addresses the test used, searched as raw bytes, while the spans and metrics
still describe every send.
"""

import json
from collections import defaultdict

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import file_export_env, run_instrumented, write_script
from tests.support.smtp_server import Behaviour, SMTPTestServer

SENDER = "billing@store.example.com"
OK_1 = "kim.lee@clients.example.org"
OK_2 = "lou@clients.example.org"
BCC = "audit.copy@archive.example.net"
GONE = "mallory@nowhere.example.net"
FULL = "nina+promo@quota.example.io"
OWNER = "campaign-owner@store.example.com"
ADDRESSES = (SENDER, OK_1, OK_2, BCC, GONE, FULL, OWNER)

APP = r'''
import asyncio, json, smtplib, sys
from email.message import EmailMessage

import aiosmtplib

cfg = json.load(open(sys.argv[1]))
A, S = cfg["addresses"], cfg["servers"]
outcomes = {}


def message(label, to, cc=(), bcc=()):
    msg = EmailMessage()
    msg["From"] = A["SENDER"]
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if bcc:
        msg["Bcc"] = ", ".join(bcc)
    msg["Message-ID"] = f"<{label}.1@store.example.com>"
    msg["X-Campaign-ID"] = label
    msg["Reply-To"] = A["OWNER"]
    msg["Subject"] = "Your invoice"
    msg.set_content("Invoice attached.")
    return msg


def raw(label):
    return f"From: {A['SENDER']}\r\nX-Campaign-ID: {label}\r\nSubject: invoice\r\n\r\nbody\r\n"


def attempt(label, fn):
    try:
        fn()
        outcomes[label] = "ok"
    except Exception as exc:
        outcomes[label] = type(exc).__name__


def with_client(server, fn, login=None):
    def run():
        with smtplib.SMTP("127.0.0.1", S[server], timeout=10) as client:
            if login:
                client.login(*login)
            fn(client)
    return run


attempt("sync-ok", with_client("main", lambda c: c.send_message(message("sync-ok", [A["OK_1"]], [A["OK_2"]], [A["BCC"]]))))
attempt("sync-partial", with_client("main", lambda c: c.sendmail(A["SENDER"], [A["OK_1"], A["GONE"], A["FULL"]], raw("sync-partial"))))
attempt("sync-refused", with_client("main", lambda c: c.sendmail(A["SENDER"], [A["GONE"], A["FULL"]], raw("sync-refused"))))
attempt("sync-data", with_client("data", lambda c: c.send_message(message("sync-data", [A["OK_1"]]))))
attempt("sync-sender", with_client("sender", lambda c: c.sendmail(A["SENDER"], [A["OK_1"]], raw("sync-sender"))))
attempt("sync-drop", with_client("drop", lambda c: c.sendmail(A["SENDER"], [A["OK_2"]], raw("sync-drop"))))
attempt("sync-auth", with_client("auth", lambda c: None, login=(A["SENDER"], "wrong-password")))


async def one_shot(label, server, to):
    await aiosmtplib.send(message(label, to), hostname="127.0.0.1", port=S[server], start_tls=False, timeout=10)

for label, server, to in [("async-ok", "main", [A["OK_1"], A["OK_2"]]), ("async-partial", "main", [A["OK_2"], A["GONE"]]),
                          ("async-refused", "main", [A["FULL"]]), ("async-data", "data", [A["OK_1"]])]:
    attempt(label, lambda: asyncio.run(one_shot(label, server, to)))

print("OUTCOMES " + json.dumps(outcomes, sort_keys=True))
'''

EXPECTED_OUTCOMES = {
    "sync-ok": "ok", "sync-partial": "ok", "sync-refused": "SMTPRecipientsRefused", "sync-data": "SMTPDataError",
    "sync-sender": "SMTPSenderRefused", "sync-drop": "SMTPServerDisconnected", "sync-auth": "SMTPAuthenticationError",
    "async-ok": "ok", "async-partial": "ok", "async-refused": "SMTPRecipientsRefused", "async-data": "SMTPDataError",
}


@pytest.fixture
def servers():
    refusals = {GONE: f"550 5.1.1 <{GONE}>: user unknown", FULL: f"452 4.2.2 <{FULL}>: mailbox full"}
    started = {
        "main": SMTPTestServer(Behaviour(refuse=refusals)),
        "data": SMTPTestServer(Behaviour(data_reply=f"554 5.7.1 message from <{SENDER}> rejected as spam")),
        "sender": SMTPTestServer(Behaviour(sender_reply=f"550 5.7.1 <{SENDER}>: sender blocked")),
        "drop": SMTPTestServer(Behaviour(drop_at="DATA")),
        "auth": SMTPTestServer(users={"someone-else": "right-password"}),
    }
    for server in started.values():
        server.start()
    yield started
    for server in started.values():
        server.stop()


def run_app(tmp_path, servers, **env_extra):
    config = tmp_path / "config.json"
    names = {name: value for name, value in globals().items() if name in
             ("SENDER", "OK_1", "OK_2", "BCC", "GONE", "FULL", "OWNER")}
    config.write_text(json.dumps({"addresses": names, "servers": {k: s.port for k, s in servers.items()}}))
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(
        traces, metrics,
        OTEL_LOGS_EXPORTER="none",
        MAILSCOPE_HEADER_ATTRIBUTES="X-Campaign-ID=email.campaign.id,Reply-To=email.reply_to",
        **env_extra,
    )
    result = run_instrumented(write_script(tmp_path, APP), env, config)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("OUTCOMES "))
    return json.loads(line.removeprefix("OUTCOMES ")), result, traces, metrics


def test_every_outcome_is_traced_and_no_address_is_exported(tmp_path, servers):
    outcomes, result, traces, metrics = run_app(tmp_path, servers)
    assert outcomes == EXPECTED_OUTCOMES  # the app saw exactly what it would see uninstrumented

    # --- no address anywhere in what mailscope exported or printed -----------------
    exported = {"traces": traces.read_bytes(), "metrics": metrics.read_bytes(),
                "stdout": result.stdout.encode(), "stderr": result.stderr.encode()}
    assert exported["traces"] and exported["metrics"]
    for where, data in exported.items():
        for address in ADDRESSES:
            assert address.encode() not in data, (where, address)
            assert address.split("@")[0].encode() + b"@" not in data, (where, address)

    # --- the spans still describe every send -------------------------------------
    spans = read_spans(str(traces))
    sends = {s["attributes"]["email.campaign.id"]: s for s in spans if s["name"] == attr.SPAN_SEND}
    assert set(sends) == set(EXPECTED_OUTCOMES) - {"sync-auth"}  # a failed AUTH never got to send
    for label, span in sends.items():
        a = span["attributes"]
        assert span["kind"] == "CLIENT" and a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == "smtp"
        assert (span["status_code"] == "ERROR") == (EXPECTED_OUTCOMES[label] != "ok"), label
        if EXPECTED_OUTCOMES[label] != "ok":
            assert a[attr.ERROR_TYPE].endswith(EXPECTED_OUTCOMES[label]), (label, a)
    assert sends["sync-ok"]["attributes"][attr.RECIPIENTS_COUNT] == 3
    assert sends["sync-ok"]["attributes"]["email.reply_to"] == "<redacted>@store.example.com"
    partial = sends["sync-partial"]
    assert partial["attributes"][attr.RECIPIENTS_REFUSED] == 2
    assert sorted(e["attributes"][attr.RECIPIENT_DOMAIN] for e in partial["events"]
                  if e["name"] == attr.EVENT_RECIPIENT_REFUSED) == ["nowhere.example.net", "quota.example.io"]
    for label in ("sync-refused", "async-refused", "sync-data", "sync-sender"):
        (event,) = [e for e in sends[label]["events"] if e["name"] == attr.EXCEPTION_EVENT]
        # the server's text named addresses: they reach the exporter with the local part masked
        assert "<redacted>@" in event["attributes"][attr.EXCEPTION_MESSAGE], (label, event)
    assert sends["sync-data"]["attributes"][attr.SMTP_ENHANCED_STATUS] == "5.7.1"

    connects = [s for s in spans if s["name"] == attr.SPAN_SMTP_CONNECT]
    assert len(connects) == 11  # one per connection: 7 smtplib clients, 4 one-shot sends
    (auth,) = [s for s in connects if s["status_code"] == "ERROR"]
    assert auth["attributes"][attr.ERROR_TYPE] == "smtplib.SMTPAuthenticationError"
    by_id = {s["span_id"]: s for s in spans}
    for s in connects:
        parent = by_id.get(s["parent_span_id"])
        if parent is not None:  # aiosmtplib.send: connecting is part of the send
            assert parent["name"] == attr.SPAN_SEND and parent["attributes"]["email.campaign.id"].startswith("async")

    # --- metrics --------------------------------------------------------------------
    latest = {}
    for point in read_metric_points(str(metrics)):
        key = (point["name"], tuple(sorted(point["attributes"].items())))
        latest[key] = point
    recipients = {dict(k[1])[attr.LABEL_OUTCOME]: p["value"] for k, p in latest.items()
                  if k[0] == attr.METRIC_RECIPIENTS}
    # accepted: 3 + 1 + 2 + 1; refused: 2 + 2 + 1 + 1
    assert recipients == {attr.OUTCOME_ACCEPTED: 7, attr.OUTCOME_REFUSED: 6}
    durations = defaultdict(int)
    for (name, labels), point in latest.items():
        if name == attr.METRIC_OPERATION_DURATION:
            labels = dict(labels)
            if labels.get(attr.PROVIDER) == "smtp":
                durations[(labels[attr.OPERATION], labels[attr.LABEL_OUTCOME])] += point["count"]
    assert durations[(attr.OP_SEND, attr.OUTCOME_OK)] == 4
    assert durations[(attr.OP_SEND, attr.OUTCOME_ERROR)] == 6
    assert durations[(attr.OP_SMTP_CONNECT, attr.OUTCOME_OK)] == 10
    assert durations[(attr.OP_SMTP_CONNECT, attr.OUTCOME_ERROR)] == 1


def test_disabling_the_instrumentor_the_standard_way(tmp_path, servers):
    outcomes, _, traces, _ = run_app(tmp_path, servers, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="mailscope_smtp")
    assert outcomes == EXPECTED_OUTCOMES
    names = {s["name"] for s in read_spans(str(traces))} if traces.exists() else set()
    assert not names & {attr.SPAN_SEND, attr.SPAN_SMTP_CONNECT}

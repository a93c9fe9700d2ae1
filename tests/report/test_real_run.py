"""`mailscope report` on a trace file from a real instrumented run.

A small newsletter sender runs under `opentelemetry-instrument` with the
embedded file exporter: Jinja2 renders that look subscriber profiles up in
SQLite through SQLAlchemy (real upstream sqlalchemy spans), and smtplib sends
to a real aiosmtpd server on loopback that refuses unknown recipients and
answers slowly for some. The report of that file is checked against the
independent computation (tests/support/report_oracle.py) and against what the
script itself did.

The script never imports mailscope. Where mailscope's template or SMTP
instrumentation is active (its wrapt wrappers are on jinja2/smtplib), the spans
are theirs; where it is not, the script opens spans with the contract names
itself, so the report is exercised either way.
"""

import asyncio
import json
import subprocess
import sys

import pytest
from aiosmtpd.controller import Controller

from mailscope import attributes as attr
from tests.support import report_oracle as oracle
from tests.support.launcher import REPO, base_env, free_port, run_instrumented, write_script

MESSAGES = 24
PER_CONNECTION = 4
SLOW_DATA_SECONDS = 0.08

APP = r'''
import json, smtplib, sys
from contextlib import nullcontext
from email.message import EmailMessage

import jinja2
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import create_engine, text

host, port, n, per_connection = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
N = json.loads(sys.argv[5])  # contract names, from mailscope.attributes in the test
tracer = trace.get_tracer("newsletter.app")


def _mailscope_layer(func) -> bool:
    """Some wrapt layer around `func` is mailscope's (its wrapper function or the object it is bound to)."""
    for _ in range(10):
        wrapper = getattr(func, "_self_wrapper", None)
        owner = getattr(wrapper, "__self__", None)
        modules = (getattr(wrapper, "__module__", None) or "", type(owner).__module__ if owner is not None else "")
        if any(m.startswith("mailscope") for m in modules):
            return True
        func = getattr(func, "__wrapped__", None)
        if func is None:
            return False
    return False


def wrapped(*funcs):
    return any(_mailscope_layer(f) for f in funcs)


real_smtp = wrapped(smtplib.SMTP.sendmail, smtplib.SMTP.send_message, smtplib.SMTP.connect, smtplib.SMTP.__init__)
real_templates = wrapped(jinja2.Template.render, jinja2.Environment.get_template, jinja2.Environment._load_template)


def op(manual, name, operation, kind=SpanKind.INTERNAL, **attributes):
    if not manual:
        return nullcontext()
    attributes = {N[k]: v for k, v in attributes.items()}
    attributes[N["OPERATION"]] = operation
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes)


db = create_engine("sqlite:///:memory:")
with db.begin() as conn:
    conn.execute(text("create table subscribers (id integer primary key, name text, address text, sent integer)"))
    for i in range(n):
        local = "unknown" if i % 8 == 3 else "slow" if i % 8 == 6 else "reader"
        domain = "example.net" if i % 2 else "example.org"
        conn.execute(text("insert into subscribers values (:i, :name, :a, 0)"),
                     {"i": i, "name": f"Reader {i}", "a": f"{local}{i}@{domain}"})


def profile(sub_id):
    with db.connect() as conn:
        return conn.execute(text("select name, address from subscribers where id = :i"), {"i": sub_id}).one()


templates = {"welcome.html": "Hello {{ profile(sub_id).name }}, issue {{ issue }}.", "footer.html": "-- unsubscribe"}
cached = jinja2.Environment(loader=jinja2.DictLoader(templates))
uncached = jinja2.Environment(loader=jinja2.DictLoader(templates), cache_size=0)
loaded = set()


def load(env, name):
    hit = env is cached and name in loaded
    with op(not real_templates, N["SPAN_TEMPLATE_LOAD"], N["OP_TEMPLATE_LOAD"], TEMPLATE_NAME=name,
            TEMPLATE_ENGINE="jinja2", TEMPLATE_CACHE_HIT=hit):
        template = env.get_template(name)
    if env is cached:
        loaded.add(name)
    return template


done = {"sent": 0, "failed": 0, "recipients": 0, "refused": 0, "connects": 0, "slow_sends": 0,
        "real_smtp": real_smtp, "real_templates": real_templates}
client = None
for i in range(n):
    with tracer.start_as_current_span("process newsletter", kind=SpanKind.CONSUMER):
        welcome = load(cached, "welcome.html")
        footer = load(uncached, "footer.html")
        with op(not real_templates, N["SPAN_PERSONALIZE"], N["OP_PERSONALIZE"], TEMPLATE_NAME="welcome.html",
                TEMPLATE_ENGINE="jinja2"):
            body = welcome.render(profile=profile, sub_id=i, issue=42) + "\n" + footer.render()
        row = profile(i)
        to = [row.address] + ([f"unknown-extra{i}@example.org"] if i % 8 == 5 else [])
        if client is None:
            with op(not real_smtp, N["SPAN_SMTP_CONNECT"], N["OP_SMTP_CONNECT"], SpanKind.CLIENT, PROVIDER="smtp"):
                client = smtplib.SMTP(host, port)
                client.ehlo()
            done["connects"] += 1
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "news@example.com", ", ".join(to), "Issue 42"
        msg.set_content(body)
        try:
            with op(not real_smtp, N["SPAN_SEND"], N["OP_SEND"], SpanKind.CLIENT, PROVIDER="smtp",
                    RECIPIENTS_COUNT=len(to)) as span:
                try:
                    refused = client.sendmail("news@example.com", to, msg.as_string())
                except smtplib.SMTPRecipientsRefused as exc:
                    if span is not None:
                        span.set_attribute(N["RECIPIENTS_REFUSED"], len(exc.recipients))
                    raise
                if span is not None:
                    span.set_attribute(N["RECIPIENTS_REFUSED"], len(refused))
            done["sent"] += 1
            done["refused"] += len(refused)
            done["slow_sends"] += row.address.startswith("slow")
        except smtplib.SMTPRecipientsRefused as exc:
            done["failed"] += 1
            done["refused"] += len(exc.recipients)
            client.rset()
        done["recipients"] += len(to)
        with db.begin() as conn:
            conn.execute(text("update subscribers set sent = 1 where id = :i"), {"i": i})
        if (i + 1) % per_connection == 0:
            client.quit()
            client = None
print("DONE " + json.dumps(done))
'''


class Sink:
    """aiosmtpd handler: unknown* recipients are refused, slow* ones get a slow DATA reply."""

    def __init__(self):
        self.accepted = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("unknown"):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(a.startswith("slow") for a in envelope.rcpt_tos):
            await asyncio.sleep(SLOW_DATA_SECONDS)
        self.accepted += 1
        return "250 Message accepted"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("realrun")
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        traces = tmp / "traces.jsonl"
        env = base_env(
            OTEL_SERVICE_NAME="newsletter-sender",
            OTEL_TRACES_EXPORTER="otlp_json_file",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            MAILSCOPE_TRACES_FILE=traces,
            # sends above 40 ms are slow: the server's slow DATA replies make some
            MAILSCOPE_SLOW_THRESHOLDS=f"{attr.SPAN_SEND}=40",
        )
        names = {k: getattr(attr, k) for k in dir(attr) if k.isupper() and isinstance(getattr(attr, k), str)}
        result = run_instrumented(write_script(tmp, APP), env, "127.0.0.1", controller.port, MESSAGES,
                                  PER_CONNECTION, json.dumps(names))
    finally:
        controller.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads(result.stdout.rsplit("DONE ", 1)[1])
    return traces, done, sink


def report_json(path, *args):
    result = subprocess.run([sys.executable, "-m", "mailscope", "report", str(path), "--json", *args],
                            capture_output=True, text=True, cwd=REPO, env=base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_report_of_a_real_run_matches_independent_computation(run):
    traces, done, _ = run
    spans = oracle.load(traces)
    report = report_json(traces)
    oracle.check(report, oracle.compute(spans))
    assert report["inputs"]["skipped"]["total"] == 0
    names = {s["name"] for s in spans}
    assert any(n.startswith(("SELECT", "UPDATE", "select", "update")) for n in names), names  # upstream sqlalchemy


def test_report_of_a_real_run_agrees_with_what_the_app_did(run):
    traces, done, sink = run
    report = report_json(traces)
    s = report["summary"]
    assert s["services"] == ["newsletter-sender"]
    assert s["emails"]["sent"] == done["sent"] == sink.accepted
    assert s["emails"]["failed"] == done["failed"] > 0
    assert s["emails"]["recipients"] == done["recipients"]
    assert s["emails"]["refused"] == done["refused"]
    assert report["smtp"] == {"connects": done["connects"], "sends": done["sent"] + done["failed"]}

    # every message is a journey: one trace per "process newsletter" root with a send in it
    j = report["journey"]
    assert j["journeys"] == MESSAGES and j["emails"] == MESSAGES
    stages = {st["stage"]: st for st in j["stages"]}
    assert stages["db"]["total_ms"] > 0  # profile lookups ran inside the renders
    assert stages["send"]["total_ms"] > 0 and stages["template_load"]["total_ms"] > 0
    assert abs(sum(st["share"] for st in j["stages"]) - 1) < 1e-9
    # the lookup before the send and the UPDATE after it are DB time, but not inside personalization
    db_ms = sum(s["end"] - s["start"] for s in oracle.load(traces) if attr.DB_SYSTEM in s["attrs"]) / 1e6
    assert db_ms > stages["db"]["total_ms"]

    # the failed sends are one error pattern each time (the refusal), found in their traces
    errors = report["errors"]
    assert errors["total"] == done["failed"]
    top = errors["patterns"][0]
    assert top["count"] == done["failed"] and top["example_trace_id"]

    # the slow SMTP replies made slow send spans (the slow stage runs in the app)
    slow = {(x["span_name"], x["reason"]): x["count"] for x in report["slow"]["by_name_reason"]}
    assert slow.get((attr.SPAN_SEND, attr.SLOW_REASON_THRESHOLD), 0) >= done["slow_sends"] > 0
    slowest_ids = {x["trace_id"] for x in report["slow"]["slowest"]}
    assert len(slowest_ids) >= 1

    # memory deltas from the memory stage on mailscope operations
    send = next(o for o in report["operations"] if o["key"] == attr.OP_SEND)
    assert send["memory_delta_bytes"] is not None and send["memory_delta_bytes"]["count"] == MESSAGES

    # the uncached footer environment compiles on every load: fewer than half are hits
    t = report["templates"]
    assert t["loads_with_cache_info"] == 2 * MESSAGES
    assert t["cache_hits"] == MESSAGES - 1
    assert "low_template_cache_hit" in {r["rule"] for r in report["recommendations"]}


def test_html_and_terminal_views_of_a_real_run(run, tmp_path):
    traces, done, _ = run
    page = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-m", "mailscope", "report", str(traces), "--html", str(page)],
                            capture_output=True, text=True, cwd=REPO, env=base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "EMAIL JOURNEY  24 traces with a send" in result.stdout
    assert page.exists() and "report-data" in page.read_text()

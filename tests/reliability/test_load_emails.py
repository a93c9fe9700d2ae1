"""20,000 emails through producer, Redis queue, worker and SMTP sink, instrumented: no span lost.

The producer (render with Jinja2, LPUSH) and the worker (BRPOP, smtplib send over
one connection) are separate processes under `opentelemetry-instrument` with the
SDK's default batch settings (no OTEL_BSP_* set), exporting to OTLP JSON files;
the SMTP sink is a minimal threaded SMTP server (tests/support/fast_smtp_sink.py; aiosmtpd's
per-message cost would dominate the run). Every email is delivered, and every one
of them has exactly one personalize, publish, receive, process and send span in
the files: nothing was dropped by a full span queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import SpanReader
from tests.support.launcher import INSTRUMENT, base_env, write_script
from tests.support.redis_server import RedisServer
from tests.support.fast_smtp_sink import FastSink

EMAILS = int(os.environ.get("RELIABILITY_LOAD_EMAILS", "20000"))

PRODUCER = r'''
import json, sys
import redis
from jinja2 import DictLoader, Environment

r = redis.Redis.from_url(sys.argv[1])
env = Environment(loader=DictLoader({"digest.html": "Hello {{ name }}, this week: {{ items|join(', ') }}"}))
for i in range(int(sys.argv[2])):
    body = env.get_template("digest.html").render(name=f"Reader {i}", items=["tea", str(i)])
    r.lpush("email_queue", json.dumps({"to": f"reader{i}@mail{i % 50}.example.com", "body": body, "n": i}))
print("produced", flush=True)
'''

WORKER = r'''
import json, smtplib, sys
from email.message import EmailMessage
import redis

r = redis.Redis.from_url(sys.argv[1])
smtp = smtplib.SMTP("127.0.0.1", int(sys.argv[2]), timeout=30)
sent = 0
for _ in range(int(sys.argv[3])):
    job = json.loads(r.brpop(["email_queue"], timeout=60)[1])
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", job["to"], "digest"
    msg.set_content(job["body"])
    smtp.send_message(msg)
    sent += 1
smtp.quit()
print("sent", sent, flush=True)
'''


def test_twenty_thousand_emails_lose_no_span(tmp_path):
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                   MAILSCOPE_QUEUE_ENVELOPE="json")
    env.pop("OTEL_BSP_SCHEDULE_DELAY")  # the SDK's defaults, all of them
    producer = write_script(tmp_path, PRODUCER, "producer.py")
    worker = write_script(tmp_path, WORKER, "worker.py")
    with RedisServer(tmp_path / "redis") as redis_server, FastSink() as sink:
        procs = {}
        for name, script, args in (("worker", worker, [redis_server.url, sink.port, EMAILS]),
                                   ("producer", producer, [redis_server.url, EMAILS])):
            procs[name] = subprocess.Popen(
                [INSTRUMENT, sys.executable, str(script), *map(str, args)],
                env={**env, "MAILSCOPE_TRACES_FILE": str(tmp_path / f"{name}.jsonl"), "OTEL_SERVICE_NAME": name},
                cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        try:
            outputs = {name: proc.communicate(timeout=600) for name, proc in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        delivered = sink.accepted
    for name, proc in procs.items():
        assert proc.returncode == 0, (name, outputs[name][1][-3000:])
        assert "Queue full" not in outputs[name][1], (name, outputs[name][1][-2000:])
    assert f"sent {EMAILS}" in outputs["worker"][0]
    assert delivered == EMAILS

    counts = Counter()
    for name in procs:
        reader = SpanReader([str(tmp_path / f"{name}.jsonl")])
        counts.update(s["name"] for s in reader)
        assert reader.skipped == 0
    for span_name in (attr.SPAN_PERSONALIZE, attr.SPAN_TEMPLATE_LOAD, "send email_queue", "receive email_queue",
                      "process email_queue", attr.SPAN_SEND):
        assert counts[span_name] == EMAILS, (span_name, counts)

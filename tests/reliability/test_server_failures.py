"""Redis and SMTP fail in the middle of a run: the app sees exactly the errors it sees without mailscope.

One app script runs a fixed sequence against real servers: SMTP servers that
refuse a recipient, refuse the sender, reject the DATA, drop the connection at
DATA, stall past the client's timeout, a closed SMTP port (smtplib and
aiosmtplib); a redis-server that is stopped mid-run (push and pop fail) and
started again (they work again). Every outcome the app observes - return values,
exception type, args, str, and the types of its cause/context - is printed, and
the instrumented run must print the same as the uninstrumented one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import INSTRUMENT, base_env, free_port, write_script
from tests.support.redis_server import RedisServer
from tests.support.smtp_server import Behaviour, SMTPTestServer

APP = r'''
import asyncio, json, os, smtplib, sys, time
from email.message import EmailMessage

import aiosmtplib
import redis

ports = json.loads(sys.argv[1])
redis_url, gate = sys.argv[2], sys.argv[3]
seen = []

def describe(exc):
    return [type(exc).__module__ + "." + type(exc).__qualname__, repr(exc.args), str(exc),
            type(exc.__cause__).__name__, type(exc.__context__).__name__]

def observe(label, func):
    try:
        seen.append([label, "ok", repr(func())])
    except Exception as exc:  # the app's own handling: record what it got
        seen.append([label, "raised"] + describe(exc))

def message(to):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", to, "hi"
    msg["Message-ID"] = "<fixed@shop.example>"
    msg.set_content("hello")
    return msg

def smtp_send(port, to, timeout=10):
    def go():
        with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
            return s.send_message(message(to))
    return go

def async_send(port, to, timeout=10):
    def go():
        return asyncio.run(aiosmtplib.send(message(to), hostname="127.0.0.1", port=port, timeout=timeout))[1]
    return go

observe("refused recipient", smtp_send(ports["refuse"], "gone@mail.example.com"))
observe("refused one of two", lambda: smtplib.SMTP("127.0.0.1", ports["refuse"], timeout=10).sendmail(
    "news@shop.example", ["gone@mail.example.com", "ok@mail.example.com"], b"Subject: x\r\n\r\nbody"))
observe("refused sender", smtp_send(ports["sender"], "a@mail.example.com"))
observe("data rejected", smtp_send(ports["data"], "a@mail.example.com"))
observe("dropped at DATA", smtp_send(ports["drop"], "a@mail.example.com"))
observe("stall past timeout", smtp_send(ports["stall"], "a@mail.example.com", timeout=0.5))
observe("closed port", smtp_send(ports["closed"], "a@mail.example.com"))
observe("async refused recipient", async_send(ports["refuse"], "gone@mail.example.com"))
observe("async dropped at DATA", async_send(ports["drop"], "a@mail.example.com"))
observe("async closed port", async_send(ports["closed"], "a@mail.example.com"))

r = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
observe("push before", lambda: r.lpush("email_queue", json.dumps({"n": 1})))
observe("pop before", lambda: r.brpop(["email_queue"], timeout=1))
print("phase stop", flush=True)
while not os.path.exists(gate + ".stopped"):
    time.sleep(0.02)
observe("push while down", lambda: r.lpush("email_queue", json.dumps({"n": 2})))
observe("pop while down", lambda: r.brpop(["email_queue"], timeout=1))
observe("pipeline while down", lambda: r.pipeline().lpush("email_queue", "x").rpop("email_queue").execute())
print("phase start", flush=True)
while not os.path.exists(gate + ".started"):
    time.sleep(0.02)
observe("push after", lambda: r.lpush("email_queue", json.dumps({"n": 3})))
observe("pop after", lambda: r.brpop(["email_queue"], timeout=1))
print("result " + json.dumps(seen), flush=True)
'''


@pytest.fixture(scope="module")
def smtp_ports():
    servers = {
        "refuse": SMTPTestServer(Behaviour(refuse={"gone@mail.example.com": "550 5.1.1 <gone@mail.example.com>: no such user"})),
        "sender": SMTPTestServer(Behaviour(sender_reply="553 5.7.1 <news@shop.example>: sender not allowed")),
        "data": SMTPTestServer(Behaviour(data_reply="554 5.7.1 message rejected as spam")),
        "drop": SMTPTestServer(Behaviour(drop_at="DATA")),
        "stall": SMTPTestServer(Behaviour(stall_at="DATA", stall_seconds=3)),
    }
    for server in servers.values():
        server.start()
    try:
        ports = {name: server.port for name, server in servers.items()}
        ports["closed"] = free_port()
        yield ports
    finally:
        for server in servers.values():
            server.stop()


def _run(tmp_path, name, ports, instrument):
    script = write_script(tmp_path, APP, "failing_app.py")
    redis = RedisServer(tmp_path / f"redis-{name}").start()
    gate = str(tmp_path / f"gate-{name}")
    env = base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=tmp_path / f"{name}.jsonl",
        OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
    )
    cmd = ([INSTRUMENT] if instrument else []) + [sys.executable, str(script), json.dumps(ports), redis.url, gate]
    proc = subprocess.Popen(cmd, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("phase stop"):
                redis.stop()
                open(gate + ".stopped", "w").close()
            elif line.startswith("phase start"):
                redis.start()
                open(gate + ".started", "w").close()
        proc.wait(timeout=60)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        redis.close()
    assert proc.returncode == 0, stderr[-3000:]
    # each run has its own redis-server port, which appears in the error text
    lines = [line.replace(f":{redis.port}", ":<redis-port>") for line in lines]
    result = [json.loads(line[len("result "):]) for line in lines if line.startswith("result ")]
    assert result, (lines, stderr[-3000:])
    return result[0], stderr


def test_the_app_sees_the_same_errors_with_and_without_mailscope(tmp_path, smtp_ports):
    plain, _ = _run(tmp_path, "plain", smtp_ports, instrument=False)
    instrumented, stderr = _run(tmp_path, "instrumented", smtp_ports, instrument=True)
    # the scenarios really failed the way they are meant to (otherwise the comparison proves little)
    by_label = {row[0]: row for row in plain}
    assert by_label["refused recipient"][2].endswith("SMTPRecipientsRefused")
    assert by_label["dropped at DATA"][2].endswith("SMTPServerDisconnected")
    assert by_label["stall past timeout"][1] == "raised"
    assert by_label["push while down"][2].startswith("redis.exceptions.")
    assert by_label["pop after"][1] == "ok"
    assert instrumented == plain
    assert "internal error" not in stderr, stderr[-3000:]
    # and the instrumented run really was instrumented: the failures are on its spans
    spans = read_spans(str(tmp_path / "instrumented.jsonl"))
    failed_sends = [s for s in spans if s["name"] == attr.SPAN_SEND and s["status_code"] == "ERROR"]
    assert len(failed_sends) >= 5, [(s["name"], s["status_code"]) for s in spans]
    assert any(s["name"] == "LPUSH" and s["status_code"] == "ERROR" for s in spans) or any(
        s["name"].startswith("send ") and s["status_code"] == "ERROR" for s in spans)

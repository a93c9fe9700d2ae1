"""The collector is unreachable, hangs, is slow or answers errors: the app never notices.

A scaled-down newsletter pipeline (template render -> Redis queue -> SMTP send,
tests/reliability/apps.py) runs under `opentelemetry-instrument` exporting
OTLP/HTTP to a closed port, a listener that never answers, a server that answers
slowly and one that answers 503. In each case every email is sent with the same
outcomes as without instrumentation, nothing reaches the app's stderr as a
traceback, the span queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE), drops are counted
and an outage is logged once, not per batch. Then: the collector comes back and
export resumes; the recovery time is printed (not asserted: no timings in tests).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time

import pytest

from tests.reliability.apps import result_of, run_app, write_pipeline_app
from tests.support.faulty_collectors import BlackHole, FaultyHttpReceiver, closed_port
from tests.support.launcher import INSTRUMENT, base_env

EMAILS = 40
QUEUE_SIZE = 256  # below the SDK's default batch size: also proves that setting is survivable
BURST = 3000  # application spans after the emails, far more than the queue holds

FAILING_LINE = "span export through OTLPSpanExporter is failing"
SUMMARY = re.compile(r"mailscope: (\d+) spans in (\d+) batches could not be exported through OTLPSpanExporter")


def collector_env(endpoint: str, **extra) -> dict:
    settings = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE_SIZE),
    }
    return base_env(**{**settings, **extra})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, redis_url, smtp_port):
    script = write_pipeline_app(tmp_path_factory.mktemp("plain"))
    plain = run_app(script, base_env(), redis_url, smtp_port, EMAILS, "--burst", BURST, instrument=False)
    assert plain.returncode == 0, plain.stderr
    return result_of(plain)["outcomes"]


@pytest.fixture
def collector(request):
    kind = request.param
    server = None
    if kind == "closed port":
        endpoint = f"http://127.0.0.1:{closed_port()}"
    elif kind == "black hole":
        server = BlackHole().start()
        endpoint = server.endpoint
    elif kind == "slow":
        server = FaultyHttpReceiver("slow", delay=1.0).start()
        endpoint = server.endpoint
    else:
        server = FaultyHttpReceiver("error", status=503).start()
        endpoint = server.endpoint
    try:
        yield kind, endpoint, server
    finally:
        if server is not None:
            server.stop()


@pytest.mark.parametrize("collector", ["closed port", "black hole", "slow", "503 errors"], indirect=True)
def test_the_pipeline_completes_whatever_the_collector_does(tmp_path, redis_url, smtp_port, reference, collector,
                                                            capsys):
    kind, endpoint, server = collector
    script = write_pipeline_app(tmp_path)
    # --pace spreads the emails over ~3 s so several batches are exported (and fail) while the app runs
    result = run_app(script, collector_env(endpoint), redis_url, smtp_port, EMAILS, "--burst", BURST, "--pace", 0.06)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = result_of(result)
    assert seen["outcomes"] == reference  # every email, same outcome as uninstrumented
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    # bounded: the span queue never holds more than its configured size
    assert seen["queue"]["maxlen"] == QUEUE_SIZE and seen["queue"]["len"] <= QUEUE_SIZE
    # the invalid batch-size/queue-size combination became one warning, not a dead SDK
    assert result.stderr.count("the span batch settings are invalid") == 1
    if kind == "slow":
        assert FAILING_LINE not in result.stderr
        assert any(s["name"] == "email.send" for s in server.store.spans)
        return
    # an outage: one warning when it starts, one summary with the count, no per-batch repetition
    assert result.stderr.count(FAILING_LINE) == 1, result.stderr
    summaries = SUMMARY.findall(result.stderr)
    assert len(summaries) == 1, result.stderr
    dropped, batches = map(int, summaries[0])
    with capsys.disabled():
        print(f"\n[reliability] {kind}: {dropped} spans in {batches} failed batches counted as dropped "
              f"(plus queue-full drops of the {BURST}-span burst)")
    assert batches >= 2 and dropped >= batches, summaries  # several batches failed...
    # ...yet each of the SDK's per-batch messages appeared at most once
    assert result.stderr.count("Failed to export spans batch") <= 1, result.stderr
    assert result.stderr.count("Transient error") <= 1, result.stderr
    assert result.stderr.count("Queue full, dropping") <= 1, result.stderr  # the queue did overflow


def _id_hash(n: int) -> str:
    return hashlib.sha256(f"digest-{n}@shop.example".encode()).hexdigest()[:16]


def test_export_resumes_when_the_collector_comes_back(tmp_path, redis_url, smtp_port, capsys):
    receiver = FaultyHttpReceiver("error", status=503).start()
    emails = 160
    try:
        script = write_pipeline_app(tmp_path)
        env = collector_env(receiver.endpoint, OTEL_BSP_MAX_QUEUE_SIZE="2048")
        cmd = [INSTRUMENT, sys.executable, str(script), redis_url, str(smtp_port), str(emails), "--pace", "0.05"]
        proc = subprocess.Popen(cmd, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while receiver.failed_requests < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert receiver.failed_requests >= 2, "the outage was never seen"
            receiver.switch("ok")
            stdout, stderr = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        sent = [o for o in result_of(subprocess.CompletedProcess(cmd, 0, stdout, stderr))["outcomes"]]
        assert len(sent) == emails and all(o[0] == "sent" for o in sent)
        assert receiver.first_ok_after_switch is not None, "export never resumed"
        received = {s["attributes"].get("email.message.id_hash") for s in receiver.store.spans if s["name"] == "email.send"}
        # the last email, sent well after the switch, arrived
        assert _id_hash(emails - 1) in received
        assert stderr.count(FAILING_LINE) == 1 and stderr.count("works again;") == 1, stderr
        recovery = receiver.first_ok_after_switch - receiver.switched_at
        with capsys.disabled():
            print(f"\n[reliability] export recovery time after the collector came back: {recovery:.2f} s; "
                  f"{len(received)} of {emails} send spans received")
    finally:
        receiver.stop()

"""Queues end to end: producer and consumer as separate processes under the real `opentelemetry-instrument`.

The apps never import mailscope. Upstream opentelemetry-instrumentation-redis is
active under the launcher too, so these tests also show the two coexisting.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import free_port, popen_instrumented, run_instrumented, write_script
from tests.support.queue_launch import AGE, DEPTH, queue_env, scrape, scrape_until
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

Q = "email_queue"

PRODUCER = """
import base64, json, sys, time
import redis
from opentelemetry import trace

url, out = sys.argv[1], sys.argv[2]
r = redis.Redis.from_url(url)
tracer = trace.get_tracer("newsletter.producer")
pushed = []
t_before = time.time()
with tracer.start_as_current_span("campaign"):
    for n in range(3):
        payload = json.dumps({"campaign": "spring", "recipient": n, "subject": "Grüße"}, ensure_ascii=False).encode()
        r.lpush("email_queue", payload)
        pushed.append(payload)
    batch = [b'{ "recipient" : 10 }', b'{"recipient": 11,\\n "tags": []}']
    pipe = r.pipeline()
    pipe.lpush("email_queue", *batch)
    pipe.execute()
    pushed += batch
    r.lpush("email_queue", b"plain-text-message")
    pushed.append(b"plain-text-message")
t_after = time.time()
with open(out, "w") as f:
    json.dump({"pushed": [base64.b64encode(p).decode() for p in pushed], "t_before": t_before, "t_after": t_after}, f)
"""

CONSUMER = """
import asyncio, base64, json, sys, time
import redis.asyncio
from opentelemetry import trace

url, out = sys.argv[1], sys.argv[2]
tracer = trace.get_tracer("newsletter.worker")

def handle(payload):
    with tracer.start_as_current_span("handle") as span:
        span.set_attribute("payload.b64", base64.b64encode(payload).decode())

async def main():
    r = redis.asyncio.Redis.from_url(url)
    t_start = time.time()
    got, received_at = [], []
    while True:
        reply = await r.brpop("email_queue", timeout=0.5)
        if reply is None:
            break
        received_at.append(time.time())
        got.append(reply[1])
        handle(reply[1])
    await r.aclose()
    with open(out, "w") as f:
        json.dump({"got": [base64.b64encode(p).decode() for p in got], "t_start": t_start,
                   "received_at": received_at}, f)

asyncio.run(main())
"""


def test_one_trace_spans_producer_and_consumer_processes(tmp_path, redis_server):  # noqa: F811
    produced, consumed = tmp_path / "produced.json", tmp_path / "consumed.json"
    result = run_instrumented(write_script(tmp_path, PRODUCER, "producer.py"), queue_env(tmp_path, "producer"),
                              redis_server.url, produced)
    assert result.returncode == 0, result.stderr
    result = run_instrumented(write_script(tmp_path, CONSUMER, "consumer.py"), queue_env(tmp_path, "consumer"),
                              redis_server.url, consumed)
    assert result.returncode == 0, result.stderr
    produced, consumed = json.loads(produced.read_text()), json.loads(consumed.read_text())

    # the consumer received exactly what the producer pushed, in FIFO order
    pushed = [base64.b64decode(p) for p in produced["pushed"]]
    got = [base64.b64decode(p) for p in consumed["got"]]
    assert got == pushed

    producer_spans = read_spans(str(tmp_path / "producer.jsonl"))
    consumer_spans = read_spans(str(tmp_path / "consumer.jsonl"))
    sends = [s for s in producer_spans if s["name"] == f"send {Q}"]
    assert len(sends) == 5 and all(s["kind"] == "PRODUCER" for s in sends)
    assert sorted(s["attributes"].get(attr.MESSAGING_BATCH_MESSAGE_COUNT, 1) for s in sends) == [1, 1, 1, 1, 2]
    send_by_id = {s["span_id"]: s for s in sends}

    processes = [s for s in consumer_spans if s["name"] == f"process {Q}"]
    receives = [s for s in consumer_spans if s["name"] == f"receive {Q}"]
    handles = {s["attributes"]["payload.b64"]: s for s in consumer_spans if s["name"] == "handle"}
    assert len(processes) == len(receives) == len(handles) == 6
    process_by_id = {s["span_id"]: s for s in processes}

    for payload in pushed:
        handle = handles[base64.b64encode(payload).decode()]
        process = process_by_id[handle["parent_span_id"]]
        assert process["resource"]["service.name"] == "consumer"
        if payload.startswith(b"{"):
            # one trace across both processes: process is the child of the producer's send span
            send = send_by_id[process["parent_span_id"]]
            assert send["resource"]["service.name"] == "producer"
            assert process["trace_id"] == send["trace_id"] == handle["trace_id"]
            assert [link["span_id"] for link in process["links"]] == [send["span_id"]]
        else:
            assert process["parent_span_id"] is None and process["links"] == []
            assert process["trace_id"] not in {s["trace_id"] for s in sends}

    # wait time: bounded by what the two processes' own clocks saw
    waits = sorted(s["attributes"][attr.QUEUE_WAIT] for s in receives if attr.QUEUE_WAIT in s["attributes"])
    assert len(waits) == 5
    assert waits[0] >= consumed["t_start"] - produced["t_after"]
    assert waits[-1] <= max(consumed["received_at"]) - produced["t_before"]

    # upstream redis spans coexist: one per command, the direct pushes under our send spans
    lpush = [s for s in producer_spans if s["name"] == "LPUSH"]
    assert len(lpush) == 5  # four direct commands and the pipeline
    direct = [s for s in lpush if s["parent_span_id"] in send_by_id]
    assert len(direct) == 4
    brpop = [s for s in consumer_spans if s["name"] == "BRPOP"]
    assert len(brpop) == 7  # six messages and the final empty pop


GAUGE_APP = """
import json, sys, time, traceback
import redis

r = redis.Redis.from_url(sys.argv[1])
t_before = time.time()
r.lpush("email_queue", json.dumps({"n": 0}))
t_after = time.time()
for n in range(1, 7):
    r.lpush("email_queue", json.dumps({"n": n}))
print(json.dumps({"t_before": t_before, "t_after": t_after}), flush=True)
for line in sys.stdin:
    command = line.split()
    if command[0] == "pop":
        for _ in range(int(command[1])):
            r.brpop("email_queue", timeout=1)
        print("popped", flush=True)
    elif command[0] == "push":
        try:
            r.lpush("email_queue", b'{"late": 1}')
            print("pushed", flush=True)
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1].filename
            print("error", type(exc).__module__, type(exc).__name__, "redis" in last, flush=True)
    elif command[0] == "exit":
        break
"""


@pytest.fixture
def stoppable_redis(tmp_path):
    """A redis-server the test stops and restarts itself; always closed afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.close()


def test_depth_and_age_gauges_on_prometheus_while_backed_up_and_redis_down(tmp_path, stoppable_redis):
    server = stoppable_redis
    metrics_port = free_port()
    env = queue_env(
        tmp_path, "gauges",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=metrics_port,
        MAILSCOPE_QUEUES=Q,
    )
    import redis

    outside = redis.Redis.from_url(server.url)
    outside.execute_command("RPUSH", "email_queue_dlq", b"dead-1", b"dead-2")
    outside.close()
    app = popen_instrumented(write_script(tmp_path, GAUGE_APP, "gauges.py"), env, server.url,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        times = json.loads(app.stdout.readline())
        scrape_from = time.time()
        values = scrape_until(metrics_port, lambda v: v.get((DEPTH, Q)) == 7)
        scrape_to = time.time()
        assert values[(DEPTH, Q)] == 7
        assert values[(DEPTH, "email_queue_dlq")] == 2
        assert scrape_from - times["t_after"] <= values[(AGE, Q)] <= scrape_to - times["t_before"]

        app.stdin.write("pop 3\n")
        app.stdin.flush()
        assert app.stdout.readline().strip() == "popped"
        assert scrape_until(metrics_port, lambda v: v.get((DEPTH, Q)) == 4)[(DEPTH, Q)] == 4

        server.stop()
        values = scrape_until(metrics_port, lambda v: (DEPTH, Q) not in v)
        assert not [key for key in values if key[0] in (DEPTH, AGE)]
        for _ in range(3):  # stays absent: no zeros, no stale values
            assert not [key for key in scrape(metrics_port) if key[0] in (DEPTH, AGE)]
        app.stdin.write("push\n")
        app.stdin.flush()
        assert app.stdout.readline().split() == ["error", "redis.exceptions", "ConnectionError", "True"]

        server.start()  # same port, empty
        values = scrape_until(metrics_port, lambda v: v.get((DEPTH, Q)) == 0)
        assert values[(DEPTH, Q)] == 0 and values[(DEPTH, "email_queue_dlq")] == 0

        app.stdin.write("exit\n")
        app.stdin.flush()
        _, stderr = app.communicate(timeout=30)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, stderr
    assert stderr.count("queue gauges cannot read Redis") == 1

    spans = read_spans(str(tmp_path / "gauges.jsonl"))
    processes = [s for s in spans if s["name"] == f"process {Q}"]
    # the third message was still being processed at exit: atexit ended its span
    assert len(processes) == 3
    (failed,) = [s for s in spans if s["name"] == f"send {Q}" and s["status_code"] == "ERROR"]
    assert failed["attributes"][attr.ERROR_TYPE] == "redis.exceptions.ConnectionError"
    last = max(processes, key=lambda s: s["start_ns"])
    assert failed["parent_span_id"] == last["span_id"]
    # gauge reads went through no instrumented command
    assert not [s for s in spans if s["name"] in ("LLEN", "LINDEX", "SCAN")]
    assert [s for s in spans if s["name"] == "LPUSH"]

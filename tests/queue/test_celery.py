"""Celery with a Redis broker: the depth gauge sees Celery's queue, and upstream Celery task spans coexist.

Celery (kombu) keeps each queue as a Redis list named after the queue and
publishes with LPUSH, so the producer gets a `send {queue}` span under Celery's
own `apply_async` span, and the queue gauges count the tasks waiting. A real
worker runs in a subprocess under `opentelemetry-instrument`.
"""

from __future__ import annotations

import subprocess
import sys
import time

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import INSTRUMENT, free_port, popen_instrumented, write_script
from tests.support.queue_launch import AGE, DEPTH, queue_env, scrape, scrape_until
from tests.support.redis_server import redis_server  # noqa: F401 - fixture

Q = "email_queue"
TASKS = 5

CELERY_APP = """
import os
from celery import Celery
from opentelemetry import trace

app = Celery("mail", broker=os.environ["BROKER_URL"], backend=os.environ["BROKER_URL"])
app.conf.task_default_queue = "email_queue"
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_hijack_root_logger = False

@app.task(name="mail.send_newsletter")
def send_newsletter(n):
    with trace.get_tracer("mail.worker").start_as_current_span("render-and-send"):
        return n * 2
"""

PRODUCER = """
import sys
from mail_tasks import send_newsletter

results = [send_newsletter.delay(n) for n in range(%d)]
print("queued", flush=True)
sys.stdin.readline()  # the test starts the worker, then asks for the results
print(" ".join(str(r.get(timeout=60)) for r in results), flush=True)
sys.stdin.readline()
""" % TASKS


def test_celery_queue_depth_and_task_spans(tmp_path, redis_server):  # noqa: F811
    write_script(tmp_path, CELERY_APP, "mail_tasks.py")
    metrics_port = free_port()
    common = dict(BROKER_URL=redis_server.url, MAILSCOPE_QUEUES=Q, PYTHONPATH=f"{tmp_path}:{queue_env(tmp_path, 'x')['PYTHONPATH']}")
    producer_env = queue_env(
        tmp_path, "producer", OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=metrics_port, **common,
    )
    started = time.time()
    producer = popen_instrumented(write_script(tmp_path, PRODUCER, "producer.py"), producer_env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker = None
    try:
        assert producer.stdout.readline().strip() == "queued"
        # backed up: no worker yet
        values = scrape_until(metrics_port, lambda v: v.get((DEPTH, Q)) == TASKS)
        assert values[(DEPTH, Q)] == TASKS
        # kombu messages are JSON objects, so they carry the envelope: the oldest task's age is known
        assert 0 <= values[(AGE, Q)] <= time.time() - started

        worker = subprocess.Popen(
            [INSTRUMENT, sys.executable, "-m", "celery", "-A", "mail_tasks", "worker", "-Q", Q, "--pool=solo",
             "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=WARNING"],
            env=queue_env(tmp_path, "worker", **common), cwd=str(tmp_path),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        producer.stdin.write("results\n")
        producer.stdin.flush()
        assert producer.stdout.readline().split() == [str(n * 2) for n in range(TASKS)]
        assert scrape_until(metrics_port, lambda v: v.get((DEPTH, Q)) == 0)[(DEPTH, Q)] == 0
        assert (DEPTH, Q) in scrape(metrics_port)  # drained, still reported
        producer.stdin.write("done\n")
        producer.stdin.flush()
        _, producer_err = producer.communicate(timeout=30)
        assert producer.returncode == 0, producer_err
        worker.terminate()  # warm shutdown: exits normally, spans are flushed
        _, worker_err = worker.communicate(timeout=60)
        assert worker.returncode == 0, worker_err
    finally:
        for proc in (producer, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()

    produced = read_spans(str(tmp_path / "producer.jsonl"))
    worked = read_spans(str(tmp_path / "worker.jsonl"))
    publish = {s["span_id"]: s for s in produced if s["name"] == "apply_async/mail.send_newsletter"}
    sends = [s for s in produced if s["name"] == f"send {Q}"]
    assert len(publish) == len(sends) == TASKS
    # ours adds the messaging meaning inside Celery's publish span
    assert {s["parent_span_id"] for s in sends} == set(publish)
    assert all(s["attributes"][attr.MESSAGING_SYSTEM] == "redis" for s in sends)
    runs = [s for s in worked if s["name"] == "run/mail.send_newsletter"]
    assert len(runs) == TASKS
    # Celery's own propagation still carries each task's trace into the worker
    assert {s["trace_id"] for s in runs} == {s["trace_id"] for s in publish.values()}
    inner = [s for s in worked if s["name"] == "render-and-send"]
    assert {s["parent_span_id"] for s in inner} == {s["span_id"] for s in runs}

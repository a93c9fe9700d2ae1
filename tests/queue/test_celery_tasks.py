"""Celery tasks as queue operations: a real producer and a real `celery worker`, both under the launcher.

One process span per task execution carries queue.process, the queue wait and
Celery's messaging names; producer and worker share each task's trace; retries
and failures are classified ERROR spans; every execution adds a queue-wait
sample. Run with opentelemetry-instrumentation-celery active (mailscope's
attributes go on Celery's `run/{task}` span) and disabled (mailscope's own
`process {queue}` span), on a real Redis broker with the solo pool, and once on
RabbitMQ with Celery's default prefork pool.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import INSTRUMENT, run_instrumented, write_script
from tests.support.queue_launch import queue_env
from tests.support.rabbitmq_server import rabbitmq_server  # noqa: F401 - fixture
from tests.support.redis_server import redis_server  # noqa: F401 - fixture

Q = "email_queue"
EXECUTIONS = 6  # welcome x2, flaky x3 (two retries), rejected x1

TASKS = """
import os
import smtplib
from celery import Celery
from opentelemetry import trace

app = Celery("mail", broker=os.environ["BROKER_URL"])
app.conf.task_default_queue = "email_queue"
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_hijack_root_logger = False

if os.environ.get("MAILSCOPE_AFTER_UPSTREAM"):
    # re-instrument: mailscope's signal handlers now run after the upstream instrumentation's
    from mailscope.instrumentation.queue import QueueInstrumentor

    QueueInstrumentor().uninstrument()
    QueueInstrumentor().instrument()


def done(line):
    with open(os.environ["DONE_FILE"], "a") as out:
        out.write(line + "\\n")


@app.task(name="mail.send_welcome")
def send_welcome(n):
    with trace.get_tracer("mail.worker").start_as_current_span("render-and-send"):
        done(f"welcome {n}")
    return n


@app.task(name="mail.send_flaky", bind=True, max_retries=3)
def send_flaky(self, n):
    if self.request.retries < 2:
        raise self.retry(exc=smtplib.SMTPResponseException(421, b"4.3.2 Service shutting down, try again later"),
                         countdown=0)
    done(f"flaky {n}")


@app.task(name="mail.send_rejected")
def send_rejected(n):
    done(f"rejected {n}")
    raise smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam")
"""

PRODUCER = """
from opentelemetry import trace
from mail_tasks import send_flaky, send_rejected, send_welcome

send_welcome.delay(0)
send_welcome.delay(1)
with trace.get_tracer("mail.app").start_as_current_span("signup"):
    send_flaky.delay(2)
send_rejected.delay(3)
print("queued", flush=True)
"""


def _run(tmp_path, broker_url: str, upstream: bool, pool: str = "solo", **extra):
    """Publish, then start a worker: (producer spans, worker spans, worker metric points, seconds in between)."""
    write_script(tmp_path, TASKS, "mail_tasks.py")
    done = tmp_path / "done.txt"
    common = dict(BROKER_URL=broker_url, DONE_FILE=done, MAILSCOPE_QUEUES=Q,
                  PYTHONPATH=f"{tmp_path}:{queue_env(tmp_path, 'x')['PYTHONPATH']}")
    if not upstream:
        common["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "celery"
    common.update(extra)
    producer = run_instrumented(write_script(tmp_path, PRODUCER, "producer.py"), queue_env(tmp_path, "producer", **common))
    assert producer.returncode == 0, producer.stderr
    assert producer.stdout.strip() == "queued"
    published_by = time.time()

    worker_env = queue_env(tmp_path, "worker", OTEL_METRICS_EXPORTER="otlp_json_file",
                           MAILSCOPE_METRICS_FILE=tmp_path / "worker-metrics.jsonl", **common)
    started = time.time()
    worker = subprocess.Popen(
        [INSTRUMENT, sys.executable, "-m", "celery", "-A", "mail_tasks", "worker", "-Q", Q, f"--pool={pool}",
         "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        env=worker_env, cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if done.exists() and len(done.read_text().splitlines()) == 4:
                break
            time.sleep(0.2)
        assert sorted(done.read_text().split("\n")[:-1]) == ["flaky 2", "rejected 3", "welcome 0", "welcome 1"]
        worker.terminate()  # warm shutdown: exits normally, spans and metrics are flushed
        _, worker_err = worker.communicate(timeout=60)
        assert worker.returncode == 0, worker_err
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    return (read_spans(str(tmp_path / "producer.jsonl")), read_spans(str(tmp_path / "worker.jsonl")),
            list(read_metric_points(str(tmp_path / "worker-metrics.jsonl"))), started - published_by)


def _check(produced, worked, points, gap, upstream: bool):
    processes = [s for s in worked if s["attributes"].get(attr.OPERATION) == attr.OP_QUEUE_PROCESS]
    assert len(processes) == EXECUTIONS
    by_task: dict = {}
    for span in sorted(processes, key=lambda s: s["start_ns"]):
        assert span["kind"] == "CONSUMER"
        a = span["attributes"]
        assert a[attr.MESSAGING_SYSTEM] == "celery"
        assert a[attr.MESSAGING_DESTINATION_NAME] == Q
        assert a[attr.MESSAGING_OPERATION_TYPE] == "process"
        assert a[attr.QUEUE_WAIT] >= 0
        by_task.setdefault(a[attr.CELERY_TASK_NAME], []).append(span)
        # one span per execution: the upstream run span, or ours
        assert span["name"] == (f"run/{a[attr.CELERY_TASK_NAME]}" if upstream else f"process {Q}")
    if upstream:
        assert not [s for s in worked if s["name"] == f"process {Q}"]
    else:
        assert not [s for s in worked if s["name"].startswith("run/")]

    # producer and worker share each task's trace; nothing in the worker starts a trace of its own
    # (besides kombu's polling of the broker: Redis client spans outside any task)
    roots = [s["name"] for s in worked if not s["parent_span_id"]
             and attr.DB_SYSTEM not in s["attributes"] and attr.DB_SYSTEM_NAME not in s["attributes"]]
    assert roots == []
    producer_spans = {s["span_id"]: s for s in produced}
    (signup,) = [s for s in produced if s["name"] == "signup"]
    welcome = by_task["mail.send_welcome"]
    for span in welcome:
        publish = producer_spans[span["parent_span_id"]]
        assert publish["trace_id"] == span["trace_id"]
        assert publish["kind"] == "PRODUCER"
        # the task waited at least from the end of the producer to the start of the worker
        assert span["attributes"][attr.QUEUE_WAIT] >= gap
    inner = [s for s in worked if s["name"] == "render-and-send"]
    assert {s["parent_span_id"] for s in inner} == {s["span_id"] for s in welcome}

    # a retried email task: ERROR executions, classified, with the retry count; all in the signup trace
    flaky = by_task["mail.send_flaky"]
    assert [s["attributes"][attr.CELERY_RETRIES] for s in flaky] == [0, 1, 2]
    assert {s["trace_id"] for s in flaky} == {signup["trace_id"]}
    assert [s["status_code"] for s in flaky] == ["ERROR", "ERROR", "UNSET"]
    for span in flaky[:2]:
        assert span["attributes"][attr.ERROR_CATEGORY] == "infrastructure"
        assert span["attributes"][attr.ERROR_TYPE] == "smtplib.SMTPResponseException"  # the cause, not Retry
        assert span["attributes"][attr.ERROR_RETRYABLE] is True
    # a failed one
    (rejected,) = by_task["mail.send_rejected"]
    assert rejected["status_code"] == "ERROR"
    assert rejected["attributes"][attr.ERROR_CATEGORY] == "content"  # a spam verdict on the message
    assert rejected["attributes"][attr.ERROR_RETRYABLE] is False

    # one queue-wait sample per execution (summed over the processes that ran tasks: prefork children)
    counts: dict = {}
    for p in points:
        if p["name"] == attr.METRIC_QUEUE_WAIT and p["attributes"].get(attr.MESSAGING_DESTINATION_NAME) == Q:
            process = (p["resource"].get(attr.SERVICE_INSTANCE_ID), p["resource"].get(attr.PROCESS_PID))
            counts[process] = max(counts.get(process, 0), p["count"])
    assert sum(counts.values()) == EXECUTIONS


@pytest.mark.parametrize("upstream, after_upstream", [(False, ""), (True, ""), (True, "1")],
                         ids=["mailscope-span", "upstream-run-span", "upstream-run-span-mailscope-last"])
def test_celery_tasks_on_redis(tmp_path, redis_server, upstream, after_upstream):  # noqa: F811
    # by default mailscope's handlers run first (it connects when the upstream instrumentor imports
    # celery); "mailscope-last" reverses the order, so both ways of finding Celery's run span are used
    produced, worked, points, gap = _run(tmp_path, redis_server.url, upstream, MAILSCOPE_AFTER_UPSTREAM=after_upstream)
    _check(produced, worked, points, gap, upstream)
    publishes = [s for s in produced if s["attributes"].get(attr.MESSAGING_SYSTEM) == "celery"]
    if upstream:
        assert publishes == []  # Celery's apply_async spans are the publish spans
    else:
        assert len(publishes) == 4
        assert {s["name"] for s in publishes} == {f"send {Q}"}
        assert all(s["attributes"][attr.OPERATION] == attr.OP_QUEUE_PUBLISH for s in publishes)
        # kombu's LPUSH (a configured Redis queue) is a child of the Celery publish
        lpush = [s for s in produced if s["attributes"].get(attr.MESSAGING_SYSTEM) == "redis"]
        assert {s["parent_span_id"] for s in lpush} == {s["span_id"] for s in publishes}


def test_celery_tasks_on_rabbitmq_with_a_prefork_pool(tmp_path, rabbitmq_server):  # noqa: F811
    # Celery's default pool: tasks run in forked children, which inherit the signal handlers. A pool
    # child leaves with os._exit(), so no exit handler flushes it: export delays far longer than the
    # run make every span and point here depend on mailscope's flush at worker_process_shutdown (a
    # fresh-clone run under load once lost a child's three spans to the race with the export thread)
    produced, worked, points, gap = _run(tmp_path, rabbitmq_server.url, upstream=False, pool="prefork",
                                         OTEL_BSP_SCHEDULE_DELAY="600000", OTEL_METRIC_EXPORT_INTERVAL="600000")
    _check(produced, worked, points, gap, upstream=False)

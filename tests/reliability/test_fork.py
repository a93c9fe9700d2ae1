"""Processes forked after instrumentation export their own spans; the parent is not disturbed.

The app (under `opentelemetry-instrument`) sends one email, forks three
`multiprocessing` Processes and a two-worker Pool (fork start method) that each
render and send five emails, then sends one more itself. Every email of every
process arrives in the trace file exactly once (children used to exit through
`os._exit()` with their spans still queued: mailscope.forks flushes them), each
child's spans are its own traces, nothing the parent had queued is exported twice,
and the parent's own spans and results are unchanged.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import SpanReader
from tests.support.launcher import base_env, run_instrumented, write_script

APP = r'''
import multiprocessing, os, smtplib, sys
from email.message import EmailMessage
from jinja2 import DictLoader, Environment

port = int(sys.argv[1])
env = Environment(loader=DictLoader({"t.html": "hi {{ n }}"}))

def send(tag, n):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", f"r{n}@{tag}.example.com", "x"
    msg["Message-ID"] = f"<{tag}-{n}@shop.example>"
    msg.set_content(env.get_template("t.html").render(n=n))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        return s.send_message(msg)

def child(i):
    return [send(f"child{i}", n) for n in range(5)]

if __name__ == "__main__":
    results = [send("parent", 0)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=child, args=(i,)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    pool = ctx.Pool(2)
    results.append(pool.map(child, [10, 11]))
    pool.close()
    pool.join()
    results.append(send("parent", 1))
    print("exitcodes", [p.exitcode for p in procs])
    print("results", results)
'''


def test_forked_children_export_their_own_spans(tmp_path, smtp_port):
    traces = tmp_path / "traces.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    script = write_script(tmp_path, APP)
    plain = run_instrumented(script, env, smtp_port, instrument=False)
    result = run_instrumented(script, env, smtp_port)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == plain.stdout  # the parent's results and the children's exit codes
    assert "exitcodes [0, 0, 0]" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]

    reader = SpanReader([str(traces)])
    spans = list(reader)
    assert reader.skipped == 0  # concurrent writers never interleaved a line
    span_ids = Counter(s["span_id"] for s in spans)
    assert max(span_ids.values()) == 1  # nothing queued in the parent was exported again by a child

    sends = [s for s in spans if s["name"] == attr.SPAN_SEND]
    by_process = Counter(s["attributes"][attr.RECIPIENTS_DOMAINS][0].split(".")[0] for s in sends)
    expected = {"parent": 2, **{f"child{i}": 5 for i in (0, 1, 2, 10, 11)}}
    assert dict(by_process) == expected
    # each send has its personalize and template load, in its own process's trace
    assert Counter(s["name"] for s in spans)[attr.SPAN_PERSONALIZE] == sum(expected.values())
    traces_by_process = {}
    for s in sends:
        traces_by_process.setdefault(s["attributes"][attr.RECIPIENTS_DOMAINS][0].split(".")[0], set()).add(s["trace_id"])
    assert sum(len(t) for t in traces_by_process.values()) == len(sends)  # one trace per email, none shared


WSGI_APP = r'''
import os, smtplib
from email.message import EmailMessage

PORT = int(os.environ["SINK_PORT"])


def app(environ, start_response):
    n = environ["PATH_INFO"].strip("/")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", f"r{n}@req{n}.example.com", "x"
    msg.set_content("hello")
    with smtplib.SMTP("127.0.0.1", PORT, timeout=10) as s:
        s.send_message(msg)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{n} {os.getpid()}".encode()]
'''


def test_gunicorn_workers_export_their_own_spans(tmp_path, smtp_port):
    """gunicorn's arbiter is instrumented by the launcher and forks its workers: each request's send
    span arrives exactly once, from the worker that served it, after a graceful stop."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.support.launcher import INSTRUMENT, free_port

    traces = tmp_path / "traces.jsonl"
    write_script(tmp_path, WSGI_APP, "wsgi_app.py")
    port = free_port()
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", SINK_PORT=smtp_port)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen([INSTRUMENT, gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi_app:app"],
                            env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = Counter()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/warmup", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.1)
        for n in range(40):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/{n}", timeout=10).read().decode()
            pids[body.split()[1]] += 1
    finally:
        proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    reader = SpanReader([str(traces)])
    spans = list(reader)
    assert reader.skipped == 0
    sends = Counter(s["attributes"][attr.RECIPIENTS_DOMAINS][0] for s in spans if s["name"] == attr.SPAN_SEND)
    assert sends == {f"req{n}.example.com": 1 for n in [*range(40), "warmup"]}
    assert sum(pids.values()) == 40


LOCKED_AT_FORK_APP = r'''
import multiprocessing
from opentelemetry import trace

def file_exporter_lock():
    # the path the launcher wires: EnrichingSpanProcessor -> BatchSpanProcessor -> GuardedExporter
    # -> FileSpanExporter -> its writer, whose lock guards every write to the traces file
    for processor in trace.get_tracer_provider()._active_span_processor._span_processors:
        downstream = getattr(processor, "downstream", None)
        if downstream is not None:
            return downstream._batch_processor._exporter.exporter._exporter._lock
    raise SystemExit("no exporting processor found")

def child():
    with trace.get_tracer("child").start_as_current_span("child-work"):
        pass

if __name__ == "__main__":
    import sys
    if sys.argv[1] == "unguarded":  # as for an exporter whose locks mailscope does not know (exporters/export_locks.py)
        from mailscope.exporters import export_locks
        export_locks._slots.clear()
    lock = file_exporter_lock()
    ctx = multiprocessing.get_context("fork")
    with lock:  # as if the parent's export thread were writing a batch at the moment of the fork
        proc = ctx.Process(target=child)
        proc.start()
    proc.join(60)
    print("child exitcode", proc.exitcode, "joined", proc.exitcode is not None)
    with trace.get_tracer("parent").start_as_current_span("parent-work"):
        pass
'''


def test_a_child_forked_while_an_exporter_lock_was_held_still_exits(tmp_path):
    """An exporter lock mailscope does not know is held at the fork: the SDK's force_flush has no
    timeout and the child inherits the held lock; mailscope's exit flush gives up after its timeout
    instead of keeping the child (and the parent joining it) forever."""
    traces = tmp_path / "traces.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_instrumented(write_script(tmp_path, LOCKED_AT_FORK_APP), env, "unguarded", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "child exitcode 0 joined True" in result.stdout, result.stdout + result.stderr[-3000:]
    assert result.stderr.count("did not finish within") == 1, result.stderr[-3000:]
    names = [s["name"] for s in SpanReader([str(traces)])]
    assert names == ["parent-work"]  # the parent exports normally; the stuck child's span is given up


def test_a_file_exporter_lock_held_by_the_forking_thread_is_renewed_in_the_child(tmp_path):
    """The same fork with the file exporter's lock known to mailscope: the child gets a free lock
    and exports its span."""
    traces = tmp_path / "traces.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_instrumented(write_script(tmp_path, LOCKED_AT_FORK_APP), env, "guarded", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "child exitcode 0 joined True" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "did not finish within" not in result.stderr, result.stderr[-3000:]
    assert sorted(s["name"] for s in SpanReader([str(traces)])) == ["child-work", "parent-work"]

"""A child forked while an export thread is writing an OTLP JSON file does not block on it.

Found as an intermittent failure: the forking app of tests/test_ids.py hung for 120 s
under load. Its parent's export thread was writing a batch when the app forked; the
children inherited the file exporter's lock held, and their `force_flush()` waited
forever (exporters/export_locks.py).

The app runs under `opentelemetry-instrument` with all three signals exported to
files. For each of the upstream file exporters the launcher built, a thread holds
the exporter's lock (as an export in progress would), the app forks, and the child
flushes that signal under an alarm: a child that blocks is killed by SIGALRM. Two
holders: one that finishes its write soon after the fork starts, and one stuck for
longer than mailscope waits (the child gets a new lock). The control run, with the
fork handlers taken away, shows the same children blocking.
"""

from __future__ import annotations

import json

from tests.support.launcher import base_env, run_instrumented, write_script

APP = r'''
import gc, json, logging, os, signal, sys, threading, time
from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.exporter.otlp.json.file._internal import _FileExporter

if sys.argv[1] == "control":
    from mailscope.exporters import export_locks
    export_locks._slots.clear()  # the handlers stay registered, with nothing to guard

exporters = {e._kind: e for e in gc.get_objects() if isinstance(e, _FileExporter)}
tracer = trace.get_tracer("forks")
counter = metrics.get_meter("forks").create_counter("forks.made")
log = logging.getLogger("forks")

def flush(kind):
    if kind == "spans":
        with tracer.start_as_current_span("child"):
            pass
        trace.get_tracer_provider().force_flush()
    elif kind == "metrics":
        counter.add(1)
        metrics.get_meter_provider().force_flush()
    else:
        log.warning("from the child")
        get_logger_provider().force_flush()

results = {}
for kind, exporter in sorted(exporters.items()):
    for holder_kind, hold_for in (("brief", 0.2), ("stuck", 2.5)):
        held = threading.Event()

        def hold(lock=exporter._lock):
            with lock:
                held.set()
                time.sleep(hold_for)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)
            flush(kind)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        holder.join()
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        results[f"{kind} {holder_kind}"] = "finished" if ok else "blocked"
print(json.dumps(results))
'''


def _run(tmp_path, mode):
    env = base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=tmp_path / f"{mode}-traces.jsonl",
        OTEL_METRICS_EXPORTER="otlp_json_file", MAILSCOPE_METRICS_FILE=tmp_path / f"{mode}-metrics.jsonl",
        OTEL_LOGS_EXPORTER="otlp_json_file", MAILSCOPE_LOGS_FILE=tmp_path / f"{mode}-logs.jsonl",
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
    )
    result = run_instrumented(write_script(tmp_path, APP), env, mode)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_child_forked_during_a_file_export_flushes_every_signal(tmp_path):
    results = _run(tmp_path, "guarded")
    kinds = {"spans", "metrics", "logs"}
    assert set(results) == {f"{k} {h}" for k in kinds for h in ("brief", "stuck")}, results
    assert set(results.values()) == {"finished"}, results
    # what the children wrote is whole lines of OTLP JSON, spans of the child included
    for kind in ("traces", "metrics", "logs"):
        lines = (tmp_path / f"guarded-{kind}.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line) for line in lines), kind
    child_spans = (tmp_path / "guarded-traces.jsonl").read_text().count('"name":"child"')
    assert child_spans == 2


def test_control_without_the_guard_the_children_block(tmp_path):
    results = _run(tmp_path, "control")
    assert set(results.values()) == {"blocked"}, results

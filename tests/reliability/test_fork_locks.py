"""A child forked while another thread holds one of mailscope's locks does not block on it.

In a pre-forking server the master's metric collection thread reads mailscope's
counters and histograms under their locks; a worker forked at that moment used
to inherit the lock held, and its first span or measurement then waited
forever. The script holds each lock in a thread (as the collection would),
forks, and in the child does what takes that lock, under an alarm: a child that
blocks is killed by SIGALRM instead of finishing.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.launcher import base_env, write_script

SCRIPT = r'''
import json, os, signal, threading
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from mailscope import _safety
from mailscope.histograms import HotHistogram
from mailscope.metrics import LabelCap, Tally
from mailscope.processors.slow import SlowStage
from mailscope.config import settings
from mailscope.instrumentation.queue.celery import CeleryTelemetry
from mailscope.instrumentation.queue.gauges import QueueGauges
from mailscope.metrics import Instruments

meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("t")
tally = Tally(meter, "t.count")
cap = LabelCap(10)
hist = HotHistogram(meter.create_histogram("t.hist"), (1.0, 2.0))
for _ in range(2):
    hist.record(0.5, {"k": "v"})
slow = SlowStage(settings())
# nothing listens on port 9: a collection fails fast and backs off, after taking the lock
gauges = QueueGauges(Instruments(meter=meter), ["*"], "redis://127.0.0.1:9/0")
celery = CeleryTelemetry(None, None)

cases = {
    "tally": (lambda: tally._lock, lambda: tally.add(1, {"a": "b"})),
    "label cap": (lambda: cap._lock, lambda: cap("new value")),
    "hot histogram": (lambda: hist._lock, lambda: (hist.record(0.5, {"k": "v"}), hist.flush())),
    "log once": (lambda: _safety._lock, lambda: _safety.log_once("child", "from the child")),
    "slow stage": (lambda: slow._lock, lambda: slow.baseline("email.send")),
    # the metric reader's thread holds it across a collection's Redis reads
    "queue gauges": (lambda: gauges._lock, lambda: gauges._read()),
    "celery telemetry": (lambda: celery._lock, lambda: celery._remember({}, "task-id", None)),
}
results = {}
for name, (lock_of, use) in cases.items():
    held, done = threading.Event(), threading.Event()

    def hold(lock=lock_of()):
        with lock:
            held.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        signal.alarm(3)
        use()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    done.set()
    holder.join()
    if os.WIFEXITED(status):
        results[name] = "finished" if os.WEXITSTATUS(status) == 0 else "raised"
    else:
        results[name] = "blocked"  # killed by the alarm
print(json.dumps(results))
'''


def test_a_forked_child_takes_every_lock_another_thread_held_at_the_fork(tmp_path):
    result = subprocess.run([sys.executable, str(write_script(tmp_path, SCRIPT))], env=base_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.splitlines()[-1])
    assert results == {name: "finished" for name in results} and len(results) == 7, results

"""A scaled-down newsletter pipeline as a script the tests run under `opentelemetry-instrument`.

    python pipeline_app.py REDIS_URL SMTP_PORT COUNT [--burst N] [--pace S]

Per email: render a Jinja2 template with the subscriber's context (template
instrumentor), LPUSH the job onto `email_queue` and BRPOP it back (queue
instrumentor), send it with smtplib over one kept connection (SMTP
instrumentor). `--burst N` adds N plain application spans (to overflow the
span queue), `--pace S` sleeps S seconds between emails (a long-running
service), `--failing-lookups` adds per email an application span whose lookup
fails and is handled (so stages that read only failures see one per email). The last stdout line is `result {json}`: every email's outcome as the
app saw it, plus what the app can see of the span queue. The same script runs
uninstrumented to give the reference results.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.launcher import INSTRUMENT, REPO

PIPELINE_APP = r'''
import hashlib, json, smtplib, sys, time
from email.message import EmailMessage

import redis
from jinja2 import DictLoader, Environment
from opentelemetry import trace

redis_url, smtp_port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
burst = int(sys.argv[sys.argv.index("--burst") + 1]) if "--burst" in sys.argv else 0
pace = float(sys.argv[sys.argv.index("--pace") + 1]) if "--pace" in sys.argv else 0.0
failing_lookups = "--failing-lookups" in sys.argv

env = Environment(loader=DictLoader({"digest.html": "Hello {{ name }}, {{ items|length }} picks: {{ items|join(', ') }}"}))
r = redis.Redis.from_url(redis_url)
r.delete("email_queue")
smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
outcomes = []
tracer = trace.get_tracer("pipeline.app")
for i in range(count):
    to = f"reader{i}@mail{i % 7}.example.com"
    body = env.get_template("digest.html").render(name=f"Reader {i}", items=["tea", "mugs", str(i)])
    if failing_lookups:
        try:
            with tracer.start_as_current_span("profile.lookup"):
                {}["profile"]  # a cache miss the app handles
        except KeyError:
            pass
    r.lpush("email_queue", json.dumps({"to": to, "body": body, "n": i}))
    job = json.loads(r.brpop(["email_queue"], timeout=5)[1])
    msg = EmailMessage()
    msg["From"] = "news@shop.example"
    msg["To"] = job["to"]
    msg["Subject"] = f"digest {job['n']}"
    msg["Message-ID"] = f"<digest-{job['n']}@shop.example>"
    msg.set_content(job["body"])
    try:
        refused = smtp.send_message(msg)
        outcomes.append(["sent", job["n"], sorted(refused), hashlib.sha256(msg.as_bytes()).hexdigest()[:16]])
    except smtplib.SMTPException as exc:
        outcomes.append(["error", job["n"], type(exc).__name__, str(exc)])
    if pace:
        time.sleep(pace)
for _ in range(burst):
    with tracer.start_as_current_span("burst"):
        pass
smtp.quit()

queue = {}
provider = trace.get_tracer_provider()
for processor in getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ()):
    downstream = getattr(processor, "downstream", None) or getattr(processor, "_downstream", None)
    inner = getattr(downstream, "_batch_processor", None)
    if inner is not None:
        queue = {"len": len(inner._queue), "maxlen": inner._queue.maxlen}
print("result " + json.dumps({"outcomes": outcomes, "queue": queue}), flush=True)
'''


def write_pipeline_app(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline_app.py"
    path.write_text(PIPELINE_APP)
    return path


def run_app(script: Path, env: dict, *args, instrument: bool = True, timeout: float = 120):
    cmd = ([INSTRUMENT] if instrument else []) + [sys.executable, str(script), *map(str, args)]
    return subprocess.run(cmd, env=env, cwd=str(script.parent), capture_output=True, text=True, timeout=timeout)


def result_of(completed) -> dict:
    import json

    lines = [line for line in completed.stdout.splitlines() if line.startswith("result ")]
    assert lines, (completed.returncode, completed.stdout[-2000:], completed.stderr[-4000:])
    return json.loads(lines[-1][len("result "):])


__all__ = ["REPO", "write_pipeline_app", "run_app", "result_of"]


# Runs the pipeline app with one mailscope function replaced by one that raises
# (RELIABILITY_FAULT=module:attr or module:Class.method), after the launcher has
# instrumented the process. Prints `fault-hits N` so a test knows the fault fired.
FAULTY_APP = r'''
import importlib, os, runpy, sys

module_name, _, target = os.environ["RELIABILITY_FAULT"].partition(":")
owner = importlib.import_module(module_name)
*path, name = target.split(".")
for part in path:
    owner = getattr(owner, part)
original = getattr(owner, name)
hits = [0]

def broken(*args, **kwargs):
    hits[0] += 1
    raise RuntimeError("injected fault in " + target)

setattr(owner, name, broken)
sys.argv = [sys.argv[0].replace("faulty_app.py", "pipeline_app.py")] + sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("fault-hits", hits[0], flush=True)
'''


def write_faulty_app(tmp_path: Path) -> Path:
    write_pipeline_app(tmp_path)
    path = tmp_path / "faulty_app.py"
    path.write_text(FAULTY_APP)
    return path

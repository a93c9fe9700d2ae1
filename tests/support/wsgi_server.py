"""A WSGI app served by a real server (gunicorn, one sync worker) under `opentelemetry-instrument`.

    with serve_wsgi(app_dir, "module:app", env) as served:
        urllib.request.urlopen(served.base + "/path")
    served.output  # what gunicorn and the app printed, once stopped

gunicorn runs as users run it under the launcher: the master is instrumented and
forks its worker. `wait_for_spans(path, predicate)` polls an OTLP JSON traces file
until the spans a test needs have been exported (the worker exports on its own
schedule), so no test depends on how long that takes.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import INSTRUMENT, VENV_BIN, free_port


@contextlib.contextmanager
def serve_wsgi(app_dir: Path, target: str, env: dict, startup_timeout: float = 60.0):
    port = free_port()
    env = dict(env, PYTHONPATH=f"{app_dir}:{env.get('PYTHONPATH', '')}")
    process = subprocess.Popen(
        [INSTRUMENT, str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--no-control-socket", "--graceful-timeout", "10", target],
        cwd=str(app_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = SimpleNamespace(base=f"http://127.0.0.1:{port}", output="")
    base = served.base
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(base + "/__not_a_page__", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # the app answered (404): it is up
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + (process.communicate()[0] or ""))
                time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        try:
            served.output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            served.output = process.communicate()[0]


def wait_for_spans(path: Path, predicate, timeout: float = 60.0) -> list:
    """The spans of `path` once `predicate(spans)` holds (or the last read, when it never does)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = read_spans(str(path)) if path.exists() else []
        if predicate(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)

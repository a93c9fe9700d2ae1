"""Real Go services for tests: mailscope's Collector build and Jaeger v2, as `make binaries` builds them.

    agent = GoService("agent", [collector_binary(), "--config", shipped, "--config", overlay],
                      env={"OTLP_FORWARD_ENDPOINT": "127.0.0.1:4317"}, workdir=tmp,
                      ready_url="http://127.0.0.1:13133/")
    agent.stop(); agent.start()               # a restart keeps the same ports and log file
    scrape_totals(f"http://127.0.0.1:{port}/metrics")  # {metric name: sum over its series}

A missing binary is an error, not a skip: `make test` builds both before running pytest.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"


class ServiceError(RuntimeError):
    pass


def _binary(name: str) -> str:
    path = BUILD / name
    if not os.access(path, os.X_OK):
        raise ServiceError(f"{path} is missing: build it with `make binaries` (make test does)")
    return str(path)


def collector_binary() -> str:
    return _binary("otelcol-mailscope")


def jaeger_binary() -> str:
    return _binary("jaeger")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


class GoService:
    """One child process whose output goes to `workdir/<name>.log`; ready when `ready_url` answers 2xx."""

    def __init__(self, name: str, argv: list[str], *, env: dict, workdir: Path, ready_url: str,
                 start_timeout: float = 60.0):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self.log_path = Path(workdir) / f"{name}.log"
        self.ready_url = ready_url
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while not http_ok(self.ready_url):
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"{self.name} not ready at {self.ready_url} in {self.start_timeout}s:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (the Collector shuts down its pipelines), SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def scrape(url: str) -> list[tuple[str, dict, float]]:
    """The samples of a Prometheus text endpoint: (name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8", "replace")
    return [(s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def scrape_totals(url: str) -> dict[str, float]:
    """{metric name: sum of its samples} of a Prometheus text endpoint (a Collector's own :8888)."""
    totals: dict[str, float] = {}
    for name, _labels, value in scrape(url):
        totals[name] = totals.get(name, 0.0) + value
    return totals

"""A real Prometheus (Debian's `prometheus` binary) for tests, on a free loopback port.

    with PrometheusServer(tmp_path, scrape_targets={"newsletter-worker": ["127.0.0.1:9464"]},
                          scrape_interval="1s", rule_files=[...]) as prom:
        prom.query('up')                   # instant query -> list of result dicts
        prom.query_range('up', start, end, step="1s")
        prom.wait_for(lambda: prom.query('up == 1'), timeout=30)

The config and TSDB live in a temp dir. The server is stopped (SIGTERM, then SIGKILL) on exit.
Tests that need it skip with a clear reason when the binary is missing (`make test` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.launcher import free_port


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def scrape_config_yaml(scrape_targets: dict, scrape_interval: str, rule_files=()) -> str:
    """A prometheus.yml (as text) scraping `{job: [host:port, ...]}`."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  scrape_timeout: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
    ]
    if rule_files:
        lines.append("rule_files:")
        lines += [f"  - {json.dumps(str(p))}" for p in rule_files]
    lines.append("scrape_configs:")
    for job, targets in scrape_targets.items():
        lines += [
            f"  - job_name: {json.dumps(job)}",
            "    static_configs:",
            f"      - targets: {json.dumps(list(targets))}",
        ]
    return "\n".join(lines) + "\n"


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    def __init__(self, workdir: Path, *, scrape_targets: dict | None = None, scrape_interval: str = "1s",
                 rule_files=(), config_text: str | None = None, start_timeout: float = 30.0):
        exe = prometheus_binary()
        if exe is None:
            raise PrometheusError("the prometheus binary is not installed (apt-get install prometheus)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(
            config_text if config_text is not None else scrape_config_yaml(scrape_targets or {}, scrape_interval, rule_files)
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "prometheus.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise

    # -- lifecycle --------------------------------------------------------------------------
    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise PrometheusError(f"prometheus not ready after {timeout}s: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP API ---------------------------------------------------------------------------
    def api(self, path: str, **params):
        query = urllib.parse.urlencode([(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])])
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list:
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)["result"]

    def label_values(self, label: str, match: str | None = None) -> list:
        params = {"match[]": match} if match else {}
        return self.api(f"label/{label}/values", **params)

    def rules(self) -> list:
        return self.api("rules")["groups"]

    def wait_for(self, predicate, timeout: float = 30.0, interval: float = 0.25):
        """Poll `predicate()` until it returns something truthy; returns it (or raises)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise PrometheusError(f"condition not met within {timeout}s (last: {last!r})")

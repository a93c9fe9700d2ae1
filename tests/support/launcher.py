"""Run Python code the way users do: under the real `opentelemetry-instrument` launcher."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import textwrap
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
INSTRUMENT = str(VENV_BIN / "opentelemetry-instrument")
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port for a server that a child process (or a later bind) will listen on.

    Not `bind(0)`: that hands out a port from the kernel's ephemeral range and forgets it, so
    between this call and the server's own bind, any outgoing connection on the host (an OTLP
    exporter, a Redis client, a Collector forwarding) may take it as its source port, and a later
    `bind(0)` may hand out the same number again. Both happened in CI ("bind: address already in
    use" from Jaeger). The port comes from outside the ephemeral range instead, is never handed
    out twice in a process, and is reserved host-wide for this process's lifetime by a lock on
    one byte of a shared file, so concurrent test runs on one host don't pick it either."""
    return _PORTS.take()


class _PortPool:
    LOCK_FILE = Path(tempfile.gettempdir()) / "mailscope-test-ports.lock"

    def __init__(self):
        self._given: set[int] = set()
        self._guard = threading.Lock()
        self._fd: int | None = None
        self._rng = random.Random(int.from_bytes(os.urandom(8), "little"))  # never the app's `random`
        self.low, self.high = _outside_ephemeral_range()
        self._reserved = _reserved_ports()

    def take(self) -> int:
        with self._guard:
            if self._fd is None:
                try:
                    self._fd = os.open(self.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
                except OSError:  # someone else's file: reserve within this process only
                    self._fd = -1
            for _ in range(4 * (self.high - self.low)):
                port = self._rng.randint(self.low, self.high)
                if port in self._given or port in self._reserved:
                    continue
                self._given.add(port)  # tried once, never again: taken by us or by someone else
                if self._reserve(port) and _bindable(port):
                    return port
            raise RuntimeError(f"no free loopback port in {self.low}-{self.high}")

    def _reserve(self, port: int) -> bool:
        if self._fd < 0:
            return True
        try:  # POSIX record lock on byte `port`: held until this process exits
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
            return True
        except OSError:
            return False


def _ip_local(name: str) -> str:
    try:
        return Path(f"/proc/sys/net/ipv4/{name}").read_text()
    except OSError:
        return ""


def _outside_ephemeral_range() -> tuple[int, int]:
    """The larger stretch below or above the kernel's source-port range (below: from 10000, or from
    1024 when the range starts too low to leave 1000 ports above 10000)."""
    fields = _ip_local("ip_local_port_range").split()
    low, high = (int(fields[0]), int(fields[1])) if len(fields) == 2 else (32768, 60999)
    below, above = (10000, low - 1), (high + 1, 65535)
    if below[1] - below[0] < 1000:  # a range starting low: anything under it above the well-known ports
        below = (1024, low - 1)
    best = max(below, above, key=lambda r: r[1] - r[0])
    if best[1] - best[0] < 1000:
        raise RuntimeError(f"the ephemeral port range {low}-{high} leaves no room for test servers")
    return best


def _reserved_ports() -> set[int]:
    """ip_local_reserved_ports: ports the host has set aside for its own services."""
    reserved: set[int] = set()
    for part in _ip_local("ip_local_reserved_ports").strip().split(","):
        if "-" in part:
            a, b = part.split("-")
            reserved.update(range(int(a), int(b) + 1))
        elif part.strip():
            reserved.add(int(part))
    return reserved


def _bindable(port: int) -> bool:
    """Nothing listens on it and no connection uses it (no SO_REUSEADDR: stricter than servers)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


_PORTS = _PortPool()


def base_env(**extra) -> dict:
    """A clean environment: no inherited OTEL_/MAILSCOPE_ settings, quick exports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": "mailscope-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "PYTHONUNBUFFERED": "1",
            # the repo root, so test apps can import tests.* helpers and examples
            "PYTHONPATH": str(REPO),
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def file_export_env(traces: Path, metrics: Path, **extra) -> dict:
    """`base_env` with traces and metrics exported to the OTLP JSON files `traces` and `metrics`."""
    return base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="otlp_json_file",
        MAILSCOPE_TRACES_FILE=traces,
        MAILSCOPE_METRICS_FILE=metrics,
        **extra,
    )


def write_script(tmp_path: Path, source: str, name: str = "app.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def run_instrumented(script: Path, env: dict, *args, timeout: float = 120, instrument: bool = True, cwd=None):
    """Run `script` under opentelemetry-instrument (or plain python); return CompletedProcess."""
    cmd = ([INSTRUMENT] if instrument else []) + [sys.executable, str(script), *map(str, args)]
    return subprocess.run(
        cmd, env=env, cwd=str(cwd or script.parent), capture_output=True, text=True, timeout=timeout
    )


def popen_instrumented(script: Path, env: dict, *args, instrument: bool = True, cwd=None, **kwargs):
    cmd = ([INSTRUMENT] if instrument else []) + [sys.executable, str(script), *map(str, args)]
    return subprocess.Popen(cmd, env=env, cwd=str(cwd or script.parent), text=True, **kwargs)

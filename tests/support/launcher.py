"""Run Python code the way users do: under the real `opentelemetry-instrument` launcher."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
INSTRUMENT = str(VENV_BIN / "opentelemetry-instrument")
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

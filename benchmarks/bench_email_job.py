"""End to end: the client's cost per email of a realistic job, with and without telemetry.

The job (benchmarks/email_job.py) renders a Jinja2 newsletter, pushes it through
a real redis-server list (LPUSH, BRPOP) and sends it with smtplib over one
kept-open connection to an aiosmtpd sink in another process. Three modes, each
run in a fresh subprocess, interleaved (none, upstream, mailscope; repeat), and
the median of the repeats taken:
- no telemetry;
- upstream: the SDK set up as opentelemetry-distro's configurator does, with the
  upstream jinja2 and redis instrumentors, OTLP JSON to /dev/null;
- upstream_spans (a reference, not a goal): upstream, and the job wraps its steps in bare
  SDK spans like the four that mailscope adds to upstream's four per email: the share of
  measure 4 that is the price of that many spans, whoever makes them;
- mailscope: `opentelemetry-instrument` with mailscope, OTLP JSON to /dev/null, and of
  the upstream instrumentors the same two (jinja2, redis): the launcher loads every
  instrumentor installed, and this venv holds the test dependencies (Celery, SQLAlchemy,
  Django, Flask, botocore, ...), whose imports alone would triple the objects the garbage
  collector walks; an app doing this job would not have them, so the others are listed in
  OTEL_PYTHON_DISABLED_INSTRUMENTATIONS. mailscope's own instrumentors all stay on.

The measure is the job process's CPU time per email (all its threads, so work
moved to the export threads still counts), with wall time per email beside it.
Servers run in their own processes, so their CPU never counts.

To see where the time goes, profile one mode by hand, for example:
    opentelemetry-instrument python -m cProfile -s tottime -m benchmarks.email_job mailscope URL PORT 2000
(with the environment `job_env` builds).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Ratio, Section, ServerProcess

REPO = Path(__file__).resolve().parents[1]
MODES = ("none", "upstream", "mailscope", "upstream_spans")


UPSTREAM_INSTRUMENTORS = ("jinja2", "redis")


def other_instrumentors() -> str:
    """The installed upstream instrumentors besides jinja2 and redis (see the module docstring)."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    return ",".join(sorted(n for n in names if not n.startswith("mailscope") and n not in UPSTREAM_INSTRUMENTORS))


def job_env(mode: str) -> dict:
    from tests.support.launcher import base_env

    extra = {}
    if mode == "mailscope":
        extra = dict(
            OTEL_TRACES_EXPORTER="otlp_json_file", OTEL_METRICS_EXPORTER="otlp_json_file", OTEL_LOGS_EXPORTER="none",
            MAILSCOPE_TRACES_FILE=os.devnull, MAILSCOPE_METRICS_FILE=os.devnull,
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=other_instrumentors(),
        )
    # the SDK's own defaults, not the quick ones tests use
    return base_env(OTEL_BSP_SCHEDULE_DELAY="5000", OTEL_METRIC_EXPORT_INTERVAL="60000", **extra)


def job_command(mode: str, redis_url: str, smtp_port: int, emails: int) -> list[str]:
    from tests.support.launcher import INSTRUMENT

    launcher = [INSTRUMENT] if mode == "mailscope" else []
    return [*launcher, sys.executable, "-m", "benchmarks.email_job", mode, redis_url, str(smtp_port), str(emails)]


def run_job(mode: str, redis_url: str, smtp_port: int, emails: int) -> dict:
    done = subprocess.run(
        job_command(mode, redis_url, smtp_port, emails), env=job_env(mode), cwd=str(REPO),
        capture_output=True, text=True, timeout=600,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"email job ({mode}) failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def run(quick: bool) -> Section:
    from tests.support.redis_server import RedisServer

    emails, repeats = (200, 3) if quick else (1000, 7)
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    wall: dict[str, list[float]] = {mode: [] for mode in MODES}
    smtp = ServerProcess("tests.support.smtp_server", name="SMTP server")
    try:
        with RedisServer() as redis:
            for _ in range(repeats):
                for mode in MODES:
                    result = run_job(mode, redis.url, smtp.port, emails)
                    cpu[mode].append(result["cpu_per_email"])
                    wall[mode].append(result["wall_per_email"])
    finally:
        smtp.stop()
    cpu_m = {mode: statistics.median(v) for mode, v in cpu.items()}
    wall_m = {mode: statistics.median(v) for mode, v in wall.items()}
    section = Section(f"email job end to end: {emails} emails per run x {repeats} interleaved runs per mode, medians")
    for mode in MODES:
        section.rows.append((f"{mode}: process CPU per email", cpu_m[mode]))
    for mode in MODES:
        section.rows.append((f"{mode}: wall per email", wall_m[mode]))
    section.ratios = [
        Ratio("(4) CPU/email mailscope vs upstream", cpu_m["mailscope"] / cpu_m["upstream"], "<= 1.10"),
        Ratio("CPU/email mailscope vs no telemetry", cpu_m["mailscope"] / cpu_m["none"]),
        Ratio("CPU/email upstream vs no telemetry", cpu_m["upstream"] / cpu_m["none"]),
        Ratio("wall/email mailscope vs upstream", wall_m["mailscope"] / wall_m["upstream"]),
        Ratio("floor of (4): upstream + 4 bare spans vs upstream", cpu_m["upstream_spans"] / cpu_m["upstream"]),
        Ratio("CPU/email mailscope vs upstream + 4 bare spans", cpu_m["mailscope"] / cpu_m["upstream_spans"]),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    section.notes.append(
        "CPU per email (us), every run: "
        + "; ".join(f"{mode} " + " ".join(f"{v * 1e6:.0f}" for v in cpu[mode]) for mode in MODES)
    )
    section.notes.append(f"1-min load average at the end {load:.2f} on {os.cpu_count()} CPUs")
    return section

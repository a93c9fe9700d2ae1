"""`mailscope report` at scale: time and peak RSS on generated OTLP JSON files.

Each run is a fresh `python -m mailscope report --json` subprocess (the CLI as
users run it) whose peak resident memory is read from getrusage; files come
from tests/support/otlp_gen.py (email journeys with errors, slow spans, memory
attributes). Rows are seconds per span. Ratios:
  - peak RSS on the large file / on a file a quarter its size: streaming means
    memory does not follow the input (goal <= 1.25);
  - report time / the time to only json.loads the same lines (how much the
    aggregation costs over bare parsing; informational).
The full run uses 1,000,000 spans; --quick uses 100,000.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Ratio, Section

ROOT = Path(__file__).resolve().parents[1]
PEAK = """
import resource, sys
from mailscope.cli import main
code = main(["report", "--json", *sys.argv[1:]])
sys.stderr.write("peak_kib=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def _report(path: Path) -> tuple[float, float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_"))}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    peak_mib = int(result.stderr.rsplit("peak_kib=", 1)[1].split()[0]) / 1024
    return elapsed, peak_mib, json.loads(result.stdout)


def _parse_only(path: Path) -> float:
    started = time.perf_counter()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            json.loads(line)
    return time.perf_counter() - started


def run(quick: bool) -> Section:
    sys.path.insert(0, str(ROOT))
    from tests.support.otlp_gen import write_trace_file

    large_n = 100_000 if quick else 1_000_000
    small_n = large_n // 4
    section = Section(f"mailscope report: streaming {large_n:,} spans")
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small.jsonl", Path(tmp) / "large.jsonl"
        write_trace_file(small, small_n, seed=1, leak_bytes_per_send=4096)
        info = write_trace_file(large, large_n, seed=2, leak_bytes_per_send=4096)
        t_small, peak_small, r_small = _report(small)
        t_large, peak_large, r_large = _report(large)
        t_parse = _parse_only(large)
        size_mib = large.stat().st_size / (1024 * 1024)
    spans = r_large["summary"]["spans"]
    assert spans == info["spans"], (spans, info)
    section.rows.append((f"report, {r_small['summary']['spans']:,} spans (per span)", t_small / r_small["summary"]["spans"]))
    section.rows.append((f"report, {spans:,} spans (per span)", t_large / spans))
    section.rows.append((f"json.loads only, {spans:,} spans (per span)", t_parse / spans))
    section.ratios.append(Ratio("peak RSS large / small file", peak_large / peak_small, "<= 1.25"))
    section.ratios.append(Ratio("report time / json.loads-only time", t_large / t_parse))
    section.notes.append(f"{spans:,} spans ({size_mib:.0f} MiB, {r_large['summary']['traces']:,} traces"
                         f"{' estimated' if r_large['summary']['traces_estimated'] else ''}): "
                         f"{t_large:.1f} s wall, peak RSS {peak_large:.1f} MiB "
                         f"(small file: {t_small:.1f} s, {peak_small:.1f} MiB)")
    return section

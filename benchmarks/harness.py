"""The benchmark harness: side-by-side cases, medians over repeats, results as ratios.

This machine is noisy, so absolute times mean little; cases are run interleaved
(round-robin within every repeat) so a slow patch hits all of them alike, and
only ratios between cases measured in the same run are reported.

A benchmark module is `benchmarks/bench_<topic>.py` with
    def run(quick: bool) -> Section
`python -m benchmarks [--quick] [topic ...]` discovers and runs them.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Ratio:
    name: str
    value: float
    goal: str = ""  # e.g. "<= 1.20"; empty when informational

    def met(self) -> bool | None:
        if not self.goal:
            return None
        op, _, limit = self.goal.partition(" ")
        limit_value = float(limit)
        return self.value <= limit_value if op == "<=" else self.value >= limit_value


@dataclass
class Section:
    title: str
    rows: list[tuple[str, float]] = field(default_factory=list)  # (case, median seconds per op)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def interleaved(
    cases: dict[str, Callable[[int], None]],
    ops: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Run each `case(ops)` once per repeat, round-robin; return median seconds per op by case.

    A case callable performs `ops` operations itself (so loop overhead is its own).
    `clock` is wall time by default. CPU-bound cases may pass `CPU_CLOCK` (CPU
    time of this process, all its threads): time the machine spends on other
    processes then stops counting, which steadies ratios on a shared machine.
    Cases that wait on I/O or on another process must keep the wall clock.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for name, case in cases.items():  # warm-up
        case(max(1, ops // 10))
    for _ in range(repeats):
        for name, case in cases.items():
            gc.collect()
            started = clock()
            case(ops)
            samples[name].append((clock() - started) / ops)
    return {name: statistics.median(values) for name, values in samples.items()}


CPU_CLOCK = time.process_time


def format_section(section: Section) -> str:
    lines = [f"== {section.title} =="]
    for case, seconds in section.rows:
        lines.append(f"  {case:<58} {seconds * 1e6:10.2f} us/op")
    for ratio in section.ratios:
        verdict = {None: "", True: "  [goal met]", False: "  [goal MISSED]"}[ratio.met()]
        goal = f"  (goal {ratio.goal})" if ratio.goal else ""
        lines.append(f"  ratio {ratio.name:<52} {ratio.value:8.3f}{goal}{verdict}")
    for note in section.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


class DropExporter:
    """A span exporter that accepts and discards everything (the cost of export is not ours)."""

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def sdk_providers(with_pipeline: bool = False, pipeline=None, max_queue_size: int = 1 << 17):
    """(tracer_provider, meter_provider) as production would have them, minus the network.

    The tracer provider has a BatchSpanProcessor over a DropExporter; its queue is deep
    enough that no span is dropped (a dropped span costs less than an exported one and
    would flatter whichever case outruns the export thread). With `with_pipeline` (or
    an explicit `pipeline`) the batch processor sits behind mailscope's EnrichingSpanProcessor
    (which also runs the stages' start hooks), as the configurator wires them. The meter provider has
    an in-memory reader, so metric records cost what they cost in production.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider(shutdown_on_exit=False)
    batch = BatchSpanProcessor(DropExporter(), max_queue_size=max_queue_size)
    if with_pipeline or pipeline is not None:
        from mailscope.processors.chain import build_pipeline
        from mailscope.processors.pipeline import EnrichingSpanProcessor

        pipeline = pipeline or build_pipeline()
        tracer_provider.add_span_processor(EnrichingSpanProcessor(pipeline, batch, start_hooks=True))
    else:
        tracer_provider.add_span_processor(batch)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    return tracer_provider, meter_provider


class ServerProcess:
    """A test server in its own process (`python -m MODULE ARGS...` from the repo root).

    The module prints `ready PORT` once it listens and stops when its stdin closes,
    so the server's CPU time never counts as the client's.
    """

    def __init__(self, module: str, *args: str, name: str = "server"):
        import subprocess
        import sys
        from pathlib import Path

        self._subprocess = subprocess
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=str(Path(__file__).resolve().parents[1]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except self._subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

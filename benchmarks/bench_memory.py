"""What the memory stage's readings cost, and what MAILSCOPE_MEMORY=tracemalloc costs the app.

Rows: one RSS reading through the kept-open /proc/self/statm (processors/rss.py),
through psutil with a kept Process, and with a new psutil.Process() each time;
then an allocation-heavy piece of app work (building the personalization
contexts and rendered bodies of a small batch, as a mail service does) with
tracemalloc off and on.
"""

from __future__ import annotations

import tracemalloc

from benchmarks.harness import CPU_CLOCK, Ratio, Section, interleaved


def _app_work():
    """Allocation-heavy, like building a batch of personalized messages."""
    batch = []
    for i in range(50):
        context = {"first_name": f"Reader {i}", "items": [{"sku": n, "qty": n % 3 + 1} for n in range(10)]}
        lines = [f"{item['sku']:>6} x{item['qty']}" for item in context["items"]]
        batch.append("Hello " + context["first_name"] + "\n" + "\n".join(lines))
    return len(batch)


def run(quick: bool) -> Section:
    import psutil

    from mailscope.processors.rss import RssReader

    ops, repeats = (2000, 3) if quick else (20000, 7)
    statm = RssReader()
    fallback = RssReader(statm_path="/nonexistent/statm")
    kept = psutil.Process()

    def loop(read):
        def case(n):
            for _ in range(n):
                read()

        return case

    reads = interleaved(
        {
            "RSS read: /proc/self/statm, kept fd + pread": loop(statm.read),
            "RSS read: psutil, kept Process": loop(kept.memory_info),
            "RSS read: psutil.Process().memory_info()": loop(lambda: psutil.Process().memory_info()),
        },
        ops,
        repeats,
        clock=CPU_CLOCK,
    )

    work_ops = max(20, ops // 100)
    was_tracing = tracemalloc.is_tracing()

    def work(tracing: bool):
        def case(n):
            if tracing:
                tracemalloc.start()
            try:
                for _ in range(n):
                    _app_work()
            finally:
                if tracing and not was_tracing:
                    tracemalloc.stop()

        return case

    app = interleaved(
        {"app work, tracemalloc off": work(False), "app work, tracemalloc on": work(True)},
        work_ops,
        repeats,
        clock=CPU_CLOCK,
    )
    statm.close()
    rows = list(reads.items()) + list(app.items())
    keys = list(reads)
    return Section(
        title="memory stage: cost of a reading, cost of tracemalloc to the app",
        rows=rows,
        ratios=[
            Ratio("psutil kept / statm", reads[keys[1]] / reads[keys[0]]),
            Ratio("new psutil.Process() / statm", reads[keys[2]] / reads[keys[0]]),
            Ratio("app work with tracemalloc / without", app["app work, tracemalloc on"] / app["app work, tracemalloc off"]),
        ],
        notes=[f"reader source here: {statm.source} (fallback used: {fallback.source})"],
    )

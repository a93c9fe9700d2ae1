"""Drive N spans through mailscope's enrichment pipeline with no exporter; report RSS and table sizes.

    python -m tests.reliability.million_spans N [--names 10000] [--messages 100000]

Run as its own process so its resident memory is its own. The spans are real SDK
spans from a TracerProvider whose only processors are mailscope's StartProcessor
and EnrichingSpanProcessor(pipeline, downstream=None): every stage runs (and the
metrics they record go to an SDK MeterProvider with an in-memory reader), nothing
is exported. One span in eight fails with one of `--messages` distinct error
messages (distinct words, so they stay distinct patterns after masking); span
names cycle through `--names` distinct values; one in ten is a mailscope `send`
operation. Prints one JSON line: RSS after the warm-up share and at the end, and
the size of every per-process table next to its cap.
"""

from __future__ import annotations

import json
import sys


def words(count: int) -> list[str]:
    # pronounceable, letters only, all distinct: consonant-vowel syllables
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]  # 70
    out = []
    for a in syllables:
        for b in syllables:
            out.append(a + b + "r")
            if len(out) == count:
                return out
    return out


def main(argv: list[str]) -> int:
    total = int(argv[0])
    names = int(argv[argv.index("--names") + 1]) if "--names" in argv else 10_000
    messages = int(argv[argv.index("--messages") + 1]) if "--messages" in argv else 100_000

    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Status, StatusCode

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    from mailscope import _safety
    from mailscope import attributes as attr
    from mailscope.config import settings
    from mailscope.processors import error_patterns, errors
    from mailscope.processors.chain import build_stages
    from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
    from mailscope.processors.rss import RssReader

    config = settings()
    stages = build_stages(config)
    pipeline = Pipeline(stages)
    provider = TracerProvider()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, None))
    tracer = provider.get_tracer("load")

    vocabulary = words(400)
    second = words(250 + 400)[400:]
    texts = [f"cannot reach {vocabulary[i % 400]} service behind {second[i // 400 % 250]} gateway"
             for i in range(messages)]
    span_names = [f"job.{vocabulary[i % 400]}.{second[i // 400 % 250]}" for i in range(names)]
    send_attrs = {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: "smtp"}
    error = StatusCode.ERROR

    rss = RssReader()
    warm = total // 5
    rss_warm = None
    start = provider.get_tracer("load").start_span
    for i in range(total):
        if i == warm:
            reader.get_metrics_data()
            rss_warm = rss.read()
        span = start(span_names[i % names], attributes=send_attrs if i % 10 == 0 else None)
        if i % 8 == 1:
            message = texts[(i // 8) % messages]
            span.record_exception(ConnectionError(message))
            span.set_status(Status(error, message))
        span.end()
        if i % 100_000 == 0:
            reader.get_metrics_data()  # a periodic collection, as an exporting reader would do
    data = reader.get_metrics_data()
    rss_end = rss.read()

    points = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = len(metric.data.data_points)
    by_name = {getattr(s, "name", type(s).__name__): s for s in stages}
    slow, errs, memory = by_name["slow"], by_name["errors"], by_name.get("memory")
    report = {
        "spans": total,
        "rss_warm": rss_warm,
        "rss_end": rss_end,
        "tables": {
            "slow.names": [slow.tracked_names(), slow.max_names],
            "slow.labels": [len(slow._labels), slow._labels.limit],
            "errors.occurrences": [len(errs.table), errs.table.capacity],
            "errors.labels": [len(errs.labels), errs.labels.limit],
            "memory.labels": [len(memory._labels), memory._labels.limit] if memory else None,
            "memory.open": [len(memory._open), memory.max_open] if memory else None,
            "errors.classify_cache": [len(errors._cache), errors._CACHE_MAX],
            "errors.message_cache": [len(errors._messages), errors._MESSAGE_CACHE_MAX],
            "patterns.token_cache": [len(error_patterns._token_cache), error_patterns._CACHE_MAX],
            "safety.log_once": [len(_safety._seen), _safety._MAX_KEYS],
        },
        "metric_points": points,
        "config": {"max_tracked_names": config.max_tracked_names, "error_patterns_max": config.error_patterns_max},
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

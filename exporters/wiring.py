"""Export wiring: the processor factory the SDK configurator receives.

`enriching_batch_processor(pipeline)` returns the `export_span_processor`
factory: each exporter gets a BatchSpanProcessor wrapped by the enrichment
pipeline, so what leaves the process is the enriched (and redacted) copy.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.export import BatchSpanProcessor

from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline


def enriching_batch_processor(pipeline: Pipeline):
    def factory(exporter):
        return EnrichingSpanProcessor(pipeline, BatchSpanProcessor(exporter))

    return factory

"""The enrichment pipeline and the two SpanProcessors that run it.

A *stage* is a small callable with one job: `stage(draft)` reads a finished span
through a `SpanDraft` and may write analysis attributes to it. A stage may also
have `on_start(span)`, called while the span is still live (memory baselines
need that). The chain itself is composed in one visible place,
`mailscope.processors.chain.build_stages`.

`Pipeline.enrich(span)` runs every stage on one span and returns what should be
exported: the original span when nothing changed, an enriched copy otherwise.
Each stage runs under its own guard: a stage that raises is logged once and the
chain goes on, so one broken stage costs its own attributes and nothing else.
A stage marked `privacy_critical` (redaction) is different: if it fails the span
is dropped rather than exported unredacted.

`EnrichingSpanProcessor` wraps an exporting processor (normally the SDK's
BatchSpanProcessor): it hands the enriched copy on. `StartProcessor` runs the
stages' `on_start` hooks once per span, however many exporters there are.
"""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from mailscope._safety import internal_error
from mailscope.processors.draft import SpanDraft


class Pipeline:
    def __init__(self, stages):
        self.stages = tuple(stages)
        self.start_hooks = tuple(s.on_start for s in self.stages if getattr(s, "on_start", None))
        self._local = threading.local()
        self.wrappers = 0  # EnrichingSpanProcessors sharing this pipeline

    def enrich(self, span: ReadableSpan) -> ReadableSpan | None:
        """Return the span to export (possibly a copy), or None to drop it."""
        if self.wrappers > 1:
            # With several exporters the SDK hands the same span to each wrapper in
            # turn, on this thread: enrich once and reuse the result.
            local = self._local
            if getattr(local, "span", None) is span:
                return local.result
            result = self._run(span)
            local.span = span
            local.result = result
            return result
        return self._run(span)

    def _run(self, span: ReadableSpan) -> ReadableSpan | None:
        draft = SpanDraft(span)
        result = span
        for stage in self.stages:
            try:
                stage(draft)
            except Exception:
                internal_error(f"stage {getattr(stage, 'name', type(stage).__name__)}")
                if getattr(stage, "privacy_critical", False):
                    result = None
                    break
        else:
            try:
                result = draft.build()
            except Exception:
                internal_error("pipeline build")
                result = None if any(getattr(s, "privacy_critical", False) for s in self.stages) else span
        return result

    def on_start(self, span) -> None:
        for hook in self.start_hooks:
            try:
                hook(span)
            except Exception:
                internal_error(f"stage start hook {getattr(hook, '__qualname__', hook)}")

    def shutdown(self) -> None:
        for stage in self.stages:
            close = getattr(stage, "shutdown", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    internal_error("stage shutdown")


class StartProcessor(SpanProcessor):
    """Runs the stages' on_start hooks; registered once among the SDK's span_processors."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def on_start(self, span, parent_context=None) -> None:
        pipeline = self.pipeline
        hooks = pipeline.start_hooks
        if len(hooks) == 1:  # the common chain: only the memory stage has one
            hook = hooks[0]
            try:
                hook(span)
            except Exception:
                internal_error(f"stage start hook {getattr(hook, '__qualname__', hook)}")
            return
        pipeline.on_start(span)

    def on_end(self, span) -> None:
        pass

    def shutdown(self) -> None:
        self.pipeline.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EnrichingSpanProcessor(SpanProcessor):
    """Enrich each finished span, then hand the copy to `downstream` (or nowhere)."""

    def __init__(self, pipeline: Pipeline, downstream: SpanProcessor | None):
        self.pipeline = pipeline
        self.downstream = downstream
        pipeline.wrappers += 1

    def on_start(self, span, parent_context=None) -> None:
        if self.downstream is not None:
            self.downstream.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        enriched = self.pipeline.enrich(span)
        if enriched is not None and self.downstream is not None:
            self.downstream.on_end(enriched)

    def shutdown(self) -> None:
        if self.downstream is not None:
            self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self.downstream is not None:
            return self.downstream.force_flush(timeout_millis)
        return True

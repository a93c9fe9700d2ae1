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
is dropped rather than exported unredacted. A stage marked `failed_only` reads
failures only (status ERROR or an exception event): the pipeline skips it on a
span that has neither an ERROR status nor any event, without calling it.

`EnrichingSpanProcessor` wraps an exporting processor (normally the SDK's
BatchSpanProcessor): it hands the enriched copy on. The stages' `on_start` hooks
must run once per span, however many exporters there are: the SDK wiring lets
the first EnrichingSpanProcessor run them (`start_hooks=True`), which saves a
processor call per span; `StartProcessor` is the same job as a processor of its
own, for wiring by hand.
"""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from mailscope._safety import internal_error
from mailscope.processors.draft import SpanDraft


class Pipeline:
    def __init__(self, stages):
        self.stages = tuple(stages)
        # what runs on a span with neither an ERROR status nor any event (most spans)
        self.healthy_stages = tuple(s for s in self.stages if not getattr(s, "failed_only", False))
        self.start_hooks = tuple(s.on_start for s in self.stages if getattr(s, "on_start", None))
        self._local = threading.local()
        self.wrappers = 0  # EnrichingSpanProcessors sharing this pipeline
        self._start_hooks_claimed = False
        self._claim_lock = threading.Lock()

    def claim_start_hooks(self) -> bool:
        """True exactly once: for the processor that is to run the start hooks."""
        with self._claim_lock:
            claimed, self._start_hooks_claimed = self._start_hooks_claimed, True
            return not claimed

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
        for stage in self.stages if draft.may_have_failed else self.healthy_stages:
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


def _run_start_hooks(pipeline: Pipeline, span) -> None:
    hooks = pipeline.start_hooks
    if len(hooks) == 1:  # the common chain: only the memory stage has one
        hook = hooks[0]
        try:
            hook(span)
        except Exception:
            internal_error(f"stage start hook {getattr(hook, '__qualname__', hook)}")
    elif hooks:
        pipeline.on_start(span)


class StartProcessor(SpanProcessor):
    """Runs the stages' on_start hooks, as a span processor of its own."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def on_start(self, span, parent_context=None) -> None:
        _run_start_hooks(self.pipeline, span)

    def on_end(self, span) -> None:
        pass

    def shutdown(self) -> None:
        self.pipeline.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EnrichingSpanProcessor(SpanProcessor):
    """Enrich each finished span, then hand the copy to `downstream` (or nowhere).

    With `start_hooks=True` it also runs the stages' on_start hooks (give that to
    one wrapper per pipeline, or use a StartProcessor instead).
    """

    def __init__(self, pipeline: Pipeline, downstream: SpanProcessor | None, start_hooks: bool = False):
        self.pipeline = pipeline
        self.downstream = downstream
        self.start_hooks = start_hooks
        # the SDK's BatchSpanProcessor does nothing in on_start: skip the call
        self._forward_start = downstream is not None and type(downstream) is not BatchSpanProcessor
        pipeline.wrappers += 1

    def on_start(self, span, parent_context=None) -> None:
        if self.start_hooks:
            _run_start_hooks(self.pipeline, span)
        if self._forward_start:
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

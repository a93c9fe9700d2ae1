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

The fast path: most spans are healthy (no ERROR status, no event), have no link
and carry no address, and no stage writes to them. For those the pipeline makes
no draft: it asks each stage through `stage.quick(span, name, attributes)` (the
finished SDK span, its name and its own attributes dict, read-only), which does
the stage's work and returns the attributes to write (values that cannot hold
text: numbers, flags, mailscope's constants) or None; the span is copied once,
only when something was returned. The redaction stages take part through a check
(`quick_check`) that the span has nothing they could rewrite: the same substring
tests they use themselves. A span that fails any check, and every span when a
healthy stage has neither `quick` nor a check, goes through the draft as above,
so the result is the same either way.

`EnrichingSpanProcessor` wraps an exporting processor (normally the SDK's
BatchSpanProcessor): it hands the enriched copy on. The stages' `on_start` hooks
must run once per span, however many exporters there are: the SDK wiring lets
the first EnrichingSpanProcessor run them (`start_hooks=True`), which saves a
processor call per span; `StartProcessor` is the same job as a processor of its
own, for wiring by hand. When that one hook belongs to a stage that guards itself
(`guarded_on_start`, the memory stage) and the downstream processor's on_start does
nothing, the hook becomes the processor's on_start: the SDK calls it directly.
"""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan as _SdkReadableSpan
from opentelemetry.trace import StatusCode

from mailscope._safety import internal_error
from mailscope.processors.draft import CAN_CLONE, FAST_READ, SpanDraft, clone, span_attributes
from mailscope.processors.redact import EarlyRedactionStage, RedactionStage, _clean_attributes, _suspect
from mailscope.locks import owned_lock

_ERROR = StatusCode.ERROR


def _scan_check(name, attributes) -> bool:
    """The redaction stages' check (mode on): nothing in the name or attributes could hold an address."""
    return not _suspect(name) and _clean_attributes(attributes)


def _stage_failed(run) -> None:
    stage = getattr(run, "__self__", run)
    internal_error(f"stage {getattr(stage, 'name', type(stage).__name__)}")


def quick_check_for(stage):
    """`check(name, attributes) -> True` when a redaction stage has nothing to rewrite on a
    healthy span without links (None for other stages)."""
    if type(stage) not in (EarlyRedactionStage, RedactionStage):
        return None
    if stage.mode == "off":
        return lambda name, attributes: True
    return _scan_check


class Pipeline:
    def __init__(self, stages):
        self.stages = tuple(stages)
        # what runs on a span with neither an ERROR status nor any event (most spans)
        self.healthy_stages = tuple(s for s in self.stages if not getattr(s, "failed_only", False))
        self.quick_check, self.quick_stages = self._quick_plan()
        self.start_hooks = tuple(s.on_start for s in self.stages if getattr(s, "on_start", None))
        self._local = threading.local()
        self.wrappers = 0  # EnrichingSpanProcessors sharing this pipeline
        self._start_hooks_claimed = False
        self._claim_lock = owned_lock(self)

    def claim_start_hooks(self) -> bool:
        """True exactly once: for the processor that is to run the start hooks."""
        with self._claim_lock:
            claimed, self._start_hooks_claimed = self._start_hooks_claimed, True
            return not claimed

    def _quick_plan(self):
        """(check, quick methods) for the fast path, or (None, None) when a healthy stage has
        neither a `quick` nor a check. The early and the last redaction run the same check.

        `check` is None when no redaction stage asks for one, `_scan_check` (the address scan,
        called directly) when every one that does is on, else a function of (name, attributes).
        The quick methods are kept as a flat tuple of bound methods: the loop over them runs for
        every span."""
        self.quick_gate, self.quick_ungated = None, ()
        if not (FAST_READ and CAN_CLONE):
            return None, None
        checks, quick, gates = {}, [], []
        for stage in self.healthy_stages:
            check = quick_check_for(stage)
            if check is not None:
                checks.setdefault(stage.mode, check)
            elif getattr(stage, "quick", None) is not None:
                quick.append(stage.quick)
                gates.append(getattr(stage, "quick_only_with", None))
            else:
                return None, None
        # Stages whose quick() does nothing on a span without a given attribute (the memory and
        # operation-metrics stages: mailscope.operation) are skipped on other spans, when they
        # come last and share that attribute: the same calls in the same order otherwise.
        ungated = len(gates)
        while ungated and gates[ungated - 1] is not None:
            ungated -= 1
        gate = gates[ungated] if ungated < len(gates) else None
        if gate is None or any(g != gate for g in gates[ungated:]):
            self.quick_gate, self.quick_ungated = None, tuple(quick)
        else:
            self.quick_gate, self.quick_ungated = gate, tuple(quick[:ungated])
        modes = [mode for mode in checks if mode != "off"]
        if not checks or not modes:
            check = None
        elif len(modes) == 1:
            check = _scan_check
        else:
            checks = tuple(checks.values())

            def check(name, attributes, checks=checks):
                return all(c(name, attributes) for c in checks)
        return check, tuple(quick)

    def enrich(self, span: ReadableSpan, shared: bool = True) -> ReadableSpan | None:
        """Return the span to export (possibly a copy), or None to drop it.

        This runs for every span the process ends: one frame reads the span's fields, scans
        for addresses and calls each stage's quick() in turn (see the module doc)."""
        if shared and self.wrappers > 1:
            # With several exporters the SDK hands the same span to each wrapper in
            # turn, on this thread: enrich once and reuse the result.
            local = self._local
            if getattr(local, "span", None) is span:
                return local.result
            result = Pipeline.enrich(self, span, False)
            local.span = span
            local.result = result
            return result
        quick = self.quick_stages
        if quick is not None and type(span) is _SdkReadableSpan:
            status = span._status
            if status.status_code is not _ERROR and not span._events and not span._links and not status.description:
                name = span._name
                attributes = span._attributes
                attributes = attributes._dict if type(attributes) is _BoundedAttributes else span_attributes(span)
                check = self.quick_check
                try:
                    if check is _scan_check:
                        plain = not _suspect(name) and _clean_attributes(attributes)
                    else:
                        plain = check is None or check(name, attributes)
                except Exception:
                    plain = False  # the draft path runs the stages under their guards
                if plain:
                    gate = self.quick_gate
                    if gate is not None and gate not in attributes:
                        quick = self.quick_ungated
                    writes = None
                    for run in quick:
                        try:
                            values = run(span, name, attributes)
                        except Exception:
                            _stage_failed(run)
                            continue
                        if values:
                            if writes is None:
                                writes = attributes.copy()
                            writes.update(values)
                    if writes is None:
                        return span
                    copy = clone(span)
                    copy._attributes = writes
                    return copy
        return self._run_draft(span)

    def _run_draft(self, span: ReadableSpan) -> ReadableSpan | None:
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
        # the common chain has one start hook (the memory stage's): call it directly
        hooks = pipeline.start_hooks if start_hooks else ()
        self._hook = hooks[0] if len(hooks) == 1 else (pipeline.on_start if hooks else None)
        if (
            self._hook is not None
            and not self._forward_start
            and getattr(getattr(self._hook, "__self__", None), "guarded_on_start", False)
        ):
            # the hook takes (span, parent_context=None) and guards itself: the SDK calls it
            # directly, one Python call per started span instead of two
            self.on_start = self._hook
        pipeline.wrappers += 1

    def on_start(self, span, parent_context=None) -> None:
        hook = self._hook
        if hook is not None:
            try:
                hook(span)
            except Exception:
                internal_error(f"stage start hook {getattr(hook, '__qualname__', hook)}")
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

"""Stage: resident-memory change over a span (and Python allocations in tracemalloc mode).

Which spans: by default mailscope's operations (spans started with
`mailscope.operation`, config-named operations included). Other spans, local
roots too, are left alone: most spans a process ends are other
instrumentations' (redis, SQL, HTTP), and two RSS reads cost a tenth of a bare
span. `MAILSCOPE_MEMORY_SPANS` replaces that with globs of span names (`*` for
every span, or a request span's name).

The start reading is taken in `on_start`, while the span is live; the end
reading when the finished span passes through the chain. Start readings wait in
a table keyed by span id, capped at `MAX_OPEN_SPANS`: spans that never end are
the oldest entries once it fills and are dropped first, so the table cannot
grow without bound.

RSS is process-wide: with threads (or asyncio tasks) running side by side, a
span's delta includes what the others allocated or freed meanwhile. Read it per
span name over many spans (the `mailscope.memory.delta` histogram), not as one
span's own footprint.

The histogram records the spans that grew RSS, by how much. A span whose RSS
stayed the same or shrank carries its signed delta as an attribute but is not
recorded: OTel histograms take no negative values, and in a steady process almost
every span leaves RSS unchanged. Values are aggregated in process and merged into
the SDK's histogram when metrics are collected (`mailscope.histograms`). So the histogram's sum is the growth attributed to each
span name and its count is how many spans grew it. The allocator also keeps freed memory, so a delta of 0
after a big temporary allocation is normal; steady positive deltas are what a
leak looks like.

`MAILSCOPE_MEMORY=tracemalloc` additionally records the change of Python's
traced allocations (`tracemalloc.get_traced_memory()`), which is per-process too
but counts only Python objects and is exact to the byte. The stage starts
tracemalloc when it is not already tracing (and stops it at shutdown). Tracing
hooks every allocation: allocation-heavy code runs several times slower (about
7x for the batch-building workload in `python -m benchmarks memory`) and every
live block carries extra bookkeeping memory; use it to hunt a leak, not as the
permanent setting.
"""

from __future__ import annotations

import tracemalloc
from os import pread as _pread

from opentelemetry.attributes import BoundedAttributes

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.globs import GlobList
from mailscope.histograms import HotHistogram
from mailscope.metrics import MEMORY_BUCKETS_BYTES, LabelCap, instruments
from mailscope.processors.draft import plain_attributes
from mailscope.processors.rss import PAGE_SIZE, RssReader
from mailscope.locks import owned_lock

MAX_OPEN_SPANS = 10_000


_OPERATION = attr.OPERATION


def _has_operation(span) -> bool:
    """Whether a live span was started with `mailscope.operation` (read without a copy)."""
    raw = getattr(span, "_attributes", None)
    if type(raw) is BoundedAttributes:
        return attr.OPERATION in raw._dict
    return attr.OPERATION in plain_attributes(span)


class MemoryStage:
    name = "memory"

    def __init__(self, config, reader: RssReader | None = None, max_open: int = MAX_OPEN_SPANS, histogram=None):
        self.mode = config.memory
        self._globs = GlobList(config.memory_spans) if config.memory_spans is not None else None
        # by default only operations are measured: quick() has nothing to do on other spans
        self.quick_only_with = attr.OPERATION if self._globs is None else None
        self._reader = reader or RssReader()
        self._read = self._reader.read
        # the statm reader's descriptor is read in place (it changes when a forked child reopens it)
        self._statm = self._reader if type(self._reader) is RssReader else None
        self.max_open = max_open
        self._open: dict[int, object] = {}
        self._evict_lock = owned_lock(self)
        self._labels = LabelCap(config.max_tracked_names)
        self._histogram = HotHistogram(histogram, MEMORY_BUCKETS_BYTES) if histogram is not None else None
        self._tracing = self.mode == "tracemalloc"
        self._started_tracemalloc = False
        self._closed = False
        if self._tracing and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_tracemalloc = True

    def open_spans(self) -> int:
        return len(self._open)

    def measures(self, span) -> bool:
        """Whether a live span gets a memory delta."""
        globs = self._globs
        if globs is not None:
            return globs.matches(span.name)
        return _has_operation(span)

    # The processor may call this directly as its own on_start (it runs for every span the
    # process starts), so it takes the SDK's parent_context and guards itself.
    guarded_on_start = True

    def on_start(self, span, parent_context=None) -> None:
        try:
            if self._globs is None:
                # inline of measures()
                try:
                    if _OPERATION not in span._attributes._dict:  # an SDK span's BoundedAttributes
                        return
                except AttributeError:
                    if not _has_operation(span):
                        return
            elif not self._globs.matches(span.name):
                return
            if self._closed:
                return
            statm = self._statm
            fd = statm._fd if statm is not None else None
            # RssReader._read_statm, inlined: this and the end reading are the stage's whole cost
            start = int(_pread(fd, 128, 0).split(None, 2)[1]) * PAGE_SIZE if fd is not None else self._read()
            if self._tracing:
                start = (start, tracemalloc.get_traced_memory()[0])
            table = self._open
            if len(table) >= self.max_open:
                with self._evict_lock:
                    while len(table) >= self.max_open:
                        # dicts keep insertion order: the oldest unfinished span goes
                        table.pop(next(iter(table), None), None)
            try:
                span_id = span._context.span_id  # an SDK span: no property call
            except AttributeError:
                span_id = span.context.span_id
            table[span_id] = start
        except Exception:
            internal_error("stage start hook MemoryStage.on_start")

    def __call__(self, draft) -> None:
        if self._open:
            values = self.quick(draft.span, draft.name, None)
            if values is not None:
                draft.set_attributes(values, free_text=False)  # numbers only

    def quick(self, span, name, attributes):
        """The values to write on a finished span (None when it was not measured); also the
        pipeline's fast path."""
        table = self._open
        if not table:
            return None
        try:
            span_id = span._context.span_id  # an SDK span: no property call
        except AttributeError:
            span_id = span.context.span_id
        start = table.pop(span_id, None)
        if start is None:
            return None
        statm = self._statm
        fd = statm._fd if statm is not None else None
        rss = int(_pread(fd, 128, 0).split(None, 2)[1]) * PAGE_SIZE if fd is not None else self._read()
        if self._tracing:
            start_rss, start_alloc = start
            delta = rss - start_rss
            values = {
                attr.MEMORY_RSS_DELTA: delta,
                attr.MEMORY_RSS: rss,
                attr.MEMORY_ALLOC_DELTA: tracemalloc.get_traced_memory()[0] - start_alloc,
            }
        else:
            delta = rss - start
            values = {attr.MEMORY_RSS_DELTA: delta, attr.MEMORY_RSS: rss}
        if delta > 0:
            histogram = self._histogram
            if histogram is None:
                histogram = self._histogram = HotHistogram(instruments().memory_delta, MEMORY_BUCKETS_BYTES)
            histogram.record(delta, {attr.LABEL_SPAN_NAME: self._labels(name)})
        return values

    def shutdown(self) -> None:
        self._closed = True
        self._open.clear()
        if self._started_tracemalloc:
            self._started_tracemalloc = False
            tracemalloc.stop()
        self._reader.close()

"""Email journeys: where the time went in traces that contain a send, in bounded memory.

A journey is one trace containing at least one `send` span. Its stages:

| stage            | time taken from                                                               |
|------------------|-------------------------------------------------------------------------------|
| `queue_wait`     | `email.queue.wait` (s) on `queue.receive` spans                               |
| `template_load`  | `template.load` spans (outermost ones)                                        |
| `personalization`| outermost `personalize` spans, minus the DB and template-load time inside them |
| `db`             | DB client spans (`db.system`/`db.system.name`) with a `personalize` ancestor  |
| `smtp_connect`   | `smtp.connect` spans (outermost ones)                                         |
| `send`           | outermost `send` spans, minus the `smtp.connect` time inside them             |

So the stages never count the same nanosecond twice and their shares add up to 100 %.
The bottleneck of a journey is its largest stage.

Streaming: spans of one trace arrive close together in an exported file (a batch
holds spans that ended around the same time), but children end, and so arrive,
before their parents. Open traces are therefore kept in an LRU keyed by trace
id, with only what the ancestor walk needs per span (parent id, a role code,
the duration). A trace is finalised when it is evicted (more than
`max_open_traces` open, or more than `max_open_spans` spans held) or at the
end. Spans of a trace that arrive after it was finalised start a new fragment;
`split_traces` counts such trace ids (recently finalised ids are remembered in
a bounded set). A trace holding more than `max_spans_per_trace` spans keeps
adding stage time for spans that need no ancestry and counts as `truncated`.
"""

from __future__ import annotations

from collections import OrderedDict

STAGES = ("queue_wait", "template_load", "personalization", "db", "smtp_connect", "send")

# role codes (bit flags so ancestor sets are one int)
OTHER = 0
PERSONALIZE = 1
DB = 2
TEMPLATE = 4
CONNECT = 8
SEND = 16

MAX_DEPTH = 256


class _Trace:
    __slots__ = ("spans", "queue_wait_ns", "sends", "truncated")

    def __init__(self):
        # span_id -> (parent_id, role, duration_ns)
        self.spans: dict = {}
        self.queue_wait_ns = 0
        self.sends = 0
        self.truncated = False


class JourneyTracker:
    def __init__(self, max_open_traces: int = 5000, max_open_spans: int = 100_000,
                 max_spans_per_trace: int = 20_000, remember_closed: int = 50_000):
        self.max_open_traces = max_open_traces
        self.max_open_spans = max_open_spans
        self.max_spans_per_trace = max_spans_per_trace
        self.remember_closed = remember_closed
        self.open: OrderedDict[str, _Trace] = OrderedDict()
        self.open_spans = 0
        self.closed: OrderedDict[str, None] = OrderedDict()
        self.peak_open_traces = 0
        self.peak_open_spans = 0
        # results
        self.journeys = 0
        self.emails = 0
        self.totals = dict.fromkeys(STAGES, 0)
        self.bottlenecks = dict.fromkeys(STAGES, 0)
        self.split_traces = 0
        self.truncated_traces = 0

    def add(self, trace_id: str, span_id: str, parent_id, role: int, duration_ns: int, queue_wait_ns: int = 0) -> None:
        trace = self.open.get(trace_id)
        if trace is None:
            trace = self.open[trace_id] = _Trace()
            if trace_id in self.closed:
                self.split_traces += 1
                del self.closed[trace_id]
            if len(self.open) > self.peak_open_traces:
                self.peak_open_traces = len(self.open)
        else:
            self.open.move_to_end(trace_id)
        trace.queue_wait_ns += queue_wait_ns
        if role == SEND:
            trace.sends += 1
        if len(trace.spans) < self.max_spans_per_trace:
            trace.spans[span_id] = (parent_id, role, duration_ns)
            self.open_spans += 1
            if self.open_spans > self.peak_open_spans:
                self.peak_open_spans = self.open_spans
        else:
            trace.truncated = True
        while len(self.open) > self.max_open_traces or (self.open_spans > self.max_open_spans and len(self.open) > 1):
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        trace_id, trace = self.open.popitem(last=False)
        self.open_spans -= len(trace.spans)
        self.closed[trace_id] = None
        if len(self.closed) > self.remember_closed:
            self.closed.popitem(last=False)
        self._finalize(trace)

    def finish(self) -> None:
        while self.open:
            self._evict_oldest()

    def _finalize(self, trace: _Trace) -> None:
        if not trace.sends:
            return
        if trace.truncated:
            self.truncated_traces += 1
        spans = trace.spans
        ancestors: dict = {}  # span_id -> OR of the roles of its ancestors

        def ancestor_roles(span_id) -> int:
            known = ancestors.get(span_id)
            if known is not None:
                return known
            chain = [span_id]
            members = {span_id}
            parent = spans[span_id][0]
            mask = 0
            while parent is not None and len(chain) < MAX_DEPTH:
                above = ancestors.get(parent)
                if above is not None:
                    mask = above | spans[parent][1]
                    break
                entry = spans.get(parent)
                if entry is None or parent in members:  # parent not held here, or a cycle
                    break
                chain.append(parent)
                members.add(parent)
                parent = entry[0]
            # walk back down: each span's ancestors are everything above it
            for sid in reversed(chain):
                ancestors[sid] = mask
                mask |= spans[sid][1]
            return ancestors[span_id]

        stage = dict.fromkeys(STAGES, 0)
        personalize_total = inside_personalize = send_total = connect_in_send = 0
        emails = 0
        for span_id, (parent_id, role, duration) in spans.items():
            if role == OTHER:
                continue
            up = ancestor_roles(span_id)
            if role == PERSONALIZE:
                if not up & PERSONALIZE:
                    personalize_total += duration
            elif role == DB:
                if up & PERSONALIZE and not up & DB:
                    stage["db"] += duration
                    inside_personalize += duration
            elif role == TEMPLATE:
                if not up & TEMPLATE:
                    stage["template_load"] += duration
                    if up & PERSONALIZE:
                        inside_personalize += duration
            elif role == CONNECT:
                if not up & CONNECT:
                    stage["smtp_connect"] += duration
                    if up & SEND:
                        connect_in_send += duration
            elif role == SEND:
                if not up & SEND:
                    send_total += duration
                    emails += 1
        stage["personalization"] = max(0, personalize_total - inside_personalize)
        stage["send"] = max(0, send_total - connect_in_send)
        stage["queue_wait"] = trace.queue_wait_ns
        self.journeys += 1
        self.emails += emails or trace.sends
        for name in STAGES:
            self.totals[name] += stage[name]
        worst = max(STAGES, key=lambda name: stage[name])  # first stage wins ties
        if stage[worst] > 0:
            self.bottlenecks[worst] += 1

    def result(self) -> dict:
        grand = sum(self.totals.values())
        stages = []
        for name in STAGES:
            total = self.totals[name]
            stages.append(
                {
                    "stage": name,
                    "total_ms": total / 1e6,
                    "share": (total / grand) if grand else 0.0,
                    "mean_ms": (total / 1e6 / self.journeys) if self.journeys else 0.0,
                    "bottleneck_journeys": self.bottlenecks[name],
                }
            )
        most = max(STAGES, key=lambda name: self.bottlenecks[name])
        return {
            "journeys": self.journeys,
            "emails": self.emails,
            "stages": stages,
            "most_common_bottleneck": most if self.bottlenecks[most] else None,
            "split_traces": self.split_traces,
            "truncated_traces": self.truncated_traces,
        }

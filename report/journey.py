"""Email journeys: where the time went in traces that contain a send, in bounded memory.

A journey is one trace containing at least one `send` span. Its stages:

| stage            | time taken from                                                               |
|------------------|-------------------------------------------------------------------------------|
| `queue_wait`     | `email.queue.wait` (s) on `queue.receive` spans, counted for the trace of the |
|                  | message: the receive span's linked trace(s) when it has links, else its own   |
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
the duration). A trace is finalised as a *fragment* when it is evicted (more
than `max_open_traces` open, or more than `max_open_spans` spans held) or at
the end: its stage times are computed and only they are kept, in a bounded LRU
of recent fragments (`remember_closed`). When spans of that trace show up again
later (a producer's file read before the worker's, or a slow trace), the new
fragment joins the remembered one and the journey is counted again with the
sum (`split_traces` counts such joins). A fragment forgotten before the rest of
its trace arrived leaves that trace counted in pieces. A trace holding more
than `max_spans_per_trace` spans keeps the excess spans out of the stage
computation and counts as `truncated`.
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


class _Fragment:
    __slots__ = ("stages", "sends", "emails")

    def __init__(self, stages: tuple, sends: int, emails: int):
        self.stages = stages
        self.sends = sends
        self.emails = emails


class JourneyTracker:
    def __init__(self, max_open_traces: int = 5000, max_open_spans: int = 100_000,
                 max_spans_per_trace: int = 20_000, remember_closed: int = 20_000):
        self.max_open_traces = max_open_traces
        self.max_open_spans = max_open_spans
        self.max_spans_per_trace = max_spans_per_trace
        self.remember_closed = remember_closed
        self.open: OrderedDict[str, _Trace] = OrderedDict()
        self.open_spans = 0
        # finalised fragments remembered so a later fragment of the same trace joins them
        self.recent: OrderedDict[str, _Fragment] = OrderedDict()
        self.peak_open_traces = 0
        self.peak_open_spans = 0
        # results
        self.journeys = 0
        self.emails = 0
        self.totals = dict.fromkeys(STAGES, 0)
        self.bottlenecks = dict.fromkeys(STAGES, 0)
        self.split_traces = 0
        self.truncated_traces = 0

    def _open(self, trace_id: str) -> _Trace:
        trace = self.open.get(trace_id)
        if trace is None:
            trace = self.open[trace_id] = _Trace()
            if len(self.open) > self.peak_open_traces:
                self.peak_open_traces = len(self.open)
        else:
            self.open.move_to_end(trace_id)
        return trace

    def add(self, trace_id: str, span_id: str, parent_id, role: int, duration_ns: int) -> None:
        trace = self._open(trace_id)
        if role == SEND:
            trace.sends += 1
        if len(trace.spans) < self.max_spans_per_trace:
            trace.spans[span_id] = (parent_id, role, duration_ns)
            self.open_spans += 1
            if self.open_spans > self.peak_open_spans:
                self.peak_open_spans = self.open_spans
        else:
            trace.truncated = True
        self._bound()

    def add_queue_wait(self, trace_id: str, wait_ns: int) -> None:
        """Queue wait belongs to the trace of the message (a receive span's link), not to the receive's own."""
        self._open(trace_id).queue_wait_ns += wait_ns
        self._bound()

    def _bound(self) -> None:
        while len(self.open) > self.max_open_traces or (self.open_spans > self.max_open_spans and len(self.open) > 1):
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        trace_id, trace = self.open.popitem(last=False)
        self.open_spans -= len(trace.spans)
        self._finalize_fragment(trace_id, trace)

    def finish(self) -> None:
        while self.open:
            self._evict_oldest()

    def _count(self, fragment: _Fragment, sign: int) -> None:
        self.journeys += sign
        self.emails += sign * fragment.emails
        for name, value in zip(STAGES, fragment.stages):
            self.totals[name] += sign * value
        worst = max(range(len(STAGES)), key=lambda i: fragment.stages[i])  # first stage wins ties
        if fragment.stages[worst] > 0:
            self.bottlenecks[STAGES[worst]] += sign

    def _finalize_fragment(self, trace_id: str, trace: _Trace) -> None:
        stages, emails = self._stages(trace)
        sends = trace.sends
        previous = self.recent.pop(trace_id, None)
        if previous is not None:
            # another piece of a trace seen before (e.g. the producer's and the worker's files)
            self.split_traces += 1
            if previous.sends:
                self._count(previous, -1)
            stages = tuple(a + b for a, b in zip(previous.stages, stages))
            sends += previous.sends
            emails += previous.emails
        elif not sends and not any(stages):
            return
        fragment = _Fragment(stages, sends, emails)
        if sends:
            self._count(fragment, +1)
        self.recent[trace_id] = fragment
        if len(self.recent) > self.remember_closed:
            self.recent.popitem(last=False)

    def _stages(self, trace: _Trace) -> tuple[tuple, int]:
        """(time per stage in STAGES order, outermost send spans) of one fragment."""
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
        return tuple(stage[name] for name in STAGES), emails

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

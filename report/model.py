"""The streaming aggregation behind `mailscope report`.

`ReportModel.add(span)` takes one flattened span (exporters/otlp_file.py) at a
time and keeps only bounded summaries (report/sketch.py,
report/journey.py); `result(inputs)` returns the report document,
the `--json` schema (documented in the README). Nothing holds a list of spans:
memory depends on the caps below, not on the input size.

A span that lacks what the report needs (string name and ids, integer times
with end >= start) or whose attributes have types nothing can use is skipped
and counted in `invalid_spans`; it never raises.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import OrderedDict

from mailscope import attributes as attr
from mailscope.report import journey
from mailscope.report.delivery import DeliveryTracker, findings as delivery_findings
from mailscope.report.rules import (
    MEMORY_MIN_CORRELATION,
    MEMORY_MIN_DELTA_SHARE,
    MEMORY_MIN_GROWTH_BYTES,
    MEMORY_MIN_SAMPLES,
    action_for,
    recommendations,
)
from mailscope.report.sketch import DistinctCounter, LogHistogram, TimeBuckets, TopK
from mailscope.globs import GlobList, GlobMap

SCHEMA = "mailscope.report/1"

MAX_OPERATIONS = 500
MAX_ERROR_PATTERNS = 1000
MAX_SLOW_KEYS = 1000
MAX_GROWTH_KEYS = 1000
MAX_SERVICES = 100
MAX_SPAN_NAMES_PER_PATTERN = 5
MAX_LINKED_TRACES = 100  # per receive span (a batch receive links every message)
MAX_ERROR_LINKS = 100_000  # recent error spans remembered to fold an error's propagation into one occurrence
TOP_SLOWEST = 10
TIMELINE_BUCKETS = 60
TIMELINE_SERIES = 8
MEMORY_GROWTH_LISTED = 20
MAX_TEMPLATE_ENGINES = 20
MAX_MISSING_PAIRS = 500  # (template, variable) pairs counted; further pairs only add to the overflow count
MAX_NAME_CHARS = 200
OVERFLOW = attr.LABEL_OVERFLOW
MAX_TIME_NS = 2**63  # OTLP times are fixed64 nanoseconds
MAX_MAGNITUDE = 1e18  # numeric attributes beyond this are treated as unusable

# latency distribution bins (upper bounds, ms): 1-2-5 steps from 10 us to 500 s
LATENCY_BOUNDS_MS = [m * 10.0**e for e in range(-2, 6) for m in (1, 2, 5)]

_ROLE_BY_OPERATION = {
    attr.OP_PERSONALIZE: journey.PERSONALIZE,
    attr.OP_TEMPLATE_LOAD: journey.TEMPLATE,
    attr.OP_SMTP_CONNECT: journey.CONNECT,
    attr.OP_SEND: journey.SEND,
}


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    stamp = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value):
    """A usable int/float attribute value, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not -MAX_MAGNITUDE < value < MAX_MAGNITUDE:
        return None
    return value


class Filters:
    def __init__(self, service: str | None = None, since_ns: int | None = None,
                 until_ns: int | None = None, operation: str | None = None):
        self.service = service
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.operation = operation
        self._op = GlobList([operation]) if operation else None

    def active(self) -> bool:
        return any(v is not None for v in (self.service, self.since_ns, self.until_ns, self.operation))

    def describe(self) -> dict:
        return {
            "service": self.service,
            "since": iso(self.since_ns),
            "until": iso(self.until_ns),
            "operation": self.operation,
        }

    def keep(self, span: dict, op) -> bool:
        if self.service is not None and span["resource"].get(attr.SERVICE_NAME) != self.service:
            return False
        start = span["start_ns"]
        if self.since_ns is not None and start < self.since_ns:
            return False
        if self.until_ns is not None and start >= self.until_ns:
            return False
        if self._op is not None and not (self._op.matches(span["name"]) or (op is not None and self._op.matches(op))):
            return False
        return True


class _Operation:
    __slots__ = ("key", "kind", "span_name", "count", "errors", "latency", "memory")

    def __init__(self, key, kind, span_name):
        self.key = key
        self.kind = kind
        self.span_name = span_name
        self.count = 0
        self.errors = 0
        self.latency = LogHistogram()  # ms
        self.memory = LogHistogram()  # bytes


class _Pattern:
    __slots__ = ("key", "fingerprint", "category", "retryable", "pattern", "error_type", "count", "spans",
                 "first_ns", "last_ns", "example_trace_id", "span_names")

    def __init__(self, key):
        self.key = key
        self.fingerprint = self.category = self.retryable = self.pattern = self.error_type = None
        self.count = 0
        self.spans = 0
        self.first_ns = self.last_ns = None
        self.example_trace_id = None
        self.span_names: dict = {}


class _Engine:
    __slots__ = ("loads", "loads_with_cache_info", "cache_hits", "renders", "renders_with_missing")

    def __init__(self):
        self.loads = self.loads_with_cache_info = self.cache_hits = self.renders = self.renders_with_missing = 0


class _Growth:
    """Least-squares line through (seconds since first sample, RSS MiB), in running sums."""

    __slots__ = ("service", "span_name", "t0", "n", "sx", "sy", "sxx", "syy", "sxy", "xmin", "xmax", "delta_sum")

    def __init__(self, service, span_name, t0):
        self.service = service
        self.span_name = span_name
        self.t0 = t0
        self.delta_sum = 0
        self.n = 0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0
        self.xmin = math.inf
        self.xmax = -math.inf

    def add(self, end_ns: int, rss: float, delta) -> None:
        if delta is not None:
            self.delta_sum += delta
        x = (end_ns - self.t0) / 1e9
        y = rss / (1024 * 1024)
        self.n += 1
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.syy += y * y
        self.sxy += x * y
        self.xmin = min(self.xmin, x)
        self.xmax = max(self.xmax, x)

    def fit(self) -> tuple[float, float]:
        """(growth in bytes over the sampled time range, correlation r)."""
        n = self.n
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        cov = self.sxy - self.sx * self.sy / n
        if n < 2 or vx <= 0:
            return 0.0, 0.0
        slope = cov / vx  # MiB per second
        growth = slope * (self.xmax - self.xmin) * 1024 * 1024
        r = cov / math.sqrt(vx * vy) if vy > 0 else 0.0
        return growth, r


class ReportModel:
    def __init__(self, filters: Filters | None = None, thresholds=None, journeys: journey.JourneyTracker | None = None):
        self.filters = filters or Filters()
        if thresholds is None:
            from mailscope.config import settings

            thresholds = settings().slow_thresholds
        self.thresholds = GlobMap(thresholds)
        self.spans_read = 0
        self.spans = 0
        self.invalid_spans = 0
        self.error_spans = 0
        self.start_ns = None
        self.end_ns = None
        self.traces = DistinctCounter()
        self.services: dict = {}
        self.operations: dict = {}
        self.emails = {"sent": 0, "failed": 0, "recipients": 0, "refused": 0}
        self.smtp_connects = 0
        self.smtp_sends = 0
        self.template_loads = 0
        self.template_cache_known = 0
        self.template_cache_hits = 0
        self.template_renders = 0
        self.template_renders_missing = 0
        self.engines: dict = {}
        self.missing: dict = {}  # (template, variable) -> renders
        self.missing_overflow = 0
        self.slow_total = 0
        self.slow_by: dict = {}
        self.consistent: dict = {}
        self.slowest = TopK(TOP_SLOWEST)
        self.patterns: dict = {}
        self.categories: dict = {}  # category -> [occurrences, retryable occurrences, spans]
        self._err_seen: OrderedDict = OrderedDict()
        self._err_children: OrderedDict = OrderedDict()
        self.timeline = TimeBuckets(TIMELINE_BUCKETS)
        self.growth: dict = {}
        self.journeys = journeys or journey.JourneyTracker()
        self.delivery = DeliveryTracker()

    # --- ingest --------------------------------------------------------------
    def add(self, span: dict) -> None:
        self.spans_read += 1
        try:
            name = span["name"]
            trace_id = span["trace_id"]
            span_id = span["span_id"]
            start = span["start_ns"]
            end = span["end_ns"]
            attrs = span["attributes"]
            if not (isinstance(name, str) and isinstance(trace_id, str) and trace_id and isinstance(span_id, str)
                    and isinstance(start, int) and isinstance(end, int) and 0 < start <= end < MAX_TIME_NS
                    and isinstance(attrs, dict)
                    and isinstance(span["resource"], dict)):
                raise ValueError("unusable span")
            op = attrs.get(attr.OPERATION)
            if not isinstance(op, str) or not op:
                op = None
            if self.filters.active() and not self.filters.keep(span, op):
                return
            self._add(span, name, trace_id, span_id, start, end, attrs, op)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError):
            self.invalid_spans += 1

    def _add(self, span, name, trace_id, span_id, start, end, attrs, op) -> None:
        duration = end - start
        duration_ms = duration / 1e6
        is_error = span.get("status_code") == "ERROR"
        resource = span["resource"]
        service = resource.get(attr.SERVICE_NAME)
        service = service if isinstance(service, str) else "unknown"

        self.spans += 1
        if self.start_ns is None or start < self.start_ns:
            self.start_ns = start
        if self.end_ns is None or end > self.end_ns:
            self.end_ns = end
        self.traces.add(trace_id)
        if service in self.services:
            self.services[service] += 1
        elif len(self.services) < MAX_SERVICES:
            self.services[service] = 1
        if is_error:
            self.error_spans += 1

        # per operation (mailscope operations by name, other spans by span name)
        key, kind = (op, "operation") if op is not None else (name, "span")
        entry = self.operations.get(key)
        if entry is None:
            if len(self.operations) >= MAX_OPERATIONS:
                key, kind = OVERFLOW, "other"
                entry = self.operations.get(key)
            if entry is None:
                entry = self.operations[key] = _Operation(key, kind, name)
        entry.count += 1
        if is_error:
            entry.errors += 1
        entry.latency.add(duration_ms)
        delta = _number(attrs.get(attr.MEMORY_RSS_DELTA))
        if delta is not None:
            entry.memory.add(delta)
        rss = _number(attrs.get(attr.MEMORY_RSS))
        if rss is not None:
            self._growth(resource, service, name, end, rss, delta)

        # emails, templates, smtp
        if op == attr.OP_SEND:
            if is_error:
                self.emails["failed"] += 1
            else:
                self.emails["sent"] += 1
            self.emails["recipients"] += int(_number(attrs.get(attr.RECIPIENTS_COUNT)) or 0)
            self.emails["refused"] += int(_number(attrs.get(attr.RECIPIENTS_REFUSED)) or 0)
            provider = attrs.get(attr.PROVIDER)
            if provider is None or provider == attr.PROVIDER_SMTP:
                self.smtp_sends += 1
        elif op == attr.OP_SMTP_CONNECT:
            self.smtp_connects += 1
        elif op == attr.OP_TEMPLATE_LOAD:
            self.template_loads += 1
            engine = self._engine(attrs)
            engine.loads += 1
            hit = attrs.get(attr.TEMPLATE_CACHE_HIT)
            if isinstance(hit, bool):
                self.template_cache_known += 1
                self.template_cache_hits += hit
                engine.loads_with_cache_info += 1
                engine.cache_hits += hit
        elif op == attr.OP_PERSONALIZE:
            self._render(attrs)
        elif op == attr.OP_DELIVERY:
            self.delivery.add(attrs, trace_id, bool(span.get("parent_span_id")), end)
        elif op == attr.OP_QUEUE_RECEIVE or op == attr.OP_QUEUE_PROCESS:  # Celery puts the wait on process
            wait = _number(attrs.get(attr.QUEUE_WAIT))
            if wait is not None and wait > 0:
                self._queue_wait(span, trace_id, int(wait * 1e9))

        # journeys
        role = _ROLE_BY_OPERATION.get(op, journey.OTHER) if op is not None else journey.OTHER
        if role == journey.OTHER and (attr.DB_SYSTEM in attrs or attr.DB_SYSTEM_NAME in attrs):
            role = journey.DB
        parent = span.get("parent_span_id")
        parent = parent if isinstance(parent, str) and parent else None
        if op != attr.OP_DELIVERY:  # a provider's event, hours later: not a step of the send's journey
            self.journeys.add(trace_id, span_id, parent, role, duration)

        # slow operations
        if attrs.get(attr.SLOW) is True:
            self.slow_total += 1
            reason = attrs.get(attr.SLOW_REASON)
            slow_key = (name, reason if isinstance(reason, str) else "unknown")
            if slow_key not in self.slow_by and len(self.slow_by) >= MAX_SLOW_KEYS:
                slow_key = (OVERFLOW, OVERFLOW)
            self.slow_by[slow_key] = self.slow_by.get(slow_key, 0) + 1
            if attrs.get(attr.SLOW_CONSISTENT) is True:
                ckey = name if (name in self.consistent or len(self.consistent) < MAX_SLOW_KEYS) else OVERFLOW
                self.consistent[ckey] = self.consistent.get(ckey, 0) + 1
        if self.slowest.would_keep(duration):
            self.slowest.add(duration, {
                "span_name": name,
                "operation": op,
                "duration_ms": duration_ms,
                "trace_id": trace_id,
                "span_id": span_id,
                "start": iso(start),
                "service": service,
                "slow": attrs.get(attr.SLOW) is True,
                "error": is_error,
            })

        # errors
        category = attrs.get(attr.ERROR_CATEGORY)
        if is_error or isinstance(category, str):
            self._error(span, name, trace_id, span_id, parent, end, attrs, category)

    def _engine(self, attrs) -> _Engine:
        name = attrs.get(attr.TEMPLATE_ENGINE)
        name = name[:MAX_NAME_CHARS] if isinstance(name, str) and name else "unknown"
        engine = self.engines.get(name)
        if engine is None:
            if len(self.engines) >= MAX_TEMPLATE_ENGINES:
                name = OVERFLOW
                engine = self.engines.get(name)
            if engine is None:
                engine = self.engines[name] = _Engine()
        return engine

    def _render(self, attrs) -> None:
        self.template_renders += 1
        engine = self._engine(attrs)
        engine.renders += 1
        names = attrs.get(attr.PERSONALIZATION_MISSING_NAMES)
        names = [n for n in names if isinstance(n, str) and n] if isinstance(names, (list, tuple)) else []
        if not names:
            return
        self.template_renders_missing += 1
        engine.renders_with_missing += 1
        template = attrs.get(attr.TEMPLATE_NAME)
        template = template[:MAX_NAME_CHARS] if isinstance(template, str) and template else "unknown"
        for variable in dict.fromkeys(names):
            pair = (template, variable[:MAX_NAME_CHARS])
            if pair in self.missing:
                self.missing[pair] += 1
            elif len(self.missing) < MAX_MISSING_PAIRS:
                self.missing[pair] = 1
            else:
                self.missing_overflow += 1

    def _template_section(self) -> dict:
        def ratio(hits, known):
            return hits / known if known else None

        engines = [{
            "engine": name,
            "loads": e.loads,
            "loads_with_cache_info": e.loads_with_cache_info,
            "cache_hits": e.cache_hits,
            "hit_ratio": ratio(e.cache_hits, e.loads_with_cache_info),
            "renders": e.renders,
            "renders_with_missing": e.renders_with_missing,
        } for name, e in sorted(self.engines.items(), key=lambda kv: (-kv[1].loads - kv[1].renders, kv[0]))]
        missing = [{"template": t, "variable": v, "renders": n}
                   for (t, v), n in sorted(self.missing.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {
            "loads": self.template_loads,
            "loads_with_cache_info": self.template_cache_known,
            "cache_hits": self.template_cache_hits,
            "hit_ratio": ratio(self.template_cache_hits, self.template_cache_known),
            "renders": self.template_renders,
            "renders_with_missing": self.template_renders_missing,
            "by_engine": engines,
            "missing_variables": missing,
            "missing_variables_overflow": self.missing_overflow,
        }

    def _queue_wait(self, span, trace_id, wait_ns) -> None:
        # A receive span usually starts its own trace and links to the message's
        # publish span: the wait belongs to the journey of the linked trace.
        linked = []
        for link in span.get("links") or ():
            linked_trace = link.get("trace_id") if isinstance(link, dict) else None
            if isinstance(linked_trace, str) and linked_trace and linked_trace not in linked:
                linked.append(linked_trace)
                if len(linked) >= MAX_LINKED_TRACES:
                    break
        for target in linked or (trace_id,):
            self.journeys.add_queue_wait(target, wait_ns)

    def _growth(self, resource, service, name, end, rss, delta) -> None:
        process = resource.get(attr.SERVICE_INSTANCE_ID) or resource.get(attr.PROCESS_PID) or service
        key = (str(process), name)
        g = self.growth.get(key)
        if g is None:
            if len(self.growth) >= MAX_GROWTH_KEYS:
                return
            g = self.growth[key] = _Growth(service, name, end)
        g.add(end, rss, delta)

    def _error(self, span, name, trace_id, span_id, parent, end, attrs, category) -> None:
        fingerprint = attrs.get(attr.ERROR_FINGERPRINT)
        error_type = attrs.get(attr.ERROR_TYPE)
        if not isinstance(error_type, str):
            error_type = None
            for event in span.get("events") or ():
                if event.get("name") == attr.EXCEPTION_EVENT:
                    value = (event.get("attributes") or {}).get(attr.EXCEPTION_TYPE)
                    error_type = value if isinstance(value, str) else None
                    break
        if isinstance(fingerprint, str) and fingerprint:
            ident = fingerprint
        else:
            fingerprint = None
            ident = "type:" + (error_type or "unknown")
        key = ident
        p = self.patterns.get(key)
        if p is None:
            if len(self.patterns) >= MAX_ERROR_PATTERNS:
                key = OVERFLOW
                p = self.patterns.get(key)
            if p is None:
                p = self.patterns[key] = _Pattern(key)
                if key != OVERFLOW:
                    p.fingerprint = fingerprint
                    p.error_type = error_type
                    pattern = attrs.get(attr.ERROR_PATTERN)
                    p.pattern = pattern if isinstance(pattern, str) else None
                    p.category = category if isinstance(category, str) else "unknown"
                    retryable = attrs.get(attr.ERROR_RETRYABLE)
                    p.retryable = retryable if isinstance(retryable, bool) else None
        cat = category if isinstance(category, str) else "unknown"
        c = self.categories.get(cat)
        if c is None:
            cat = cat if len(self.categories) < 2 * len(attr.ERROR_CATEGORIES) else OVERFLOW
            c = self.categories.setdefault(cat, [0, 0, 0])
        retryable = attrs.get(attr.ERROR_RETRYABLE) is True

        # One failure often marks a chain of spans (the send, then the process span
        # the exception propagated through). An occurrence is an error span whose
        # parent does not carry the same pattern. Children usually arrive first:
        # each is counted, and uncounted again when its parent shows up with the
        # same pattern; a child arriving after such a parent is not counted.
        p.spans += 1
        c[2] += 1
        top = not (parent is not None and (trace_id, parent, ident) in self._err_seen)
        if top:
            self._occurrence(p, c, retryable, key, end, +1)
            if parent is not None:
                waiting = self._err_children.get((trace_id, parent, ident))
                if waiting is None:
                    waiting = self._err_children[(trace_id, parent, ident)] = []
                    if len(self._err_children) > MAX_ERROR_LINKS:
                        self._err_children.popitem(last=False)
                if len(waiting) < 64:
                    waiting.append((end, retryable))
        for child_end, child_retryable in self._err_children.pop((trace_id, span_id, ident), ()):
            self._occurrence(p, c, child_retryable, key, child_end, -1)
        self._err_seen[(trace_id, span_id, ident)] = None
        if len(self._err_seen) > MAX_ERROR_LINKS:
            self._err_seen.popitem(last=False)

        if p.first_ns is None or end < p.first_ns:
            p.first_ns = end
            p.example_trace_id = trace_id
        if p.last_ns is None or end > p.last_ns:
            p.last_ns = end
        if name in p.span_names or len(p.span_names) < MAX_SPAN_NAMES_PER_PATTERN:
            p.span_names[name] = p.span_names.get(name, 0) + 1

    def _occurrence(self, p, c, retryable, key, end, n) -> None:
        p.count += n
        c[0] += n
        if retryable:
            c[1] += n
        self.timeline.add(end, key, n)

    # --- output ----------------------------------------------------------------
    def _operation_rows(self) -> list:
        rows = []
        for entry in self.operations.values():
            lat = entry.latency
            mem = entry.memory
            threshold_name = entry.span_name if entry.kind != "other" else None
            rows.append({
                "key": entry.key,
                "kind": entry.kind,
                "span_name": entry.span_name if entry.kind != "other" else None,
                "count": entry.count,
                "errors": entry.errors,
                "error_rate": entry.errors / entry.count,
                "total_ms": lat.total,
                "latency_ms": {
                    "p50": lat.quantile(50),
                    "p95": lat.quantile(95),
                    "p99": lat.quantile(99),
                    "max": lat.max,
                    "mean": lat.mean,
                },
                "latency_histogram": lat.binned(LATENCY_BOUNDS_MS),
                "memory_delta_bytes": {
                    "count": mem.count,
                    "mean": mem.mean,
                    "p95": mem.quantile(95),
                } if mem.count else None,
                "threshold_ms": self.thresholds.lookup(threshold_name) if threshold_name else None,
            })
        order = {op: i for i, op in enumerate(attr.OPERATIONS)}
        rows.sort(key=lambda r: (0 if r["kind"] == "operation" else 1, order.get(r["key"], 99), -r["total_ms"], str(r["key"])))
        return rows

    def _error_section(self) -> dict:
        patterns = sorted(self.patterns.values(), key=lambda p: (-p.count, p.first_ns or 0, p.key))
        rows = [{
            "key": p.key,
            "fingerprint": p.fingerprint,
            "category": p.category,
            "retryable": p.retryable,
            "pattern": p.pattern,
            "error_type": p.error_type,
            "count": p.count,
            "spans": p.spans,
            "first_seen": iso(p.first_ns),
            "last_seen": iso(p.last_ns),
            "example_trace_id": p.example_trace_id,
            "span_names": sorted(p.span_names, key=lambda n: -p.span_names[n]),
            "suggested_action": action_for(p.category) if p.key != OVERFLOW else None,
        } for p in patterns]
        by_category = sorted(
            ({"category": cat, "count": c[0], "retryable_count": c[1], "spans": c[2], "suggested_action": action_for(cat)}
             for cat, c in self.categories.items()),
            key=lambda r: (-r["count"], r["category"]),
        )
        top = [p.key for p in patterns[:TIMELINE_SERIES]]
        start_ns, series = self.timeline.series(top)
        return {
            "total": sum(p.count for p in patterns),
            "patterns": rows,
            "by_category": by_category,
            "timeline": {
                "start": iso(start_ns),
                "start_unix_nano": start_ns,
                "bucket_seconds": self.timeline.width_ns / 1e9 if start_ns is not None else None,
                "series": [{"key": s["key"] if s["key"] is not None else OVERFLOW, "counts": s["counts"]} for s in series],
            },
        }

    def _memory_growth(self) -> list:
        rows = []
        for g in self.growth.values():
            if g.n < MEMORY_MIN_SAMPLES:
                continue
            growth, r = g.fit()
            rows.append({
                "span_name": g.span_name,
                "service": g.service,
                "samples": g.n,
                "growth_bytes": int(growth),
                "delta_sum_bytes": int(g.delta_sum),
                "correlation": r,
                "flagged": (growth >= MEMORY_MIN_GROWTH_BYTES and r >= MEMORY_MIN_CORRELATION
                            and g.delta_sum >= MEMORY_MIN_DELTA_SHARE * growth),
            })
        rows.sort(key=lambda r: (not r["flagged"], -r["delta_sum_bytes"], -r["growth_bytes"]))
        return rows[:MEMORY_GROWTH_LISTED]

    def result(self, inputs: dict | None = None) -> dict:
        self.journeys.finish()
        sends = self.emails["sent"] + self.emails["failed"]
        report = {
            "schema": SCHEMA,
            "generated_at": iso(int(_dt.datetime.now(tz=_dt.timezone.utc).timestamp() * 1e9)),
            "inputs": dict(inputs or {}, filters=self.filters.describe(), spans_read=self.spans_read,
                           invalid_spans=self.invalid_spans),
            "summary": {
                "start": iso(self.start_ns),
                "end": iso(self.end_ns),
                "start_unix_nano": self.start_ns,
                "end_unix_nano": self.end_ns,
                "duration_s": (self.end_ns - self.start_ns) / 1e9 if self.spans else 0.0,
                "spans": self.spans,
                "traces": self.traces.count(),
                "traces_estimated": self.traces.estimated,
                "services": sorted(self.services),
                "emails": dict(self.emails, send_spans=sends),
                "error_spans": self.error_spans,
                "error_rate": self.error_spans / self.spans if self.spans else 0.0,
            },
            "latency_bounds_ms": LATENCY_BOUNDS_MS,
            "operations": self._operation_rows(),
            "journey": self.journeys.result(),
            "slow": {
                "total": self.slow_total,
                "by_name_reason": [
                    {"span_name": n, "reason": r, "count": c}
                    for (n, r), c in sorted(self.slow_by.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                "consistently_slow": [
                    {"span_name": n, "count": c} for n, c in sorted(self.consistent.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                "slowest": self.slowest.items(),
            },
            "errors": self._error_section(),
            "templates": self._template_section(),
            "smtp": {"connects": self.smtp_connects, "sends": self.smtp_sends},
            "memory_growth": self._memory_growth(),
            "delivery": self.delivery.result(),
        }
        report["journey"]["accepted_to_delivered"] = report["delivery"]["accepted_to_delivered"]
        report["recommendations"] = recommendations(report)
        if report["delivery"]["events"]:
            from mailscope.report.rules import SEVERITY_ORDER

            report["recommendations"] = sorted(report["recommendations"] + delivery_findings(report["delivery"]),
                                              key=lambda f: SEVERITY_ORDER[f["severity"]])
        return report

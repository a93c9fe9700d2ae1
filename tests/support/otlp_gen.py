"""Write large OTLP JSON-lines trace files quickly, for report tests and benchmarks.

`write_trace_file(path, spans)` writes about `spans` spans shaped like what a
mailscope-instrumented email worker exports: journeys of
queue receive -> template load -> personalize (with a DB query inside) ->
[smtp.connect] -> send under a `process` root, with the analysis attributes the
span processors add (slow, error pattern, memory), plus unrelated HTTP spans.
Spans of a trace are written children first (the order they end), batches of
`spans_per_line` spans per line, as the SDK's batch processor would. The file
is generated deterministically from `seed`; it is never held in memory whole.
"""

from __future__ import annotations

import json
import random

from mailscope import attributes as attr

START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
QUEUE = "email-queue"

# (category, retryable, error.type, pattern, fingerprint, weight)
ERRORS = (
    ("recipient", False, "SMTPRecipientsRefused", "550 5.1.1 <***@example.org>: Recipient address rejected: User unknown", "a1f0c3d2e4b5a697", 6),
    ("rate_limit", True, "SMTPDataError", "421 4.7.0 Too many messages, slow down", "b2e1d4c3f5a6b708", 3),
    ("mailbox_full", True, "SMTPDataError", "452 4.2.2 Mailbox full", "c3d2e5f4a6b7c819", 2),
    ("sender_auth", False, "SMTPDataError", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", "d4c3f6a5b7c8d92a", 1),
    ("timeout", True, "TimeoutError", "timed out", "e5d4a7b6c8d9ea3b", 1),
)


def _kv(key, value) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, (list, tuple)):
        return {"key": key, "value": {"arrayValue": {"values": [_kv("", v)["value"] for v in value]}}}
    return {"key": key, "value": {"stringValue": str(value)}}


class _Gen:
    def __init__(self, seed: int, services: int, leak_bytes_per_send: int, error_rate: float):
        self.rng = random.Random(seed)
        self.now = START_NS
        self.services = services
        self.leak = leak_bytes_per_send
        self.error_rate = error_rate
        self.trace_n = 0
        self.rss = 80 * 1024 * 1024
        weights = [e[5] for e in ERRORS]
        self.error_weights = weights

    def hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def span(self, trace_id, parent, name, kind, start, end, attrs, error=None):
        s = {
            "traceId": trace_id,
            "spanId": self.hex(64),
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": [_kv(k, v) for k, v in attrs.items()],
            "status": {"code": 2, "message": error} if error else {},
        }
        if parent:
            s["parentSpanId"] = parent["spanId"]
        return s

    def slow_attrs(self, attrs, name, duration_ns, threshold_ms):
        if duration_ns / 1e6 > threshold_ms:
            attrs[attr.SLOW] = True
            attrs[attr.SLOW_REASON] = attr.SLOW_REASON_THRESHOLD
            attrs[attr.SLOW_THRESHOLD_MS] = float(threshold_ms)
            if self.rng.random() < 0.5:
                attrs[attr.SLOW_CONSISTENT] = True

    def memory(self, attrs, end, retained: int = 0):
        """RSS grows only by what sends retain (the leak); every other delta is noise around zero."""
        self.rss += retained
        attrs[attr.MEMORY_RSS_DELTA] = retained + int(self.rng.gauss(0, 16 * 1024))
        attrs[attr.MEMORY_RSS] = self.rss + self.rng.randrange(4096)

    def journey(self) -> list[dict]:
        """One email journey, children before parents."""
        rng = self.rng
        self.trace_n += 1
        trace_id = self.hex(128)
        t = self.now
        ms = 1_000_000
        spans = []
        root_start = t
        root = {"spanId": self.hex(64)}
        # receive
        wait_s = rng.expovariate(1 / 0.5)
        d = int(rng.lognormvariate(0, 0.5) * ms)
        a = {attr.OPERATION: attr.OP_QUEUE_RECEIVE, attr.MESSAGING_SYSTEM: "redis",
             attr.MESSAGING_OPERATION_TYPE: "receive", attr.MESSAGING_DESTINATION_NAME: QUEUE, attr.QUEUE_WAIT: wait_s}
        self.memory(a, t + d)
        spans.append(self.span(trace_id, root, f"receive {QUEUE}", 5, t, t + d, a))
        t += d
        # a DB query outside personalization (not a journey stage)
        if rng.random() < 0.5:
            d = int(rng.lognormvariate(0, 0.5) * ms)
            spans.append(self.span(trace_id, root, "UPDATE outbox", 3, t, t + d,
                                   {attr.DB_SYSTEM: "postgresql", "db.name": "newsletter"}))
            t += d
        # template load
        d = int(rng.lognormvariate(-1, 1.0) * ms)
        # one journey in five renders a Liquid template; some contexts lack variables (no rng draw: the
        # rest of the file stays as it was)
        engine, template = ("liquid", "promo.liquid") if self.trace_n % 5 == 0 else ("jinja2", "welcome.html")
        missing = ["coupon", "first_name"] if self.trace_n % 35 == 0 else ["coupon"] if self.trace_n % 7 == 0 else []
        a = {attr.OPERATION: attr.OP_TEMPLATE_LOAD, attr.TEMPLATE_NAME: template, attr.TEMPLATE_ENGINE: engine,
             attr.TEMPLATE_CACHE_HIT: rng.random() < 0.8}
        self.slow_attrs(a, attr.SPAN_TEMPLATE_LOAD, d, 100)
        self.memory(a, t + d)
        spans.append(self.span(trace_id, root, attr.SPAN_TEMPLATE_LOAD, 1, t, t + d, a))
        t += d
        # personalize with a DB query inside
        personalize = {"spanId": self.hex(64)}
        db_d = int(rng.lognormvariate(0.5, 0.8) * ms)
        spans.append(self.span(trace_id, personalize, "SELECT newsletter", 3, t + ms // 10, t + ms // 10 + db_d,
                               {attr.DB_SYSTEM: "postgresql", "db.name": "newsletter"}))
        d = db_d + ms // 5 + int(rng.lognormvariate(0, 1.0) * ms)
        a = {attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: template, attr.TEMPLATE_ENGINE: engine,
             attr.PERSONALIZATION_VARIABLES: 4, attr.PERSONALIZATION_MISSING: len(missing), attr.CONTENT_BYTES: 2048}
        if missing:
            a[attr.PERSONALIZATION_MISSING_NAMES] = missing
        self.slow_attrs(a, attr.SPAN_PERSONALIZE, d, 50)
        self.memory(a, t + d)
        p = self.span(trace_id, root, attr.SPAN_PERSONALIZE, 1, t, t + d, a)
        p["spanId"] = personalize["spanId"]
        spans.append(p)
        t += d
        # a new SMTP connection for one message in ten
        if self.trace_n % 10 == 1:
            d = int(rng.lognormvariate(3, 0.5) * ms)
            a = {attr.OPERATION: attr.OP_SMTP_CONNECT, attr.PROVIDER: "smtp", attr.SERVER_ADDRESS: "smtp.local",
                 attr.SERVER_PORT: 587, attr.SMTP_TLS: True, attr.SMTP_RESPONSE_CODE: 250}
            self.memory(a, t + d)
            spans.append(self.span(trace_id, root, attr.SPAN_SMTP_CONNECT, 3, t, t + d, a))
            t += d
        # send
        d = int(rng.lognormvariate(3.5, 0.7) * ms)
        if rng.random() < 0.005:  # a slow SMTP server now and then
            d = rng.randint(2_000, 6_000) * ms
        recipients = rng.randint(1, 3)
        a = {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: "smtp", attr.SERVER_ADDRESS: "smtp.local",
             attr.RECIPIENTS_COUNT: recipients, attr.RECIPIENTS_DOMAINS: ["example.org"], attr.MESSAGE_BYTES: 4096}
        error = None
        if rng.random() < self.error_rate:
            category, retryable, etype, pattern, fingerprint, _ = rng.choices(ERRORS, weights=self.error_weights)[0]
            a.update({attr.ERROR_TYPE: etype, attr.ERROR_CATEGORY: category, attr.ERROR_RETRYABLE: retryable,
                      attr.ERROR_PATTERN: pattern, attr.ERROR_FINGERPRINT: fingerprint})
            if category == "recipient":
                a[attr.RECIPIENTS_REFUSED] = recipients
            error = pattern
        error_attrs = {k: a[k] for k in (attr.ERROR_TYPE, attr.ERROR_CATEGORY, attr.ERROR_RETRYABLE,
                                          attr.ERROR_PATTERN, attr.ERROR_FINGERPRINT) if k in a}
        self.slow_attrs(a, attr.SPAN_SEND, d, 2000)
        self.memory(a, t + d, self.leak)
        spans.append(self.span(trace_id, root, attr.SPAN_SEND, 3, t, t + d, a, error))
        spans[-1]["_error_attrs"] = error_attrs
        t += d
        # the process root
        a = {attr.OPERATION: attr.OP_QUEUE_PROCESS, attr.MESSAGING_SYSTEM: "redis",
             attr.MESSAGING_OPERATION_TYPE: "process", attr.MESSAGING_DESTINATION_NAME: QUEUE}
        if error:  # the exception propagated through the process span, which the errors stage tags alike
            a.update({k: v for k, v in spans[-1]["_error_attrs"].items()})
        del spans[-1]["_error_attrs"]
        self.memory(a, t + ms)
        r = self.span(trace_id, None, f"process {QUEUE}", 5, root_start, t + ms, a, error)
        r["spanId"] = root["spanId"]
        spans.append(r)
        self.now = t + ms + int(rng.expovariate(1 / 5) * ms)
        return spans

    def health(self) -> list[dict]:
        d = int(self.rng.lognormvariate(-0.5, 0.3) * 1_000_000)
        s = self.span(self.hex(128), None, "GET /health", 2, self.now, self.now + d, {"http.request.method": "GET"})
        self.now += d
        return [s]


def _resource(i: int) -> dict:
    return {"attributes": [_kv(attr.SERVICE_NAME, "newsletter-worker" if i == 0 else f"newsletter-worker-{i}"),
                           _kv(attr.SERVICE_INSTANCE_ID, f"instance-{i}"), _kv("telemetry.sdk.language", "python")]}


def write_trace_file(path, spans: int, *, seed: int = 7, spans_per_line: int = 200, services: int = 1,
                     leak_bytes_per_send: int = 0, error_rate: float = 0.03) -> dict:
    """Write about `spans` spans (whole traces; at least `spans`); returns {"spans", "traces", "lines"}."""
    gen = _Gen(seed, services, leak_bytes_per_send, error_rate)
    resources = [_resource(i) for i in range(services)]
    written = traces = lines = 0
    pending: list[dict] = []
    with open(path, "w", encoding="utf-8") as out:
        def flush(batch):
            nonlocal lines
            by_service = {}
            for service, s in batch:
                by_service.setdefault(service, []).append(s)
            doc = {"resourceSpans": [
                {"resource": resources[i], "scopeSpans": [{"scope": {"name": "mailscope.instrumentation"}, "spans": ss}]}
                for i, ss in by_service.items()
            ]}
            out.write(json.dumps(doc, separators=(",", ":")))
            out.write("\n")
            lines += 1

        while written < spans:
            service = traces % services
            trace = gen.health() if gen.rng.random() < 0.2 else gen.journey()
            traces += 1
            written += len(trace)
            pending.extend((service, s) for s in trace)
            if len(pending) >= spans_per_line:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
    return {"spans": written, "traces": traces, "lines": lines}

"""`mailscope report --jaeger URL`: read spans from Jaeger's query API instead of files.

Jaeger v2's `/api/v3/traces` answers in OTLP JSON, the same shape the files
hold, so its spans go through the same reader and the same model as a file's.

Memory stays bounded and long fetches show progress: the time window is read
slice by slice, each asking for at most `page_traces` traces. A slice that
comes back full may have left traces out, so it is split in two and each half
is fetched again. A trace is counted in the slice that holds its earliest span
of the service asked for (that slice's query always returns it), so one that
crosses a slice boundary is counted once. Without `--service`,
every service Jaeger knows is read in turn, and traces already counted for an
earlier service are not counted again.

Any failure (Jaeger unreachable, an HTTP error, an answer that is not OTLP JSON)
raises `JaegerError` with one line to print.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from typing import Iterator

from mailscope.exporters.otlp_file import SpanReader

PAGE_TRACES = 200
DEFAULT_WINDOW_NS = 24 * 3600 * 10**9  # without --since: the last day
MIN_SLICE_NS = 10**6  # a slice this narrow is not split further
TIMEOUT_S = 30.0
MAX_BODY_BYTES = 256 * 1024 * 1024
PROGRESS_EVERY_S = 1.0
MAX_SEEN_TRACES = 200_000  # trace ids remembered across services, to count a trace once


class JaegerError(Exception):
    """One line for the user; the report exits non-zero."""


def _rfc3339(ns: int) -> str:
    stamp = _dt.datetime.fromtimestamp(ns // 10**9, tz=_dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


def _hex_id(value, size: int):
    """OTLP JSON ids are hex; protobuf JSON writes bytes as base64. Return hex either way."""
    if not isinstance(value, str) or not value:
        return value
    if len(value) == 2 * size:
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) == size else value


def _no_traces(body: str) -> bool:
    """Jaeger's 404 for a query that matched nothing: {"error": {"httpCode": 404, "message": "No traces found"}}."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("httpCode") == 404


class JaegerClient:
    def __init__(self, base_url: str, timeout: float = TIMEOUT_S):
        if not base_url.startswith(("http://", "https://")):
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str, params: dict | None = None):
        url = self.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if exc.code == 404 and path.startswith("/api/v3/traces") and _no_traces(detail):
                return None  # Jaeger's answer when no trace matches
            raise JaegerError(f"Jaeger at {self.base_url} answered HTTP {exc.code} for {path}: "
                              f"{' '.join(detail.split())[:200] or exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise JaegerError(f"cannot reach Jaeger at {self.base_url}: {reason}") from None
        if len(body) > MAX_BODY_BYTES:
            raise JaegerError(f"Jaeger's answer for {path} is larger than {MAX_BODY_BYTES // 2**20} MiB")
        return self._documents(body, path)

    def _documents(self, body: bytes, path: str) -> list:
        """The JSON documents of an answer: one, or several in a row (a streamed answer)."""
        text = body.decode("utf-8", "replace")
        decoder = json.JSONDecoder()
        docs, at = [], 0
        try:
            while True:
                while at < len(text) and text[at].isspace():
                    at += 1
                if at >= len(text):
                    break
                doc, at = decoder.raw_decode(text, at)
                docs.append(doc)
        except ValueError:
            raise JaegerError(f"Jaeger's answer for {path} is not JSON (is {self.base_url} the query address, "
                              f"such as http://jaeger:16686?): {' '.join(text[:80].split())!r}") from None
        if not docs or not all(isinstance(d, dict) for d in docs):
            raise JaegerError(f"Jaeger's answer for {path} is not a JSON object")
        return docs

    def services(self) -> list[str]:
        docs = self.get("/api/v3/services")
        services = docs[0].get("services", []) if docs else None  # proto3 JSON leaves an empty list out
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise JaegerError("Jaeger's answer for /api/v3/services has no list of services")
        return sorted(services)

    def traces(self, service: str, start_ns: int, end_ns: int, limit: int) -> list:
        """resourceSpans of the traces with a span of `service` starting in [start_ns, end_ns]."""
        docs = self.get("/api/v3/traces", {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(start_ns),
            "query.start_time_max": _rfc3339(end_ns),
            "query.num_traces": str(limit),
            "query.raw_traces": "true",  # the spans as stored: no clock-skew adjustment, as in a file
        })
        batch = []
        for doc in docs or ():
            if "error" in doc and "result" not in doc:
                if _no_traces(json.dumps(doc)):
                    continue
                raise JaegerError(f"Jaeger reported an error for /api/v3/traces: {str(doc['error'])[:200]}")
            result = doc.get("result", doc)
            spans = result.get("resourceSpans") if isinstance(result, dict) else None
            if spans is None and isinstance(result, dict) and not result:
                continue
            if not isinstance(spans, list):
                raise JaegerError("Jaeger's answer for /api/v3/traces is not OTLP JSON (no resourceSpans)")
            batch.extend(spans)
        return batch


class JaegerSpans:
    """Iterate flattened spans (exporters/otlp_file.py's shape) from Jaeger, slice by slice."""

    def __init__(self, url: str, service: str | None, since_ns: int | None, until_ns: int | None,
                 page_traces: int = PAGE_TRACES, progress=None, client: JaegerClient | None = None):
        self.client = client or JaegerClient(url)
        self.service = service
        self.until_ns = until_ns if until_ns is not None else time.time_ns()
        self.since_ns = since_ns if since_ns is not None else self.until_ns - DEFAULT_WINDOW_NS
        self.page_traces = page_traces
        self.progress = progress if progress is not None else sys.stderr
        self.reader = SpanReader([])  # its record checks and skip counts, fed from the API
        self.traces = 0
        self.spans = 0
        self.requests = 0
        self._seen: OrderedDict = OrderedDict()
        self._last_note = time.monotonic()

    def _note(self, service: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_note >= PROGRESS_EVERY_S:
            self._last_note = now
            self.progress.write(f"mailscope report: {self.traces:,} traces, {self.spans:,} spans read from Jaeger "
                                f"(service {service}, {self.requests} requests)\n")
            self.progress.flush()

    def _slices(self, service: str) -> Iterator[list]:
        pending = [(self.since_ns, self.until_ns)]
        while pending:
            start, end = pending.pop()
            self.requests += 1
            batch = self.client.traces(service, start, end, self.page_traces)
            spans = list(self.reader.spans_of(batch))
            trace_ids = {s["trace_id"] for s in spans}
            if len(trace_ids) >= self.page_traces and end - start > MIN_SLICE_NS:
                middle = start + (end - start) // 2
                pending += [(middle + 1, end), (start, middle)]  # earlier half next
                continue
            yield start, end, spans

    def __iter__(self) -> Iterator[dict]:
        services = [self.service] if self.service is not None else self.client.services()
        for service in services:
            for start, end, spans in self._slices(service):
                first: dict = {}
                for span in spans:
                    span["trace_id"] = _hex_id(span["trace_id"], 16)
                    span["span_id"] = _hex_id(span["span_id"], 8)
                    span["parent_span_id"] = _hex_id(span["parent_span_id"], 8)
                    for link in span["links"]:
                        link["trace_id"] = _hex_id(link["trace_id"], 16)
                        link["span_id"] = _hex_id(link["span_id"], 8)
                    if span["resource"].get("service.name") != service:
                        continue
                    trace_id = span["trace_id"]
                    if trace_id not in first or span["start_ns"] < first[trace_id]:
                        first[trace_id] = span["start_ns"]
                # a trace belongs to the slice holding its earliest span of this service (that slice's
                # query returns it), and to the first service read
                mine = {t for t, s in first.items() if start <= s <= end and t not in self._seen}
                for trace_id in mine:
                    self._seen[trace_id] = None
                    if len(self._seen) > MAX_SEEN_TRACES:
                        self._seen.popitem(last=False)
                self.traces += len(mine)
                for span in spans:
                    if span["trace_id"] in mine:
                        self.spans += 1
                        yield span
                self._note(service)
            self._note(service, force=True)

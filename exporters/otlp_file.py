"""Reading OTLP JSON-lines files (the `otlp_json_file` exporters' output, or a Collector's file exporter).

`read_spans(paths)` streams flattened spans, one dict each, and never holds a
whole file in memory. Lines that are not OTLP JSON, and records in them that
miss fields, are skipped and counted in `SpanReader.skipped`. `read_metric_points(paths)` does the same for metrics.

A flattened span:
    {"trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns",
     "attributes": {...}, "events": [{"name", "time_ns", "attributes"}],
     "links": [{"trace_id", "span_id", "attributes"}],
     "status_code": "UNSET"|"OK"|"ERROR", "status_message", "resource": {...}, "scope": name}
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Iterator

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def any_value(value: dict):
    """Decode an OTLP JSON AnyValue."""
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return key_values((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def key_values(items) -> dict:
    return {kv["key"]: any_value(kv.get("value", {})) for kv in items or () if isinstance(kv, dict) and "key" in kv}


def _enum(value, table):
    if isinstance(value, str):
        for name in table.values():
            if value.endswith(name):
                return name
        return value
    return table.get(value or 0, str(value))


def _flatten_span(span: dict, resource: dict, scope: str) -> dict:
    status = span.get("status") or {}
    return {
        "trace_id": span["traceId"],
        "span_id": span["spanId"],
        "parent_span_id": span.get("parentSpanId") or None,
        "name": span["name"],
        "kind": _enum(span.get("kind", 0), KINDS),
        "start_ns": int(span["startTimeUnixNano"]),
        "end_ns": int(span["endTimeUnixNano"]),
        "attributes": key_values(span.get("attributes")),
        "events": [
            {"name": e.get("name", ""), "time_ns": int(e.get("timeUnixNano", 0)), "attributes": key_values(e.get("attributes"))}
            for e in span.get("events") or ()
        ],
        "links": [
            {"trace_id": link.get("traceId"), "span_id": link.get("spanId"), "attributes": key_values(link.get("attributes"))}
            for link in span.get("links") or ()
        ],
        "status_code": _enum(status.get("code", 0), STATUS_CODES),
        "status_message": status.get("message", ""),
        "resource": resource,
        "scope": scope,
    }


def _expand_paths(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    yield full
        else:
            yield path


_READ_ERRORS = (KeyError, TypeError, ValueError, AttributeError, RecursionError)
MAX_LINE_CHARS = 64 * 1024 * 1024


def _open_text(path: str):
    if path.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


class SpanReader:
    """Iterate the spans of OTLP JSON-lines files (`.gz` too); count what could not be read.

    `skipped_lines`: lines that are not OTLP trace JSON (truncated, other JSON,
    longer than `max_line_chars`); `skipped_records`: resource/scope/span records
    inside a readable line that miss fields or have the wrong types. `skipped`
    is their sum. Reading never raises for bad content (only for I/O errors).
    """

    def __init__(self, paths: Iterable[str], max_line_chars: int = MAX_LINE_CHARS):
        self.paths = list(paths)
        self.max_line_chars = max_line_chars
        self.skipped_lines = 0
        self.skipped_records = 0
        self.lines = 0
        self.files = 0

    @property
    def skipped(self) -> int:
        return self.skipped_lines + self.skipped_records

    def _lines(self, handle) -> Iterator[str]:
        limit = self.max_line_chars
        while True:
            line = handle.readline(limit)
            if not line:
                return
            if len(line) >= limit and not line.endswith("\n"):
                # an oversized line: drop it whole without holding it
                while True:
                    rest = handle.readline(limit)
                    if not rest or rest.endswith("\n"):
                        break
                self.lines += 1
                self.skipped_lines += 1
                continue
            yield line

    def __iter__(self) -> Iterator[dict]:
        for path in _expand_paths(self.paths):
            self.files += 1
            with _open_text(path) as handle:
                for line in self._lines(handle):
                    if not line.strip():
                        continue
                    self.lines += 1
                    try:
                        doc = json.loads(line)
                        batch = doc["resourceSpans"]
                    except _READ_ERRORS:
                        self.skipped_lines += 1
                        continue
                    if not isinstance(batch, list):
                        self.skipped_lines += 1
                        continue
                    yield from self.spans_of(batch)

    def spans_of(self, batch) -> Iterator[dict]:
        """The flattened spans of one `resourceSpans` list (a file line's, or a query API's answer)."""
        for rs in batch:
            try:
                resource = key_values((rs.get("resource") or {}).get("attributes"))
                scope_spans = rs.get("scopeSpans") or []
                if not isinstance(scope_spans, list):
                    raise TypeError("scopeSpans")
            except _READ_ERRORS:
                self.skipped_records += 1
                continue
            for ss in scope_spans:
                try:
                    scope = (ss.get("scope") or {}).get("name", "")
                    spans = ss.get("spans") or []
                    if not isinstance(spans, list):
                        raise TypeError("spans")
                except _READ_ERRORS:
                    self.skipped_records += 1
                    continue
                for span in spans:
                    try:
                        flat = _flatten_span(span, resource, scope)
                    except _READ_ERRORS:
                        self.skipped_records += 1
                        continue
                    yield flat


def read_spans(*paths: str) -> list[dict]:
    """All spans of the files (convenience for small files and tests)."""
    return list(SpanReader(paths))


def read_metric_points(*paths: str) -> Iterator[dict]:
    """Flattened metric data points: {"name", "unit", "type", "attributes", "value"|"count"/"sum", "resource"}."""
    for path in _expand_paths(paths):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    doc = json.loads(line)
                    batch = doc["resourceMetrics"]
                except (ValueError, KeyError, TypeError):
                    continue
                for rm in batch:
                    resource = key_values((rm.get("resource") or {}).get("attributes"))
                    for sm in rm.get("scopeMetrics") or ():
                        for metric in sm.get("metrics") or ():
                            for kind in ("sum", "gauge", "histogram"):
                                data = metric.get(kind)
                                if not data:
                                    continue
                                for point in data.get("dataPoints") or ():
                                    item = {
                                        "name": metric.get("name"),
                                        "unit": metric.get("unit", ""),
                                        "type": kind,
                                        "attributes": key_values(point.get("attributes")),
                                        "resource": resource,
                                    }
                                    if kind == "histogram":
                                        item["count"] = int(point.get("count", 0))
                                        item["sum"] = float(point.get("sum", 0.0))
                                    else:
                                        item["value"] = point.get("asDouble", point.get("asInt"))
                                        if isinstance(item["value"], str):
                                            item["value"] = int(item["value"])
                                    yield item

"""Jaeger's query API and OTLP JSON spans, typed as they were exported.

    jaeger = JaegerQuery("http://127.0.0.1:16686")
    spans = jaeger.find_spans("newsletter-worker", start, end)   # /api/v3/traces (OTLP JSON)
    jaeger.answers                                               # every raw answer body, for privacy checks
    spans = list(file_spans(path))                                # a Collector file exporter's OTLP JSON lines

A span here is a dict: trace_id, span_id, parent_span_id (hex), name, status_code ("ERROR", "OK",
"UNSET"), start_ns, end_ns, service, attributes and resource as {key: OTLP JSON value} such as
{"boolValue": true} or {"intValue": "42"}, so that types can be compared, not only values.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

STATUS = {0: "UNSET", 1: "OK", 2: "ERROR", "STATUS_CODE_UNSET": "UNSET", "STATUS_CODE_OK": "OK",
          "STATUS_CODE_ERROR": "ERROR"}


class JaegerError(RuntimeError):
    pass


def _hex_id(value: str | None) -> str:
    """OTLP JSON ids are hex; a protobuf JSON encoder writes base64: accept both."""
    if not value:
        return ""
    try:
        int(value, 16)
        if len(value) in (16, 32):
            return value.lower()
    except ValueError:
        pass
    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, ValueError):
        return value


def _attrs(items) -> dict:
    return {item["key"]: item.get("value", {}) for item in items or []}


def otlp_spans(document: dict):
    """The spans of one OTLP JSON document ({"resourceSpans": [...]})."""
    for resource_spans in document.get("resourceSpans") or []:
        resource = _attrs((resource_spans.get("resource") or {}).get("attributes"))
        service = (resource.get("service.name") or {}).get("stringValue", "")
        for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or []:
            for span in scope_spans.get("spans") or []:
                status = (span.get("status") or {}).get("code", 0)
                yield {
                    "trace_id": _hex_id(span.get("traceId")),
                    "span_id": _hex_id(span.get("spanId")),
                    "parent_span_id": _hex_id(span.get("parentSpanId")),
                    "name": span.get("name", ""),
                    "status_code": STATUS.get(status, str(status)),
                    "start_ns": int(span.get("startTimeUnixNano") or 0),
                    "end_ns": int(span.get("endTimeUnixNano") or 0),
                    "service": service,
                    "attributes": _attrs(span.get("attributes")),
                    "resource": resource,
                }


def file_spans(path: Path):
    """Spans of a Collector `file` exporter's output (one OTLP JSON document per line)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield from otlp_spans(json.loads(line))


def _rfc3339(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JaegerQuery:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.answers: list[str] = []  # every body received, for the privacy checks

    def get(self, path: str, **params) -> dict:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if exc.code == 404:
                return {}
            raise JaegerError(f"GET {url}: HTTP {exc.code}: {detail}") from None
        self.answers.append(body)
        return json.loads(body) if body.strip() else {}

    def services(self) -> list[str]:
        return self.get("/api/services").get("data") or []

    def find_spans(self, service: str, start: float, end: float, num_traces: int = 100000) -> list[dict]:
        """/api/v3/traces: every span of the traces with a span of `service` between two unix times."""
        answer = self.get(
            "/api/v3/traces",
            **{
                "query.service_name": service,
                "query.start_time_min": _rfc3339(start),
                "query.start_time_max": _rfc3339(end),
                "query.num_traces": num_traces,
            },
        )
        return list(otlp_spans(answer.get("result") or answer))

    def trace_v1(self, trace_id: str) -> dict:
        """/api/traces/{id}: one trace in Jaeger's own model (tags typed as Jaeger stores them)."""
        return self.get(f"/api/traces/{trace_id}")

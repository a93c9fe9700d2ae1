"""`mailscope report PATH...` / `--jaeger URL`: the debugging report from OTLP JSON trace files or Jaeger.

Reads OTLP JSON-lines files (the `otlp_json_file` exporter's output or an
OpenTelemetry Collector file exporter's; folders are read file by file, `.gz`
files are decompressed) as a stream, aggregates them in bounded memory
(model), and prints the terminal view (text), or with `--json`
the report document, and with `--html FILE` also writes a self-contained page
(html). With `--jaeger URL` the spans come from Jaeger's query API instead
(jaeger.py), through the same model.

Exit status: 0 on success, including input without spans (with a message on
stderr); 1 when a path is missing or unreadable, or Jaeger cannot be read; 2 for
an unusable option value.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import os
import sys

from mailscope.exporters.otlp_file import SpanReader
from mailscope.report.jaeger import JaegerError
from mailscope.report.model import Filters, ReportModel

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2


class UsageError(ValueError):
    pass


def parse_time(text: str | None, option: str) -> int | None:
    """ISO 8601 (naive means UTC) or unix seconds -> ns since the epoch."""
    if text is None:
        return None
    value = text.strip()
    try:
        seconds = decimal.Decimal(value)
        if seconds.is_finite():
            return int(seconds * 1_000_000_000)
    except decimal.InvalidOperation:
        pass
    try:
        stamp = _dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected ISO 8601 (2024-05-01T12:00:00Z) or unix seconds") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return int(stamp.timestamp() * 1e6) * 1000


def _check_paths(paths) -> list[str]:
    problems = []
    for path in paths:
        if not os.path.exists(path):
            problems.append(f"{path}: no such file or directory")
        elif not os.access(path, os.R_OK):
            problems.append(f"{path}: permission denied")
    return problems


def build_report(paths, filters: Filters | None = None, thresholds=None) -> dict:
    """Read `paths` and return the report document (raises OSError for I/O failures)."""
    reader = SpanReader(paths)
    model = ReportModel(filters, thresholds=thresholds)
    add = model.add
    for span in reader:
        add(span)
    inputs = {
        "paths": [str(p) for p in paths],
        "files": reader.files,
        "lines": reader.lines,
        "skipped": {
            "lines": reader.skipped_lines,
            "records": reader.skipped_records,
            "spans": model.invalid_spans,
            "total": reader.skipped + model.invalid_spans,
        },
    }
    return model.result(inputs)


def build_report_from_jaeger(url: str, filters: Filters, thresholds=None, progress=None, page_traces=None) -> dict:
    """Read the filters' window from Jaeger and return the report document (raises JaegerError)."""
    from mailscope.report.jaeger import PAGE_TRACES, JaegerSpans

    source = JaegerSpans(url, filters.service, filters.since_ns, filters.until_ns, progress=progress,
                         page_traces=page_traces or PAGE_TRACES)
    model = ReportModel(filters, thresholds=thresholds)
    add = model.add
    for span in source:
        add(span)
    inputs = {
        "paths": [],
        "jaeger": source.client.base_url,
        "window": {"since_unix_nano": source.since_ns, "until_unix_nano": source.until_ns},
        "traces_read": source.traces,
        "requests": source.requests,
        "files": 0,
        "lines": 0,
        "skipped": {
            "lines": 0,
            "records": source.reader.skipped_records,
            "spans": model.invalid_spans,
            "total": source.reader.skipped_records + model.invalid_spans,
        },
    }
    return model.result(inputs)


def _empty_message(report: dict) -> str | None:
    inp = report["inputs"]
    if report["summary"]["spans"]:
        return None
    skipped = inp["skipped"]["total"]
    if inp.get("jaeger"):
        return f"mailscope report: no spans found in Jaeger at {inp['jaeger']} ({inp['traces_read']:,} traces read)"
    where = ", ".join(inp["paths"])
    if inp["spans_read"] and inp["spans_read"] > inp["skipped"]["spans"]:
        return f"mailscope report: no spans match the filters ({inp['spans_read']:,} spans read from {where})"
    detail = f"; {skipped:,} unreadable lines or records skipped" if skipped else ""
    return f"mailscope report: no spans found in {where} ({inp['lines']:,} lines read{detail})"


def run_report(args) -> int:
    err = sys.stderr
    out = sys.stdout
    jaeger = getattr(args, "jaeger", None)
    if bool(jaeger) == bool(args.paths):
        err.write("mailscope report: give trace files or --jaeger URL, not both or neither\n")
        return EXIT_USAGE
    problems = _check_paths(args.paths)
    if problems:
        for problem in problems:
            err.write(f"mailscope report: {problem}\n")
        return EXIT_INPUT
    try:
        filters = Filters(
            service=getattr(args, "service", None),
            since_ns=parse_time(getattr(args, "since", None), "--since"),
            until_ns=parse_time(getattr(args, "until", None), "--until"),
            operation=getattr(args, "operation", None),
        )
        if filters.since_ns is not None and filters.until_ns is not None and filters.since_ns >= filters.until_ns:
            raise UsageError("--since must be before --until")
    except UsageError as exc:
        err.write(f"mailscope report: {exc}\n")
        return EXIT_USAGE
    try:
        report = build_report_from_jaeger(jaeger, filters, progress=err) if jaeger else build_report(args.paths, filters)
    except OSError as exc:
        err.write(f"mailscope report: cannot read {exc.filename or ''}: {exc.strerror or exc}\n")
        return EXIT_INPUT
    except JaegerError as exc:  # one line, never a traceback
        err.write(f"mailscope report: {exc}\n")
        return EXIT_INPUT

    message = _empty_message(report)
    if message:
        err.write(message + "\n")
    if getattr(args, "html", None):
        from mailscope.report.html import render as render_html

        try:
            with open(args.html, "w", encoding="utf-8") as handle:
                handle.write(render_html(report))
        except OSError as exc:
            err.write(f"mailscope report: cannot write {args.html}: {exc.strerror or exc}\n")
            return EXIT_INPUT
        err.write(f"mailscope report: HTML report written to {args.html}\n")
    if getattr(args, "json", False):
        json.dump(report, out, ensure_ascii=False, indent=2, sort_keys=True)
        out.write("\n")
    elif not message:
        from mailscope.report.text import render as render_text, use_colour

        out.write(render_text(report, colour=use_colour(out)))
    out.flush()
    return EXIT_OK

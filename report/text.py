"""The terminal view of `mailscope report`: plain-text tables with units.

ANSI colour is used only when the output stream is a TTY (and NO_COLOR is not
set); the text is ASCII so any terminal encoding can print it.
"""

from __future__ import annotations

import os

from mailscope.report import delivery

MAX_OTHER_SPAN_ROWS = 15
MAX_PATTERN_ROWS = 15
NAME_WIDTH = 40
BAR_WIDTH = 50


class Style:
    def __init__(self, colour: bool):
        self.colour = colour

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour and text else text

    def bold(self, text):
        return self._wrap("1", text)

    def dim(self, text):
        return self._wrap("2", text)

    def red(self, text):
        return self._wrap("31", text)

    def yellow(self, text):
        return self._wrap("33", text)

    def cyan(self, text):
        return self._wrap("36", text)


def use_colour(stream) -> bool:
    try:
        return stream.isatty() and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False


# --- units ---------------------------------------------------------------------
def fmt_ms(ms) -> str:
    if ms is None:
        return "-"
    if ms < 0.001:
        return f"{ms * 1e6:.0f} ns"
    if ms < 1:
        return f"{ms * 1000:.0f} us"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def fmt_bytes(n, signed: bool = True) -> str:
    if n is None:
        return "-"
    sign = ("+" if n > 0 else "-" if n < 0 else "") if signed else ""
    v = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{sign}{v:.0f} {unit}" if unit == "B" else f"{sign}{v:.1f} {unit}"
        v /= 1024
    return f"{sign}{v:.1f} GiB"


def fmt_pct(x) -> str:
    if x is None:
        return "-"
    if 0 < x < 0.001:
        return "<0.1%"
    return f"{x * 100:.1f}%"


def fmt_int(n) -> str:
    return f"{n:,}"


def fmt_duration_s(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def _short(text, width: int = NAME_WIDTH) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: list[str], rows: list[list[str]], align: str, style: Style, indent: str = "  ") -> list[str]:
    """`align`: one of 'l'/'r' per column."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)]
        return (indent + "  ".join(parts)).rstrip()

    return [style.bold(line(headers))] + [line(r) for r in rows]


# --- sections ------------------------------------------------------------------
def _summary(r: dict, style: Style) -> list[str]:
    s = r["summary"]
    inp = r["inputs"]
    out = [style.bold("mailscope report")]
    out.append(f"  input     {fmt_int(inp.get('files', 0))} file(s), {fmt_int(inp.get('lines', 0))} lines, "
               f"{fmt_int(inp['spans_read'])} spans read")
    skipped = inp.get("skipped", {})
    if skipped.get("total"):
        out.append(style.yellow(
            f"  skipped   {fmt_int(skipped['lines'])} unreadable lines, {fmt_int(skipped['records'])} malformed records, "
            f"{fmt_int(skipped['spans'])} unusable spans"))
    filters = {k: v for k, v in inp["filters"].items() if v is not None}
    if filters:
        out.append("  filters   " + ", ".join(f"{k}={v}" for k, v in filters.items()))
    if s["spans"]:
        out.append(f"  window    {s['start']} -> {s['end']} ({fmt_duration_s(s['duration_s'])})")
    out.append(f"  services  {', '.join(s['services']) or '-'}")
    traces = fmt_int(s["traces"]) + (" (estimated)" if s["traces_estimated"] else "")
    out.append(f"  spans     {fmt_int(s['spans'])} in {traces} traces")
    e = s["emails"]
    out.append(f"  emails    sent {fmt_int(e['sent'])}, failed {fmt_int(e['failed'])}; "
               f"recipients {fmt_int(e['recipients'])}, refused {fmt_int(e['refused'])}")
    rate = f"{fmt_int(s['error_spans'])} error spans ({fmt_pct(s['error_rate'])})"
    out.append("  errors    " + (style.red(rate) if s["error_spans"] else rate))
    return out


def _operations(r: dict, style: Style) -> list[str]:
    ops = r["operations"]
    mine = [o for o in ops if o["kind"] == "operation"]
    others = [o for o in ops if o["kind"] != "operation"]
    shown = mine + others[:MAX_OTHER_SPAN_ROWS]
    rows = []
    for o in shown:
        lat = o["latency_ms"]
        mem = o["memory_delta_bytes"] or {}
        err = fmt_pct(o["error_rate"])
        rows.append([
            _short(o["key"]) + ("" if o["kind"] == "operation" else " *"),
            fmt_int(o["count"]),
            err,
            fmt_ms(lat["p50"]), fmt_ms(lat["p95"]), fmt_ms(lat["p99"]), fmt_ms(lat["max"]),
            fmt_ms(o["total_ms"]),
            fmt_bytes(mem.get("mean")), fmt_bytes(mem.get("p95")),
        ])
    out = [style.bold("OPERATIONS") + style.dim("  (* = span name of another instrumentation)")]
    out += table(["operation", "count", "err%", "p50", "p95", "p99", "max", "total", "mem mean", "mem p95"],
                 rows, "lrrrrrrrrr", style)
    if len(others) > MAX_OTHER_SPAN_ROWS:
        out.append(style.dim(f"  ... {len(others) - MAX_OTHER_SPAN_ROWS} more span names in --json"))
    return out


def _journey(r: dict, style: Style) -> list[str]:
    j = r["journey"]
    out = [style.bold("EMAIL JOURNEY") + f"  {fmt_int(j['journeys'])} traces with a send, {fmt_int(j['emails'])} emails"]
    figure = delivery.journey_figure(j.get("accepted_to_delivered"))
    if figure:
        out.append("  " + figure)
    if not j["journeys"]:
        out.append("  no trace contains a send")
        return out
    rows = []
    for st in j["stages"]:
        bar = "#" * round(st["share"] * BAR_WIDTH)
        rows.append([st["stage"], fmt_pct(st["share"]), fmt_ms(st["mean_ms"]), fmt_ms(st["total_ms"]),
                     fmt_int(st["bottleneck_journeys"]), bar])
    out += table(["stage", "share", "mean/journey", "total", "bottleneck in", ""], rows, "lrrrrl", style)
    if j["most_common_bottleneck"]:
        out.append("  most common bottleneck: " + style.bold(j["most_common_bottleneck"]))
    if j["split_traces"] or j["truncated_traces"]:
        out.append(style.dim(f"  {j['split_traces']} traces arrived in pieces too far apart to join, "
                             f"{j['truncated_traces']} were too large to resolve fully"))
    return out


def _slow(r: dict, style: Style) -> list[str]:
    sl = r["slow"]
    out = [style.bold("SLOW OPERATIONS") + f"  {fmt_int(sl['total'])} spans marked slow"]
    if sl["by_name_reason"]:
        rows = [[_short(x["span_name"]), x["reason"], fmt_int(x["count"])] for x in sl["by_name_reason"][:15]]
        out += table(["span name", "reason", "count"], rows, "llr", style)
    if sl["consistently_slow"]:
        out.append("  consistently slow: " + style.yellow(", ".join(
            f"{x['span_name']} ({fmt_int(x['count'])})" for x in sl["consistently_slow"][:10])))
    if sl["slowest"]:
        out.append("  slowest spans:")
        rows = [[fmt_ms(x["duration_ms"]), _short(x["span_name"], 32), x["trace_id"], x["start"] or "",
                 ("slow " if x["slow"] else "") + ("error" if x["error"] else "")] for x in sl["slowest"]]
        out += table(["duration", "span name", "trace id", "start", ""], rows, "rllll", style)
    return out


def _errors(r: dict, style: Style) -> list[str]:
    er = r["errors"]
    out = [style.bold("ERROR PATTERNS") + f"  {fmt_int(er['total'])} errors, {len(er['patterns'])} patterns"]
    if not er["patterns"]:
        return out
    rows = []
    for p in er["patterns"][:MAX_PATTERN_ROWS]:
        retry = {True: "yes", False: "no", None: "-"}[p["retryable"]]
        rows.append([fmt_int(p["count"]), p["category"] or "-", retry, p["first_seen"] or "", p["last_seen"] or "",
                     p["example_trace_id"] or "", _short(p["pattern"] or p["error_type"] or p["key"], 60)])
    out += table(["count", "category", "retry", "first seen", "last seen", "example trace", "pattern"], rows,
                 "rllllll", style)
    if len(er["patterns"]) > MAX_PATTERN_ROWS:
        out.append(style.dim(f"  ... {len(er['patterns']) - MAX_PATTERN_ROWS} more patterns in --json"))
    out.append("  suggested actions:")
    for c in er["by_category"]:
        out.append(f"    {c['category']} ({fmt_int(c['count'])}): {c['suggested_action']}")
    return out


def _templates(r: dict, style: Style) -> list[str]:
    t = r["templates"]
    out = [style.bold("TEMPLATES") + f"  {fmt_int(t['loads'])} loads, {fmt_int(t['renders'])} renders"]
    if not t["by_engine"]:
        out.append("  no template spans")
        return out
    rows = [[e["engine"], fmt_int(e["loads"]), fmt_pct(e["hit_ratio"]), fmt_int(e["renders"]),
             fmt_int(e["renders_with_missing"])] for e in t["by_engine"]]
    out += table(["engine", "loads", "cache hits", "renders", "with missing variables"], rows, "lrrrr", style)
    if t["missing_variables"]:
        out.append("  missing variables (names only):")
        rows = [[_short(m["template"]), _short(m["variable"], 32), fmt_int(m["renders"])]
                for m in t["missing_variables"][:MAX_PATTERN_ROWS]]
        out += table(["template", "variable", "renders"], rows, "llr", style, indent="    ")
        hidden = len(t["missing_variables"]) - MAX_PATTERN_ROWS
        if hidden > 0:
            out.append(style.dim(f"    ... {hidden} more in --json"))
    return out


def _recommendations(r: dict, style: Style) -> list[str]:
    recs = r["recommendations"]
    out = [style.bold("RECOMMENDATIONS")]
    if not recs:
        out.append("  nothing stands out")
        return out
    paint = {"critical": style.red, "warning": style.yellow, "info": style.cyan}
    for rec in recs:
        out.append(f"  {paint[rec['severity']]('[' + rec['severity'] + ']')} {rec['title']}")
        out.append(f"      {rec['detail']}")
    return out


def render(report: dict, colour: bool = False) -> str:
    style = Style(colour)
    sections = [_summary(report, style)]
    if report["summary"]["spans"]:
        sections += [
            _operations(report, style),
            _journey(report, style),
            _slow(report, style),
            _errors(report, style),
            _templates(report, style),
            *([delivery.text_lines(report, style)] if report.get("delivery", {}).get("events") else []),
            _recommendations(report, style),
        ]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"

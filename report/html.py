"""The `--html FILE` page of `mailscope report`: one self-contained file.

No network fetches: the CSS and the script are inline, and the report document
(exactly the `--json` output) is embedded as
`<script type="application/json" id="report-data">`. The tables are rendered
here; the three charts (latency distribution per operation, error patterns over
time, the journey breakdown bar) are drawn as inline SVG by the page's script
from that embedded data, so what the charts show is what the JSON says. Every
chart mark carries `data-*` attributes with the numbers it draws.
"""

from __future__ import annotations

import html
import json

from mailscope.report import delivery
from mailscope.report.text import fmt_bytes, fmt_duration_s, fmt_int, fmt_ms, fmt_pct

MAX_CHART_OPERATIONS = 20

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d1e3}
main{padding:10px 28px 40px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e6e8ee;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#eef1f7;border-radius:6px;padding:8px 14px;min-width:140px}
.card b{display:block;font-size:20px}
.sev-critical{color:#b3261e;font-weight:600}.sev-warning{color:#9a6700;font-weight:600}.sev-info{color:#0b6bcb;font-weight:600}
.muted{color:#6b7385}
svg text{font:11px system-ui,sans-serif;fill:#1d2433}
"""

_SCRIPT = r"""
(function(){
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];
  function el(name, attrs, parent, text){
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmtMs(ms){
    if (ms === null || ms === undefined) return '-';
    if (ms < 1) return Math.round(ms*1000) + ' us';
    if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + ' ms';
    return (ms/1000).toFixed(2) + ' s';
  }
  function empty(svg, text){ svg.setAttribute('height', 30); el('text', {x: 4, y: 20}, svg, text); }

  // 1. latency distribution per operation: one row per operation, one cell per latency bin
  (function(){
    var svg = document.getElementById('chart-latency');
    var bounds = data.latency_bounds_ms;
    var ops = data.operations.slice(0, __MAX_OPS__);
    if (!ops.length) return empty(svg, 'no spans');
    var left = 190, cell = 36, rowH = 22, top = 24, n = bounds.length + 1;
    svg.setAttribute('width', left + n*cell + 20);
    svg.setAttribute('height', top + ops.length*rowH + 30);
    for (var b = 0; b < n; b++) {
      if (b % 3 === 0) el('text', {x: left + b*cell, y: top - 8}, svg, b < bounds.length ? '<' + fmtMs(bounds[b]) : '>' + fmtMs(bounds[bounds.length-1]));
    }
    ops.forEach(function(op, i){
      var y = top + i*rowH;
      var label = op.key.length > 28 ? op.key.slice(0, 27) + '\u2026' : op.key;
      el('text', {x: 4, y: y + 15}, svg, label);
      var h = op.latency_histogram, max = Math.max.apply(null, h);
      h.forEach(function(count, b){
        var r = el('rect', {x: left + b*cell, y: y + 2, width: cell - 2, height: rowH - 4, rx: 2,
          fill: count ? PALETTE[0] : '#eef1f7', 'fill-opacity': count ? (0.15 + 0.85*count/max).toFixed(3) : 1,
          'class': 'lat-cell', 'data-op': op.key, 'data-bin': b, 'data-count': count}, svg);
        el('title', {}, r, op.key + ': ' + count + ' spans ' + (b < bounds.length ? '<= ' + fmtMs(bounds[b]) : '> ' + fmtMs(bounds[bounds.length-1])));
      });
      el('text', {x: left + n*cell + 4, y: y + 15, 'class': 'lat-p95', 'data-op': op.key, 'data-p95': op.latency_ms.p95}, svg, 'p95 ' + fmtMs(op.latency_ms.p95));
    });
    svg.setAttribute('width', left + n*cell + 110);
  })();

  // 2. error patterns over time: stacked bars, one series per top pattern
  (function(){
    var svg = document.getElementById('chart-errors');
    var tl = data.errors.timeline;
    if (!tl.series.length) return empty(svg, 'no errors');
    var nb = tl.series[0].counts.length, width = 900, height = 220, left = 40, top = 10, bottom = 40;
    var bw = Math.max(2, Math.floor((width - left) / nb));
    var totals = [];
    for (var b = 0; b < nb; b++) { var t = 0; tl.series.forEach(function(s){ t += s.counts[b]; }); totals.push(t); }
    var max = Math.max.apply(null, totals) || 1;
    svg.setAttribute('width', left + nb*bw + 260);
    svg.setAttribute('height', height + bottom);
    el('text', {x: 0, y: top + 10}, svg, String(max));
    el('text', {x: 0, y: height}, svg, '0');
    var labels = {};
    data.errors.patterns.forEach(function(p){ labels[p.key] = (p.category || '') + ': ' + (p.pattern || p.error_type || p.key); });
    var base = new Array(nb).fill(0);
    tl.series.forEach(function(s, si){
      var colour = PALETTE[si % PALETTE.length];
      s.counts.forEach(function(count, b){
        if (!count) return;
        var h = (height - top) * count / max;
        var y = height - (height - top) * (base[b] + count) / max;
        var r = el('rect', {x: left + b*bw, y: y.toFixed(2), width: Math.max(1, bw - 1), height: h.toFixed(2), fill: colour,
          'class': 'err-bar', 'data-series': s.key, 'data-bucket': b, 'data-count': count}, svg);
        el('title', {}, r, count + ' x ' + (labels[s.key] || s.key));
        base[b] += count;
      });
      var label = labels[s.key] || s.key;
      el('rect', {x: left + nb*bw + 12, y: top + si*18, width: 10, height: 10, fill: colour}, svg);
      el('text', {x: left + nb*bw + 26, y: top + si*18 + 9}, svg, label.length > 36 ? label.slice(0, 35) + '\u2026' : label);
    });
    var start = new Date(tl.start_unix_nano / 1e6);
    el('text', {x: left, y: height + 16}, svg, start.toISOString().replace('.000', ''));
    el('text', {x: left, y: height + 32, 'class': 'muted'}, svg, 'bucket ' + tl.bucket_seconds + ' s');
  })();

  // 3. journey breakdown: one stacked bar of stage shares
  (function(){
    var svg = document.getElementById('chart-journey');
    var j = data.journey;
    if (!j.journeys) return empty(svg, 'no trace contains a send');
    var width = 900, x = 0;
    svg.setAttribute('width', width + 20);
    svg.setAttribute('height', 80);
    j.stages.forEach(function(st, i){
      var w = width * st.share;
      var colour = PALETTE[i % PALETTE.length];
      if (w > 0) {
        var r = el('rect', {x: x.toFixed(2), y: 4, width: w.toFixed(2), height: 30, fill: colour,
          'class': 'journey-seg', 'data-stage': st.stage, 'data-share': st.share}, svg);
        el('title', {}, r, st.stage + ' ' + (st.share*100).toFixed(1) + '%');
      }
      x += w;
      el('rect', {x: i*150, y: 48, width: 10, height: 10, fill: colour}, svg);
      el('text', {x: i*150 + 14, y: 57}, svg, st.stage + ' ' + (st.share*100).toFixed(1) + '%');
    });
  })();
  document.body.setAttribute('data-charts', 'drawn');
})();
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers, rows, numeric=()) -> str:
    head = "".join(f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary(r) -> str:
    s = r["summary"]
    e = s["emails"]
    inp = r["inputs"]
    cards = [
        ("spans", fmt_int(s["spans"])),
        ("traces", fmt_int(s["traces"]) + (" (est.)" if s["traces_estimated"] else "")),
        ("emails sent", fmt_int(e["sent"])),
        ("sends failed", fmt_int(e["failed"])),
        ("recipients refused", fmt_int(e["refused"])),
        ("error rate", fmt_pct(s["error_rate"])),
        ("skipped input", fmt_int(inp.get("skipped", {}).get("total", 0))),
    ]
    html_cards = "".join(f'<div class="card"><span class="muted">{_e(k)}</span><b>{_e(v)}</b></div>' for k, v in cards)
    window = f"{_e(s['start'])} &rarr; {_e(s['end'])} ({_e(fmt_duration_s(s['duration_s']))})" if s["spans"] else "no spans"
    services = _e(", ".join(s["services"]) or "-")
    return (f'<section id="summary"><h2>Summary</h2><div class="cards">{html_cards}</div>'
            f'<p>Window: {window}<br>Services: {services}</p></section>')


def _operations(r) -> str:
    rows = []
    for o in r["operations"]:
        lat = o["latency_ms"]
        mem = o["memory_delta_bytes"] or {}
        rows.append([
            f"<code>{_e(o['key'])}</code>" + ("" if o["kind"] == "operation" else ' <span class="muted">span</span>'),
            _e(fmt_int(o["count"])), _e(fmt_pct(o["error_rate"])),
            _e(fmt_ms(lat["p50"])), _e(fmt_ms(lat["p95"])), _e(fmt_ms(lat["p99"])), _e(fmt_ms(lat["max"])),
            _e(fmt_ms(o["threshold_ms"])), _e(fmt_bytes(mem.get("mean"))), _e(fmt_bytes(mem.get("p95"))),
        ])
    table = _table(["operation", "count", "errors", "p50", "p95", "p99", "max", "threshold", "mem mean", "mem p95"],
                   rows, numeric=range(1, 10))
    return ('<section id="operations"><h2>Operations</h2>'
            '<h3>Latency distribution</h3><svg id="chart-latency" role="img" aria-label="latency distribution per operation"></svg>'
            f"{table}</section>")


def _journey(r) -> str:
    j = r["journey"]
    rows = [[_e(st["stage"]), _e(fmt_pct(st["share"])), _e(fmt_ms(st["mean_ms"])), _e(fmt_ms(st["total_ms"])),
             _e(fmt_int(st["bottleneck_journeys"]))] for st in j["stages"]]
    most = _e(j["most_common_bottleneck"] or "-")
    return (f'<section id="journey"><h2>Email journey</h2><p>{fmt_int(j["journeys"])} traces with a send, '
            f'{fmt_int(j["emails"])} emails. Most common bottleneck: <b>{most}</b>'
            f'{_e(". " + delivery.journey_figure(j.get("accepted_to_delivered")) if delivery.journey_figure(j.get("accepted_to_delivered")) else "")}</p>'
            '<svg id="chart-journey" role="img" aria-label="journey breakdown"></svg>'
            + _table(["stage", "share", "mean per journey", "total", "bottleneck in"], rows, numeric=range(1, 5))
            + "</section>")


def _slow(r) -> str:
    sl = r["slow"]
    by = _table(["span name", "reason", "count"],
                [[f"<code>{_e(x['span_name'])}</code>", _e(x["reason"]), _e(fmt_int(x["count"]))] for x in sl["by_name_reason"]],
                numeric=(2,))
    consistent = ", ".join(f"<code>{_e(x['span_name'])}</code> ({fmt_int(x['count'])})" for x in sl["consistently_slow"]) or "none"
    slowest = _table(["duration", "span name", "trace id", "start", "service"],
                     [[_e(fmt_ms(x["duration_ms"])), f"<code>{_e(x['span_name'])}</code>", f"<code>{_e(x['trace_id'])}</code>",
                       _e(x["start"]), _e(x["service"])] for x in sl["slowest"]], numeric=(0,))
    return (f'<section id="slow"><h2>Slow operations</h2><p>{fmt_int(sl["total"])} spans marked slow. '
            f"Consistently slow: {consistent}</p>{by}<h3>Slowest spans</h3>{slowest}</section>")


def _errors(r) -> str:
    er = r["errors"]
    rows = []
    for p in er["patterns"]:
        retry = {True: "yes", False: "no", None: "-"}[p["retryable"]]
        rows.append([_e(fmt_int(p["count"])), _e(p["category"]), _e(retry),
                     f"<code>{_e(p['pattern'] or p['error_type'] or p['key'])}</code>",
                     _e(p["first_seen"]), _e(p["last_seen"]), f"<code>{_e(p['example_trace_id'])}</code>",
                     _e(p["suggested_action"])])
    table = _table(["count", "category", "retryable", "pattern", "first seen", "last seen", "example trace", "suggested action"],
                   rows, numeric=(0,))
    return (f'<section id="errors"><h2>Error patterns</h2><p>{fmt_int(er["total"])} errors.</p>'
            '<svg id="chart-errors" role="img" aria-label="error patterns over time"></svg>'
            f"{table}</section>")


def _templates(r) -> str:
    t = r["templates"]
    engines = _table(["engine", "loads", "cache hit ratio", "renders", "renders with missing variables"],
                     [[_e(e["engine"]), _e(fmt_int(e["loads"])), _e(fmt_pct(e["hit_ratio"])), _e(fmt_int(e["renders"])),
                       _e(fmt_int(e["renders_with_missing"]))] for e in t["by_engine"]], numeric=(1, 2, 3, 4))
    missing = _table(["template", "variable", "renders"],
                     [[f"<code>{_e(m['template'])}</code>", f"<code>{_e(m['variable'])}</code>", _e(fmt_int(m["renders"]))]
                      for m in t["missing_variables"]], numeric=(2,))
    return (f'<section id="templates"><h2>Templates</h2><p>{fmt_int(t["loads"])} loads, {fmt_int(t["renders"])} renders, '
            f'{fmt_int(t["renders_with_missing"])} with missing variables.</p>{engines}'
            f"<h3>Missing variables (names only)</h3>{missing}</section>")


def _recommendations(r) -> str:
    items = "".join(
        f'<li><span class="sev-{_e(x["severity"])}">[{_e(x["severity"])}]</span> <b>{_e(x["title"])}</b><br>'
        f'<span class="muted">{_e(x["detail"])}</span> <code class="muted">{_e(x["rule"])}</code></li>'
        for x in r["recommendations"]
    ) or "<li>nothing stands out</li>"
    return f'<section id="recommendations"><h2>Recommendations</h2><ul>{items}</ul></section>'


def embedded_json(report: dict) -> str:
    # '<' escaped so no string in the data can close the script element
    return json.dumps(report, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def render(report: dict) -> str:
    title = "mailscope report"
    window = report["summary"]["start"] or "no spans"
    script = _SCRIPT.replace("__MAX_OPS__", str(MAX_CHART_OPERATIONS))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(window)} &middot; generated {_e(report['generated_at'])}</p></header><main>"
        + _recommendations(report)
        + _summary(report)
        + _operations(report)
        + _journey(report)
        + _slow(report)
        + _errors(report)
        + _templates(report)
        + delivery.html_section(report)
        + f'</main><script type="application/json" id="report-data">{embedded_json(report)}</script>'
        f"<script>{script}</script></body></html>\n"
    )

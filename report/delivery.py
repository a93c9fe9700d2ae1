"""The report's DELIVERY section: what providers said happened to the emails after they were sent.

`DeliveryTracker.add(attrs, trace_id, has_parent)` takes each `email.delivery` span (from
files or Jaeger alike, through the model) and keeps bounded summaries:

- outcomes per provider and recipient domain (`delivered`, `bounced`, ... counts), at most
  `MAX_ROWS` rows, the rest under `other`;
- delivery latency (send to event, the spans' `email.delivery.latency`) p50/p95/p99, and the
  email journey's `accepted -> delivered` figure: the same for `delivered` events only;
- bounce patterns (bounced, deferred, dropped) by error category and pattern, with the
  category's suggested action, retryable flag and an example trace;
- bounce rate (bounced / delivered + bounced + dropped) and complaint rate (complained /
  delivered), overall and per provider, the ratios the alert rules watch.

Nothing here holds a span; memory is bounded by the caps.
"""

from __future__ import annotations

import math

from mailscope import attributes as attr
from mailscope.report.rules import action_for
from mailscope.report.sketch import LogHistogram

MAX_ROWS = 200  # (provider, domain) outcome rows
MAX_PATTERNS = 200
MAX_PROVIDERS = 20
OVERFLOW = attr.LABEL_OVERFLOW
# the alert rules' thresholds (otel-config/prometheus/alerts.yml), repeated as report findings
BOUNCE_RATE_WARNING = 0.05
COMPLAINT_RATE_WARNING = 0.001
COMPLAINT_RATE_CRITICAL = 0.003
MIN_EVENTS_FOR_RATES = 20  # below this, a rate is shown but not flagged


def _text(value, limit=200) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _latency(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value < 1e9 else None


def _rates(counts: dict) -> dict:
    delivered = counts.get(attr.DELIVERY_DELIVERED, 0)
    failed = counts.get(attr.DELIVERY_BOUNCED, 0) + counts.get(attr.DELIVERY_DROPPED, 0)
    return {
        "bounce_rate": counts.get(attr.DELIVERY_BOUNCED, 0) / (delivered + failed) if delivered + failed else None,
        "complaint_rate": counts.get(attr.DELIVERY_COMPLAINED, 0) / delivered if delivered else None,
    }


def _quantiles(histogram: LogHistogram) -> dict:
    return {"count": histogram.count, "p50_s": histogram.quantile(50), "p95_s": histogram.quantile(95),
            "p99_s": histogram.quantile(99)}


class DeliveryTracker:
    def __init__(self):
        self.events = 0
        self.in_send_trace = 0  # events that carried the send's context
        self.outcomes: dict = {}  # (provider, domain) -> {status: count}
        self.by_provider: dict = {}  # provider -> {status: count}
        self.latency = LogHistogram()
        self.delivered_latency = LogHistogram()
        self.patterns: dict = {}  # (category, pattern) -> [count, retryable, example trace, statuses]

    def add(self, attrs: dict, trace_id: str, has_parent: bool, end_ns: int = 0) -> None:
        status = attrs.get(attr.DELIVERY_STATUS)
        if status not in attr.DELIVERY_STATUSES:
            status = OVERFLOW
        provider = _text(attrs.get(attr.PROVIDER), 40) or "unknown"
        self.events += 1
        self.in_send_trace += bool(has_parent)
        if provider not in self.by_provider and len(self.by_provider) >= MAX_PROVIDERS:
            provider = OVERFLOW
        per_provider = self.by_provider.setdefault(provider, {})
        per_provider[status] = per_provider.get(status, 0) + 1
        domains = attrs.get(attr.RECIPIENTS_DOMAINS)
        domains = [d for d in domains if isinstance(d, str)] if isinstance(domains, (list, tuple)) else []
        for domain in domains or ["unknown"]:
            key = (provider, domain[:100])
            if key not in self.outcomes and len(self.outcomes) >= MAX_ROWS:
                key = (OVERFLOW, OVERFLOW)
            row = self.outcomes.setdefault(key, {})
            row[status] = row.get(status, 0) + 1
        latency = _latency(attrs.get(attr.DELIVERY_LATENCY))
        if latency is not None:
            self.latency.add(latency)
            if status == attr.DELIVERY_DELIVERED:
                self.delivered_latency.add(latency)
        if status in attr.DELIVERY_FAILURES:
            category = _text(attrs.get(attr.ERROR_CATEGORY), 40) or "unknown"
            pattern = _text(attrs.get(attr.ERROR_PATTERN), 300) or status
            key = (category, pattern)
            if key not in self.patterns and len(self.patterns) >= MAX_PATTERNS:
                key = (OVERFLOW, OVERFLOW)
            entry = self.patterns.get(key)
            if entry is None:
                retryable = attrs.get(attr.ERROR_RETRYABLE)
                entry = self.patterns[key] = [0, retryable if isinstance(retryable, bool) else None, trace_id, {},
                                              end_ns]
            entry[0] += 1
            entry[3][status] = entry[3].get(status, 0) + 1
            if (end_ns, trace_id) < (entry[4], entry[2]):  # the earliest one is the example, in any input order
                entry[2], entry[4] = trace_id, end_ns

    def accepted_to_delivered(self) -> dict:
        """The email journey's figure: send accepted -> provider says delivered."""
        return _quantiles(self.delivered_latency)

    def result(self) -> dict:
        totals: dict = {}
        for counts in self.by_provider.values():
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        outcomes = [{"provider": p, "domain": d, "events": sum(c.values()), **dict(sorted(c.items()))}
                    for (p, d), c in self.outcomes.items()]
        outcomes.sort(key=lambda row: (-row["events"], row["provider"], row["domain"]))
        patterns = [{"category": c, "pattern": p, "count": e[0], "retryable": e[1], "example_trace_id": e[2],
                     "statuses": dict(sorted(e[3].items())), "suggested_action": action_for(c)}
                    for (c, p), e in self.patterns.items()]
        patterns.sort(key=lambda row: (-row["count"], row["category"], row["pattern"]))
        return {
            "events": self.events,
            "in_send_trace": self.in_send_trace,
            "statuses": dict(sorted(totals.items())),
            **_rates(totals),
            "by_provider": [{"provider": p, "events": sum(c.values()), "statuses": dict(sorted(c.items())), **_rates(c)}
                            for p, c in sorted(self.by_provider.items())],
            "outcomes": outcomes,
            "latency": _quantiles(self.latency),
            "accepted_to_delivered": self.accepted_to_delivered(),
            "bounce_patterns": patterns,
        }


def findings(section: dict) -> list:
    """Recommendations from the DELIVERY section, with the alert rules' thresholds."""
    out = []
    if section["events"] < MIN_EVENTS_FOR_RATES:
        return out
    complaint, bounce = section.get("complaint_rate"), section.get("bounce_rate")
    if complaint is not None and complaint > COMPLAINT_RATE_WARNING:
        critical = complaint > COMPLAINT_RATE_CRITICAL
        out.append({"rule": "complaint_rate", "severity": "critical" if critical else "warning",
                    "title": f"spam complaint rate {complaint:.2%}",
                    "detail": "Gmail and Yahoo require bulk senders to stay under 0.3 % complaints. Check who is "
                              "mailed (consent, list age) and make unsubscribing one click.",
                    "subject": "complaint_rate"})
    if bounce is not None and bounce > BOUNCE_RATE_WARNING:
        top = section["bounce_patterns"][0] if section["bounce_patterns"] else None
        detail = "Above 5 % of outcomes bounced."
        if top is not None:
            detail += f" Most common: {top['pattern']} ({top['category']}): {top['suggested_action']}"
        out.append({"rule": "bounce_rate", "severity": "warning", "title": f"bounce rate {bounce:.1%}",
                    "detail": detail, "subject": "bounce_rate"})
    return out


# --- rendering (called by text.py and html.py) --------------------------------------------------------
def fmt_s(seconds) -> str:
    from mailscope.report.text import fmt_ms

    return "-" if seconds is None else fmt_ms(seconds * 1000)


def fmt_rate(x) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def journey_figure(figure: dict | None) -> str | None:
    """`accepted -> delivered` as one line, or None when no delivered event carried its send time."""
    if not figure or not figure.get("count"):
        return None
    return (f"accepted -> delivered: p50 {fmt_s(figure['p50_s'])}, p95 {fmt_s(figure['p95_s'])}, "
            f"p99 {fmt_s(figure['p99_s'])} over {figure['count']:,} delivered emails")


STATUS_COLUMNS = (attr.DELIVERY_DELIVERED, attr.DELIVERY_BOUNCED, attr.DELIVERY_DEFERRED, attr.DELIVERY_DROPPED,
                  attr.DELIVERY_COMPLAINED)
MAX_TEXT_ROWS = 15


def text_lines(report: dict, style) -> list:
    from mailscope.report.text import _short, fmt_int, table

    d = report.get("delivery") or {}
    out = [style.bold("DELIVERY") + f"  {fmt_int(d.get('events', 0))} provider events, "
           f"{fmt_int(d.get('in_send_trace', 0))} in their send's trace"]
    if not d.get("events"):
        out.append("  no email.delivery spans (see docs/delivery.md)")
        return out
    out.append(f"  bounce rate {fmt_rate(d['bounce_rate'])}, complaint rate {fmt_rate(d['complaint_rate'])}"
               "  (alert rules: bounces > 5%, complaints > 0.1% warning, > 0.3% critical)")
    lat = d["latency"]
    out.append(f"  latency send -> event: p50 {fmt_s(lat['p50_s'])}, p95 {fmt_s(lat['p95_s'])}, "
               f"p99 {fmt_s(lat['p99_s'])} ({fmt_int(lat['count'])} events with a send time)")
    rows = [[row["provider"], _short(row["domain"], 32), fmt_int(row["events"])]
            + [fmt_int(row.get(s, 0)) for s in STATUS_COLUMNS] for row in d["outcomes"][:MAX_TEXT_ROWS]]
    out += table(["provider", "recipient domain", "events", *STATUS_COLUMNS], rows, "llrrrrrr", style)
    if len(d["outcomes"]) > MAX_TEXT_ROWS:
        out.append(style.dim(f"  ... {len(d['outcomes']) - MAX_TEXT_ROWS} more rows in --json"))
    if d["bounce_patterns"]:
        out.append("  bounce patterns:")
        rows = [[fmt_int(p["count"]), p["category"], {True: "yes", False: "no", None: "-"}[p["retryable"]],
                 _short(p["pattern"], 60)] for p in d["bounce_patterns"][:MAX_TEXT_ROWS]]
        out += table(["count", "category", "retry", "pattern"], rows, "rlll", style, indent="    ")
        out.append("  suggested actions:")
        seen = []
        for p in d["bounce_patterns"]:
            if p["category"] not in seen:
                seen.append(p["category"])
                out.append(f"    {p['category']}: {p['suggested_action']}")
    return out


def html_section(report: dict) -> str:
    import html as _html

    from mailscope.report.text import fmt_int

    def e(value) -> str:
        return _html.escape("" if value is None else str(value))

    d = report.get("delivery") or {}
    if not d.get("events"):
        return ""  # no section for reports without provider events
    lat = d["latency"]
    head = "".join(f"<th>{e(h)}</th>" for h in ("provider", "recipient domain", "events", *STATUS_COLUMNS))
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in
                                    [row["provider"], row["domain"], fmt_int(row["events"])]
                                    + [fmt_int(row.get(s, 0)) for s in STATUS_COLUMNS]) + "</tr>"
                   for row in d["outcomes"])
    patterns = "".join(
        f"<tr><td>{e(fmt_int(p['count']))}</td><td>{e(p['category'])}</td><td>{e(p['retryable'])}</td>"
        f"<td><code>{e(p['pattern'])}</code></td><td>{e(p['suggested_action'])}</td>"
        f"<td><code>{e(p['example_trace_id'])}</code></td></tr>" for p in d["bounce_patterns"])
    return (f'<section id="delivery"><h2>Delivery</h2><p>{e(fmt_int(d["events"]))} provider events, '
            f'{e(fmt_int(d["in_send_trace"]))} in their send\'s trace. Bounce rate <b>{e(fmt_rate(d["bounce_rate"]))}</b>, '
            f'complaint rate <b>{e(fmt_rate(d["complaint_rate"]))}</b>. Latency send &rarr; event: '
            f'p50 {e(fmt_s(lat["p50_s"]))}, p95 {e(fmt_s(lat["p95_s"]))}, p99 {e(fmt_s(lat["p99_s"]))}.</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<h3>Bounce patterns</h3><table><thead><tr><th>count</th><th>category</th><th>retryable</th>"
            f"<th>pattern</th><th>suggested action</th><th>example trace</th></tr></thead><tbody>{patterns}</tbody>"
            "</table></section>")

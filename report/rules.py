"""Recommendations and suggested actions for `mailscope report`.

Rules read the finished report (the `--json` document) and return findings
`{"rule", "severity", "title", "detail", "subject"}`, most severe first. Each
rule and its threshold is listed in `RULES` and in the README; the thresholds are
the module constants below.

| rule                       | fires when                                                                   |
|----------------------------|------------------------------------------------------------------------------|
| `sender_auth`              | any error of category `sender_auth`                                          |
| `p95_over_threshold`       | an operation's p95 exceeds its slow threshold (>= 5 spans)                    |
| `recurring_error`          | one error pattern occurred more than 5 times                                 |
| `retryable_dominant`       | more than half of the errors are retryable (>= 5 errors)                      |
| `recipient_dominant`       | more than half of the categorised errors are `recipient` (>= 5 errors)        |
| `memory_growth`            | a process's RSS grows steadily (>= 10 MiB, r >= 0.8) and the spans of one name |
|                            | account for at least half of it in their summed RSS deltas                     |
| `low_template_cache_hit`   | template cache hit ratio below 50 % (>= 10 loads reporting a hit or miss)     |
| `smtp_connection_per_send` | `smtp.connect` spans >= 90 % of SMTP sends (>= 5 sends): no connection reuse  |
| `missing_variables`        | a template rendered with variables its context did not supply               |
| `high_variance`            | an operation's max latency is more than 10x its mean (>= 10 spans); not for  |
|                            | blocking pops (BRPOP, BLPOP, ...) and queue receives, which wait by design   |

One rule gives at most `MAX_INFO_PER_RULE` findings at info level; the rest are
folded into one "+N more" finding of the same rule.
"""

from __future__ import annotations

P95_MIN_SPANS = 5
VARIANCE_FACTOR = 10.0
VARIANCE_MIN_SPANS = 10
RECURRING_ERROR_COUNT = 5  # more than this
DOMINANT_SHARE = 0.5
DOMINANT_MIN_ERRORS = 5
CACHE_HIT_MIN_RATIO = 0.5
CACHE_MIN_LOADS = 10
CONNECT_PER_SEND = 0.9
CONNECT_MIN_SENDS = 5
MAX_INFO_PER_RULE = 3
MISSING_NAMES_SHOWN = 5
# blocking commands and receives wait for a message by design: their max says how idle the queue was
BLOCKING_SPAN_NAMES = frozenset({
    "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
})
WAITING_OPERATIONS = frozenset({"queue.receive"})
# memory growth (computed in model.py): least-squares fit of RSS at span end over time
MEMORY_MIN_SAMPLES = 10
MEMORY_MIN_GROWTH_BYTES = 10 * 1024 * 1024
MEMORY_MIN_CORRELATION = 0.8
MEMORY_MIN_DELTA_SHARE = 0.5  # the name's summed rss deltas >= this share of the process's growth

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

CATEGORY_ACTIONS = {
    "recipient": "Suppress invalid and unknown addresses, process bounces, validate addresses at sign-up (list hygiene).",
    "mailbox_full": "Soft bounce: retry later with backoff, suppress the address after repeated failures.",
    "rate_limit": "Throttle per destination domain and retry with exponential backoff and jitter.",
    "reputation": "Check blocklists and sender reputation, warm up sending IPs, slow down to the affected domains.",
    "sender_auth": "Fix the sending domain's SPF, DKIM and DMARC DNS records.",
    "authentication": "Check the SMTP credentials or API key and how they are rotated.",
    "content": "Review the message content: spam triggers, attachments, size limits.",
    "validation": "Fix the sender's own setup: TLS mode and port, authentication mechanism, sender identity, "
                  "headers, address syntax, encoding.",
    "timeout": "Check the network path and server latency; set timeouts and retry with backoff.",
    "infrastructure": "Check the mail server or provider and the connection to it; retry later.",
    "unknown": "Open the example trace; the error has no known pattern yet.",
}


def action_for(category: str | None) -> str:
    return CATEGORY_ACTIONS.get(category or "unknown", CATEGORY_ACTIONS["unknown"])


def _finding(rule, severity, title, detail, subject=None) -> dict:
    return {"rule": rule, "severity": severity, "title": title, "detail": detail, "subject": subject}


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def rule_p95_over_threshold(report: dict) -> list:
    out = []
    for op in report["operations"]:
        threshold = op.get("threshold_ms")
        p95 = op["latency_ms"]["p95"]
        if threshold is None or p95 is None or op["count"] < P95_MIN_SPANS:
            continue
        if p95 > threshold:
            out.append(_finding(
                "p95_over_threshold", "warning",
                f"{op['key']}: p95 {_fmt_ms(p95)} is above its {_fmt_ms(threshold)} slow threshold",
                f"{op['count']} spans; p50 {_fmt_ms(op['latency_ms']['p50'])}. Look at the slowest spans of "
                f"{op['key']} and at what they wait on (DB, network, locks).",
                op["key"],
            ))
    return out


def _waits_by_design(op: dict) -> bool:
    if op["kind"] == "operation":
        return op["key"] in WAITING_OPERATIONS
    return str(op["key"]).split(" ", 1)[0].upper() in BLOCKING_SPAN_NAMES


def rule_high_variance(report: dict) -> list:
    out = []
    for op in report["operations"]:
        lat = op["latency_ms"]
        if op["count"] < VARIANCE_MIN_SPANS or not lat["mean"] or _waits_by_design(op):
            continue
        if lat["max"] > VARIANCE_FACTOR * lat["mean"]:
            out.append(_finding(
                "high_variance", "info",
                f"{op['key']}: max {_fmt_ms(lat['max'])} is {lat['max'] / lat['mean']:.0f}x the mean {_fmt_ms(lat['mean'])}",
                "A few calls take far longer than usual: look for timeouts, retries, cold caches or lock "
                "contention in the slowest spans' traces.",
                op["key"],
            ))
    return out


def rule_recurring_error(report: dict) -> list:
    out = []
    for p in report["errors"]["patterns"]:
        if p["count"] > RECURRING_ERROR_COUNT and p["fingerprint"] is not None:
            out.append(_finding(
                "recurring_error", "warning",
                f"recurring {p['category']} error ({p['count']}x): {(p['pattern'] or p['error_type'] or '')[:80]}",
                f"{action_for(p['category'])} Example trace {p['example_trace_id']}.",
                p["fingerprint"],
            ))
        elif p["count"] > RECURRING_ERROR_COUNT and p["key"] != "other":
            out.append(_finding(
                "recurring_error", "warning",
                f"recurring error ({p['count']}x): {p['error_type'] or p['key']}",
                f"Example trace {p['example_trace_id']}.",
                p["key"],
            ))
    return out


def rule_retryable_dominant(report: dict) -> list:
    cats = report["errors"]["by_category"]
    total = sum(c["count"] for c in cats)
    retryable = sum(c["retryable_count"] for c in cats)
    if total >= DOMINANT_MIN_ERRORS and retryable > DOMINANT_SHARE * total:
        return [_finding(
            "retryable_dominant", "warning",
            f"{retryable} of {total} errors are transient (retryable)",
            "Retry them later with exponential backoff and jitter instead of failing the message, and slow "
            "down when a destination rate-limits.",
        )]
    return []


def rule_recipient_dominant(report: dict) -> list:
    cats = report["errors"]["by_category"]
    known = sum(c["count"] for c in cats if c["category"] != "unknown")
    recipient = sum(c["count"] for c in cats if c["category"] == "recipient")
    if known >= DOMINANT_MIN_ERRORS and recipient > DOMINANT_SHARE * known:
        return [_finding(
            "recipient_dominant", "warning",
            f"{recipient} of {known} categorised errors are bad recipients",
            "List hygiene: " + CATEGORY_ACTIONS["recipient"],
            "recipient",
        )]
    return []


def rule_sender_auth(report: dict) -> list:
    for c in report["errors"]["by_category"]:
        if c["category"] == "sender_auth" and c["count"]:
            return [_finding(
                "sender_auth", "critical",
                f"{c['count']} sends rejected for sender authentication",
                CATEGORY_ACTIONS["sender_auth"] + " Receivers reject or junk mail that fails them.",
                "sender_auth",
            )]
    return []


def rule_low_template_cache_hit(report: dict) -> list:
    t = report["templates"]
    if t["loads_with_cache_info"] >= CACHE_MIN_LOADS and t["hit_ratio"] is not None and t["hit_ratio"] < CACHE_HIT_MIN_RATIO:
        return [_finding(
            "low_template_cache_hit", "warning",
            f"template cache hit ratio is {t['hit_ratio']:.0%} over {t['loads_with_cache_info']} loads",
            "Templates are compiled again and again: reuse one Environment, give it a large enough cache "
            "(Jinja2 cache_size), and do not create a loader per message.",
        )]
    return []


def rule_memory_growth(report: dict) -> list:
    out = []
    for m in report["memory_growth"]:
        if m["flagged"]:
            mib = m["growth_bytes"] / (1024 * 1024)
            out.append(_finding(
                "memory_growth", "warning",
                f"{m['span_name']}: resident memory grew {mib:.1f} MiB over {m['samples']} spans ({m['service']})",
                f"Spans of this name retained {m['delta_sum_bytes'] / (1024 * 1024):.1f} MiB in total and the "
                "process's memory rises steadily: look for caches without a bound, lists that only grow, or "
                "objects kept per message.",
                m["span_name"],
            ))
    return out


def rule_missing_variables(report: dict) -> list:
    by_template: dict = {}
    for row in report["templates"].get("missing_variables", ()):
        by_template.setdefault(row["template"], []).append(row)
    out = []
    for template, rows in sorted(by_template.items(), key=lambda kv: -max(r["renders"] for r in kv[1])):
        names = [r["variable"] for r in rows]
        shown = ", ".join(names[:MISSING_NAMES_SHOWN]) + (f" and {len(names) - MISSING_NAMES_SHOWN} more"
                                                          if len(names) > MISSING_NAMES_SHOWN else "")
        out.append(_finding(
            "missing_variables", "warning",
            f"template {template} renders with missing variables: {shown} "
            f"(up to {max(r['renders'] for r in rows)} renders)",
            "Recipients see blank or placeholder text where these go. Supply them in the render context or give "
            "the template a default for each (only variable names are recorded, never values).",
            template,
        ))
    return out


def rule_smtp_connection_per_send(report: dict) -> list:
    s = report["smtp"]
    if s["sends"] >= CONNECT_MIN_SENDS and s["connects"] >= CONNECT_PER_SEND * s["sends"]:
        return [_finding(
            "smtp_connection_per_send", "info",
            f"{s['connects']} SMTP connections for {s['sends']} sends",
            "Each send opens its own connection (TCP, TLS, AUTH). Keep one connection open per worker and "
            "send many messages over it.",
        )]
    return []


RULES = (
    rule_sender_auth,
    rule_p95_over_threshold,
    rule_recurring_error,
    rule_retryable_dominant,
    rule_recipient_dominant,
    rule_memory_growth,
    rule_low_template_cache_hit,
    rule_missing_variables,
    rule_smtp_connection_per_send,
    rule_high_variance,
)


def _at_most_some_info(found: list) -> list:
    """A rule's info findings beyond MAX_INFO_PER_RULE fold into one '+N more' finding."""
    info = [f for f in found if f["severity"] == "info"]
    if len(info) <= MAX_INFO_PER_RULE:
        return found
    rest = info[MAX_INFO_PER_RULE:]
    kept = [f for f in found if f["severity"] != "info"] + info[:MAX_INFO_PER_RULE]
    subjects = ", ".join(str(f["subject"]) for f in rest if f["subject"] is not None)
    kept.append(_finding(rest[0]["rule"], "info", f"+{len(rest)} more {rest[0]['rule']} findings",
                         f"Also: {subjects}." if subjects else "Findings of the same kind as above.",
                         None))
    kept[-1]["more"] = len(rest)
    return kept


def recommendations(report: dict) -> list:
    findings = []
    for rule in RULES:
        findings.extend(_at_most_some_info(rule(report)))
    findings.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])  # stable: rule order within a severity
    return findings

"""The one place that reads mailscope's environment.

Every `MAILSCOPE_*` variable of the contract is declared once in `VARIABLES`, with
its default, its parser and the sentence the README shows. `load_settings()` turns
the environment into a frozen, typed `Settings`. A value that does not parse is
reported with exactly one warning naming the variable, the bad value and the
default used, and the default takes its place: configuration never stops the app.

`settings()` returns the process-wide instance (loaded on first use);
`reload_settings()` re-reads the environment (tests, `mailscope.configure`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, fields
from typing import Callable, Mapping

from mailscope import attributes as attr
from mailscope.globs import is_valid_glob
from mailscope.locks import module_lock

logger = logging.getLogger("mailscope")


class ConfigError(ValueError):
    """A value that does not parse; the message says why."""


# --- built-in slow thresholds (ms), checked after the user's own ------------
# What these operations normally cost on a healthy pipeline: a compile is a few
# ms, a render with a DB-free context well under 10 ms, an SMTP transaction to a
# nearby relay tens to hundreds of ms, a connection with TLS and AUTH a few
# hundred ms, a Redis push or non-blocking pop about a millisecond. The limits
# sit an order of magnitude above normal so that a threshold hit means trouble.
DEFAULT_SLOW_THRESHOLDS: tuple[tuple[str, float], ...] = (
    (attr.SPAN_TEMPLATE_LOAD, 100.0),
    (attr.SPAN_PERSONALIZE, 50.0),
    (attr.SPAN_SEND, 2000.0),
    (attr.SPAN_SMTP_CONNECT, 1000.0),
    ("send *", 50.0),  # queue publish
    ("receive *", 5000.0),  # queue receive (a blocking pop includes the wait for work)
    ("process *", 5000.0),  # queue process: everything one message costs
    ("*", 1000.0),
)

OPERATION_NAMES_FOR_CONFIG = (
    attr.OP_PERSONALIZE, attr.OP_SEND, attr.OP_TEMPLATE_LOAD, attr.OP_TRIGGER, attr.OP_SEGMENT, attr.OP_WORKFLOW_STEP,
)


# --- parsers: str -> value, raising ConfigError -------------------------------
def _split(raw: str) -> list[str]:
    parts = [p.strip() for p in raw.split(",")]
    if any(not p for p in parts):
        raise ConfigError("empty entry in comma-separated list")
    return parts


def _positive_number(text: str, *, allow_zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{text!r} must be a {'non-negative' if allow_zero else 'positive'} number")
    return value


def parse_thresholds(raw: str) -> tuple[tuple[str, float], ...]:
    items = []
    for part in _split(raw):
        glob, sep, ms = part.partition("=")
        glob = glob.strip()
        if not sep or not is_valid_glob(glob):
            raise ConfigError(f"{part!r} is not glob=ms")
        items.append((glob, _positive_number(ms.strip())))
    # the user's entries are tried first; the built-ins remain as the fallback
    return tuple(items) + DEFAULT_SLOW_THRESHOLDS


def parse_factor(raw: str) -> float:
    return _positive_number(raw.strip(), allow_zero=True)


def _positive_int(raw: str) -> int:
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{value} must be at least 1")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


# --- delivery webhooks (mailscope.delivery) ------------------------------------
def parse_secret(raw: str) -> str:
    """A key or credential: kept as given. Never rejected here (a warning would echo it);
    the receiver refuses a request it cannot verify with it."""
    return raw.strip()


def parse_sendgrid_key(raw: str) -> str:
    from mailscope.delivery.verify import load_sendgrid_key  # imports cryptography only when set

    try:
        load_sendgrid_key(raw)
    except Exception:
        raise ConfigError("not a base64 DER or PEM EC public key") from None
    return raw.strip()


def parse_cert_origins(raw: str) -> tuple[str, ...]:
    """`scheme://host[:port],...`; `*` in a host stands for one DNS label."""
    items = []
    for part in _split(raw):
        scheme, sep, host = part.partition("://")
        if not sep or scheme.lower() not in ("https", "http") or not host or "/" in host or " " in host:
            raise ConfigError(f"{part!r} is not scheme://host[:port]")
        items.append(f"{scheme.lower()}://{host.lower()}")
    return tuple(items)


DEFAULT_SES_CERT_ORIGINS = ("https://sns.*.amazonaws.com", "https://sns.*.amazonaws.com.cn")
DELIVERY_PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses")


def parse_delivery_relays(raw: str) -> tuple[tuple[str, int | None, str], ...]:
    """`host-glob[:port]=provider,...` -> ((host glob, port or None, provider), ...)."""
    items = []
    for part in _split(raw):
        target, sep, provider = part.rpartition("=")
        provider, target = provider.strip().lower(), target.strip().lower()
        if not sep or provider not in DELIVERY_PROVIDERS:
            raise ConfigError(f"{part!r}: provider must be one of {', '.join(DELIVERY_PROVIDERS)}")
        host, colon, port = target.partition(":")
        if not host or " " in host or "/" in host or not is_valid_glob(host) or (colon and not port.isdigit()):
            raise ConfigError(f"{part!r}: relay must be host[:port]=provider")
        items.append((host, int(port) if colon else None, provider))
    return tuple(items)


# --- end of delivery webhooks


def parse_globs(raw: str) -> tuple[str, ...]:
    globs = _split(raw)
    for g in globs:
        if not is_valid_glob(g):
            raise ConfigError(f"{g!r} is not a valid glob")
    return tuple(globs)


def parse_redis_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("must start with redis://, rediss:// or unix://")
    return value


def _split_entries(raw: str) -> list[str]:
    """`_split`, except that commas inside parentheses belong to their entry."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(raw):
        depth += (c == "(") - (c == ")")
        if depth < 0:
            raise ConfigError("unbalanced parentheses")
        if c == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    parts = [p.strip() for p in parts + [raw[start:]]]
    if any(not p for p in parts):
        raise ConfigError("empty entry in comma-separated list")
    return parts


def _parse_captures(part: str, text: str) -> tuple[tuple[str, str], ...]:
    """`argument=attribute.name,...` (inside an entry's parentheses) -> ((argument, attribute), ...)."""
    captures: list = []
    for item in text.split(","):
        arg, sep, name = (p.strip() for p in item.partition("="))
        if not sep or not arg.isidentifier() or not _is_attribute_name(name) or name.startswith("mailscope."):
            raise ConfigError(f"{part!r}: arguments must be (argument=attribute.name,...), outside mailscope.*")
        if arg in dict(captures):
            raise ConfigError(f"{part!r}: argument {arg!r} named twice")
        captures.append((arg, name))
    return tuple(captures)


def parse_operations(raw: str) -> tuple[tuple, ...]:
    """`operation=module:qualname[(arg=attribute,...)],...` -> ((operation, module, qualname), ...);
    an entry that names arguments has a fourth item, ((argument, attribute), ...)."""
    items: list = []
    for part in _split_entries(raw):
        op, sep, target = part.partition("=")
        op, target = op.strip(), target.strip()
        if not sep or op not in OPERATION_NAMES_FOR_CONFIG:
            raise ConfigError(f"{part!r}: operation must be one of {', '.join(OPERATION_NAMES_FOR_CONFIG)}")
        captures = ()
        if target.endswith(")") and "(" in target:
            target, _, inner = target[:-1].partition("(")
            captures = _parse_captures(part, inner)
        module, colon, qualname = target.strip().partition(":")
        if not colon or not module or not qualname or any(c in target for c in " ()"):
            raise ConfigError(f"{part!r}: target must be module:qualname[(argument=attribute,...)]")
        items.append((op, module, qualname, captures) if captures else (op, module, qualname))
    return tuple(items)


def _is_attribute_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "._-" for c in name) and not name.startswith(".")


def parse_header_attributes(raw: str) -> tuple[tuple[str, str], ...]:
    items = []
    for part in _split(raw):
        header, sep, name = part.partition("=")
        header, name = header.strip(), name.strip()
        if not sep or not header or not all(33 <= ord(c) <= 126 and c != ":" for c in header):
            raise ConfigError(f"{part!r}: header name is not valid")
        if not _is_attribute_name(name):
            raise ConfigError(f"{part!r}: attribute name is not valid")
        items.append((header, name))
    return tuple(items)


def parse_path(raw: str) -> str:
    value = raw.strip()
    if not value or "\x00" in value:
        raise ConfigError("must be a file path")
    return value


# --- templates: inside an HTTP server request only these names are emails ------------
# matched against the lower-cased template name (path included)
EMAILISH_TEMPLATE_GLOBS: tuple[str, ...] = ("*mail*",)


# --- HTTP email-provider send endpoints (requests/httpx) -----------------------
HTTP_PROVIDERS = ("mailgun", "postmark", "sendgrid", "brevo", "mailjet", "resend", "sparkpost", "mandrill")
# provider, host glob (with `:port` when the URL names one), path glob; each from the provider's API reference
DEFAULT_PROVIDER_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("mailgun", "api.mailgun.net", "/v3/*/messages"),
    ("mailgun", "api.mailgun.net", "/v3/*/messages.mime"),
    ("mailgun", "api.eu.mailgun.net", "/v3/*/messages"),
    ("mailgun", "api.eu.mailgun.net", "/v3/*/messages.mime"),
    ("postmark", "api.postmarkapp.com", "/email"),
    ("postmark", "api.postmarkapp.com", "/email/*"),
    ("sendgrid", "api.sendgrid.com", "/v3/mail/send"),  # v3 Mail Send
    ("sendgrid", "api.eu.sendgrid.com", "/v3/mail/send"),  # EU regional subuser host
    ("brevo", "api.brevo.com", "/v3/smtp/email"),  # transactional email
    ("brevo", "api.sendinblue.com", "/v3/smtp/email"),  # Brevo's former name, still served
    ("mailjet", "api.mailjet.com", "/v3.1/send"),  # Send API v3.1
    ("resend", "api.resend.com", "/emails"),
    ("resend", "api.resend.com", "/emails/batch"),
    ("sparkpost", "api.sparkpost.com", "/api/v1/transmissions"),
    ("sparkpost", "api.eu.sparkpost.com", "/api/v1/transmissions"),
    ("mandrill", "mandrillapp.com", "/api/1.0/messages/send*"),  # send, send-template, send-raw (.json or not)
)


def parse_provider_endpoints(raw: str) -> tuple[tuple[str, str, str], ...]:
    """`provider=host/path,...` -> ((provider, host glob, path glob), ...) + the built-ins."""
    items = []
    for part in _split(raw):
        provider, sep, target = part.partition("=")
        provider, target = provider.strip().lower(), target.strip()
        if not sep or provider not in HTTP_PROVIDERS:
            raise ConfigError(f"{part!r}: provider must be one of {', '.join(HTTP_PROVIDERS)}")
        host, slash, path = target.partition("/")
        if not host or not slash or " " in target or not is_valid_glob(host) or not is_valid_glob("/" + path):
            raise ConfigError(f"{part!r}: endpoint must be host[:port]/path")
        items.append((provider, host.lower(), "/" + path))
    return tuple(items) + DEFAULT_PROVIDER_ENDPOINTS


# --- the variables ------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    env: str
    field: str
    default: object
    parse: Callable[[str], object]
    default_text: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("MAILSCOPE_SLOW_THRESHOLDS", "slow_thresholds", DEFAULT_SLOW_THRESHOLDS, parse_thresholds,
             "built-in per operation, `*=1000`",
             "`glob=ms,...` matched against span names, first match wins; your entries are tried before the built-ins"),
    Variable("MAILSCOPE_SLOW_BASELINE_FACTOR", "slow_baseline_factor", 3.0, parse_factor, "`3`",
             "slow when duration > factor x learned p95; `0` turns baselines off"),
    Variable("MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES", "slow_baseline_min_samples", 100, _positive_int, "`100`",
             "samples before a baseline is trusted"),
    Variable("MAILSCOPE_MEMORY", "memory", "rss", _choice("rss", "tracemalloc", "off"), "`rss`",
             "`rss`, `tracemalloc`, `off`"),
    Variable("MAILSCOPE_MEMORY_SPANS", "memory_spans", None, parse_globs,
             "mailscope operations (spans carrying `mailscope.operation`)",
             "globs of span names that get memory deltas, e.g. `*` for every span"),
    Variable("MAILSCOPE_REDACT", "redact", "domain", _choice("domain", "full", "off"), "`domain`",
             "`domain` (keep the domain, mask the local part), `full`, `off`"),
    Variable("MAILSCOPE_ERROR_PATTERNS_MAX", "error_patterns_max", 500, _positive_int, "`500`",
             "distinct fingerprints tracked and used as metric labels"),
    Variable("MAILSCOPE_MAX_TRACKED_NAMES", "max_tracked_names", 1000, _positive_int, "`1000`",
             "span names with baselines and memory histograms"),
    Variable("MAILSCOPE_TEMPLATES", "templates", None, parse_globs,
             "every template outside web requests; inside an HTTP server request only email-ish names "
             "(containing `mail`, e.g. `emails/welcome.html`)",
             "globs of template names to instrument; when set, it alone decides"),
    Variable("MAILSCOPE_QUEUES", "queues", ("*queue*",), parse_globs, "`*queue*`",
             "globs of Redis keys that are email queues"),
    Variable("MAILSCOPE_QUEUE_REDIS_URL", "queue_redis_url", None, parse_redis_url, "the app's client",
             "Redis the queue gauges read, when the app's own client cannot be reused"),
    Variable("MAILSCOPE_QUEUE_ENVELOPE", "queue_envelope", "off", _choice("off", "json"), "`off`",
             "`json`: carry trace context and enqueue time inside JSON-object payloads, stripped again on receive"),
    Variable("MAILSCOPE_OPERATIONS", "operations", (), parse_operations, "empty",
             "`operation=module:qualname[(arg=attribute,...)],...` wraps the app's own functions as mailscope "
             "operations (`personalize`, `send`, `template.load`, `trigger`, `segment`, `workflow.step`); the named "
             "arguments' str, int and bool values are recorded as those attributes (redacted, at most 100 characters)"),
    Variable("MAILSCOPE_HEADER_ATTRIBUTES", "header_attributes", (), parse_header_attributes, "empty",
             "`Header-Name=attribute.name,...` copied from sent messages onto send spans"),
    Variable("MAILSCOPE_TRACES_FILE", "traces_file", None, parse_path, "stdout",
             "file the `otlp_json_file` trace exporter appends OTLP JSON lines to"),
    Variable("MAILSCOPE_METRICS_FILE", "metrics_file", None, parse_path, "stdout",
             "file the `otlp_json_file` metric exporter appends to"),
    Variable("MAILSCOPE_LOGS_FILE", "logs_file", None, parse_path, "stdout",
             "file the `otlp_json_file` logs exporter appends to (log records are redacted like spans)"),
    Variable("MAILSCOPE_PROVIDER_ENDPOINTS", "provider_endpoints", DEFAULT_PROVIDER_ENDPOINTS,
             parse_provider_endpoints,
             "the send endpoints of Mailgun (US, EU), Postmark, SendGrid, Brevo, Mailjet, Resend, SparkPost (US, EU) "
             "and Mandrill",
             "`provider=host[:port]/path-glob,...` (provider: `mailgun`, `postmark`, `sendgrid`, `brevo`, `mailjet`, "
             "`resend`, `sparkpost`, `mandrill`): POSTs made with requests or httpx "
             "to these URLs are `email.send` spans; your entries are tried before the built-ins"),
    Variable("MAILSCOPE_DELIVERY_TRACKING", "delivery_tracking", "off", _choice("off", "on"), "`off`",
             "`on`: put the send's trace context and time into provider metadata that event webhooks echo back "
             "(see docs/delivery.md for the reserved `mailscope` key)"),
    Variable("MAILSCOPE_WEBHOOK_MAILGUN_SIGNING_KEY", "webhook_mailgun_signing_key", None, parse_secret, "unset",
             "Mailgun webhook signing key; unset: Mailgun events are rejected"),
    Variable("MAILSCOPE_WEBHOOK_SENDGRID_PUBLIC_KEY", "webhook_sendgrid_public_key", None, parse_sendgrid_key,
             "unset", "SendGrid Event Webhook verification key (base64 DER or PEM); unset: SendGrid events are rejected"),
    Variable("MAILSCOPE_WEBHOOK_POSTMARK_CREDENTIALS", "webhook_postmark_credentials", None, parse_secret, "unset",
             "`user:password` Postmark sends as basic auth; unset: Postmark events are rejected"),
    Variable("MAILSCOPE_WEBHOOK_SES_TOPIC_ARNS", "webhook_ses_topic_arns", None, parse_globs, "unset",
             "globs of the SNS topic ARNs whose SES events are accepted; unset: SES events are rejected"),
    Variable("MAILSCOPE_WEBHOOK_SES_CERT_ORIGINS", "webhook_ses_cert_origins", DEFAULT_SES_CERT_ORIGINS,
             parse_cert_origins, "`https://sns.*.amazonaws.com`, `https://sns.*.amazonaws.com.cn`",
             "`scheme://host[:port],...` an SNS SigningCertURL must start with (`*` = one DNS label)"),
    Variable("MAILSCOPE_DELIVERY_RELAYS", "delivery_relays", (), parse_delivery_relays, "empty",
             "`host-glob[:port]=provider,...`: SMTP hosts that are a provider's relay (`sendgrid`, `mailgun`, "
             "`postmark`, `ses`) besides the providers' own relay hosts, for delivery tracking"),
)


@dataclass(frozen=True)
class Settings:
    slow_thresholds: tuple = DEFAULT_SLOW_THRESHOLDS
    slow_baseline_factor: float = 3.0
    slow_baseline_min_samples: int = 100
    memory: str = "rss"
    memory_spans: tuple | None = None
    redact: str = "domain"
    error_patterns_max: int = 500
    max_tracked_names: int = 1000
    templates: tuple | None = None  # None: the web-request rule (EMAILISH_TEMPLATE_GLOBS)
    queues: tuple = ("*queue*",)
    queue_redis_url: str | None = None
    queue_envelope: str = "off"
    operations: tuple = ()
    header_attributes: tuple = ()
    traces_file: str | None = None
    metrics_file: str | None = None
    logs_file: str | None = None
    provider_endpoints: tuple = DEFAULT_PROVIDER_ENDPOINTS
    delivery_tracking: str = "off"
    webhook_mailgun_signing_key: str | None = field(default=None, repr=False)  # secrets stay out of reprs
    webhook_sendgrid_public_key: str | None = None
    webhook_postmark_credentials: str | None = field(default=None, repr=False)
    webhook_ses_topic_arns: tuple | None = None
    webhook_ses_cert_origins: tuple = DEFAULT_SES_CERT_ORIGINS
    delivery_relays: tuple = ()
    # variables that were set but invalid (for diagnostics and tests)
    invalid: tuple = field(default=(), compare=False)


_BY_FIELD = {v.field: v for v in VARIABLES}
assert set(_BY_FIELD) == {f.name for f in fields(Settings)} - {"invalid"}, "VARIABLES and Settings drifted"


def _warn(var: Variable, raw: str, reason: str) -> None:
    # one warning per variable and bad value, however often settings are reloaded
    from mailscope._safety import log_once

    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    log_once(
        f"config:{var.env}:{raw}",
        "mailscope: ignoring %s=%r (%s); using the default %s",
        var.env,
        shown,
        reason,
        var.default_text.replace("`", ""),
    )


def load_settings(environ: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Read every MAILSCOPE_* variable. `overrides` (field name -> str or typed value) win."""
    env = os.environ if environ is None else environ
    values: dict = {}
    invalid = []
    for var in VARIABLES:
        if var.field in overrides and not isinstance(overrides[var.field], str):
            values[var.field] = overrides[var.field]
            continue
        raw = overrides.get(var.field, env.get(var.env))
        if raw is None:
            continue
        if not raw.strip() and var.default_text in ("empty",):
            continue  # an empty list is the default itself
        try:
            values[var.field] = var.parse(raw)
        except ConfigError as exc:
            invalid.append(var.env)
            _warn(var, raw, str(exc))
        except Exception as exc:  # a parser bug must not stop the app either
            invalid.append(var.env)
            _warn(var, raw, f"unparseable: {type(exc).__name__}")
    unknown = set(overrides) - set(_BY_FIELD)
    if unknown:
        from mailscope._safety import log_once

        log_once(f"config:unknown:{sorted(unknown)}", "mailscope: unknown settings ignored: %s", ", ".join(sorted(unknown)))
    return Settings(**values, invalid=tuple(invalid))


_current: Settings | None = None
_lock = module_lock()


def settings() -> Settings:
    global _current
    current = _current
    if current is None:
        with _lock:
            if _current is None:
                _current = load_settings()
            current = _current
    return current


def reload_settings(**overrides) -> Settings:
    global _current
    new = load_settings(**overrides)
    with _lock:
        _current = new
    return new


def markdown_table() -> str:
    """The README's configuration table, generated from VARIABLES."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in VARIABLES:
        rows.append(f"| `{var.env}` | {var.default_text} | {var.meaning} |")
    return "\n".join(rows)

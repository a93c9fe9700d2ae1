"""Provider-neutral helpers for `email.send` spans.

Every send instrumentation (smtplib, aiosmtplib, and HTTP providers such as SES,
SendGrid, Mailgun or Postmark) describes a send the same way. This module holds
that shared description so the attributes agree whatever the transport:

- `normalize_recipients(value)` turns whatever an API accepts as recipients (a
  single string, bytes, a list or tuple, `email.headerregistry.Address`/`Group`
  objects, nested lists) into a list of address strings, without ever raising.
- `envelope_attributes(provider, recipients)`: `email.provider`,
  `email.recipients.count` and `email.recipients.domains` (sorted, unique, at
  most 10). Addresses themselves never become attributes; only domains do.
- `message_id_hash(value)`: the first 16 hex characters of SHA-256 of the
  Message-ID without angle brackets, so a send correlates with provider logs
  without exporting an address-shaped id.
- `headers_from_message(msg)` / `headers_from_raw(data)`: the Message-ID and the
  headers named by `MAILSCOPE_HEADER_ATTRIBUTES`, from a `Message` object or
  from raw message text; `message_attributes(headers)` turns them into span
  attributes (an address in a mapped header value is masked as MAILSCOPE_REDACT says).
- `message_size(data)`: bytes of a message as sent.
- `enhanced_status(text, code)`: the RFC 3463 status (`5.1.1`) at the start of
  a reply text; `reply_attributes(code, text)` gives both reply attributes.
- `add_refusal_events(span, refusals)`: one `email.recipient.refused` event per
  refused recipient, carrying the reply code, enhanced status and the recipient
  *domain* (at most `MAX_REFUSAL_EVENTS` events; the count attribute is exact).
- `RecipientsMetric`: records `mailscope.recipients` by provider and outcome.
- `mark_error(span, exc, code, text)`: ERROR status, `error.type`, the reply
  attributes, and the exception event. Exception messages from mail servers
  often contain addresses; the redaction stage, last in the processor chain,
  scrubs exception messages, stack traces and status descriptions before
  export. The status description is left empty here so nothing else carries
  server text.

Nothing in this module raises into an app: functions that inspect app values
are written to tolerate any input, and callers wrap them with the helpers of
`mailscope._safety`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from email.utils import parseaddr

from opentelemetry.trace import Status, StatusCode

from mailscope import attributes as attr
from mailscope.config import settings
from mailscope.metrics import PROVIDER_LABELS_MAX, LabelCap, tally_for
from mailscope.processors.redact import redact

MAX_REFUSAL_EVENTS = 100  # per span; email.recipients.refused still counts all of them
MAX_HEADER_VALUE_CHARS = 256  # a mapped header value longer than this is cut
RAW_HEADER_SCAN_BYTES = 65_536  # only this much of a raw message is searched for headers
MESSAGE_ID_HEADER = "message-id"


# --- recipients -----------------------------------------------------------------
def _address_text(item) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item).decode("utf-8", "replace")
    addr_spec = getattr(item, "addr_spec", None)  # email.headerregistry.Address
    if isinstance(addr_spec, str):
        return addr_spec
    if item is None:
        return None
    return str(item)


def normalize_recipients(value) -> list[str] | None:
    """Recipients as a list of address strings, whatever shape the app passed.

    A single string (or bytes, or Address) counts as one recipient, as smtplib
    and aiosmtplib treat it. `Group` objects and nested lists are flattened.
    Unreadable items are skipped. A one-shot iterator (a generator, say) is
    never iterated, since that would consume it before the client sees it:
    the result is then None, "unknown". This function never raises.
    """
    if value is None:
        return []
    kind = type(value)
    if kind is list or kind is tuple:  # the usual shapes: no ABC checks
        if all(type(item) is str for item in value):
            return [item for item in value if item]
    elif kind is str:
        return [value] if value else []
    if isinstance(value, (str, bytes, bytearray, memoryview)) or hasattr(value, "addr_spec"):
        text = _address_text(value)
        return [text] if text else []
    addresses = getattr(value, "addresses", None)  # email.headerregistry.Group
    if addresses is not None and not isinstance(value, (list, tuple)):
        value = addresses
    if isinstance(value, Iterator) or not isinstance(value, Iterable):
        if isinstance(value, Iterable):
            return None
        text = _address_text(value)
        return [text] if text else []
    out: list[str] = []
    for item in value:
        try:
            if isinstance(item, (list, tuple)) or (
                getattr(item, "addresses", None) is not None and not hasattr(item, "addr_spec")
            ):
                out.extend(normalize_recipients(item) or ())
                continue
            text = _address_text(item)
        except Exception:
            continue
        if text:
            out.append(text)
    return out


def address_domain(address: str) -> str | None:
    """The lower-cased domain of an address (`Name <a@b>` forms too), or None."""
    if "<" in address:
        address = parseaddr(address)[1] or address
    _, at, domain = address.rpartition("@")
    if not at:
        return None
    domain = domain.strip().strip(">").strip().rstrip(".").lower()
    if not domain or _NOT_IN_DOMAIN.search(domain):
        return None
    return domain


_NOT_IN_DOMAIN = re.compile(r'[\s<>@,;"]')


def recipient_domains(addresses, limit: int = attr.MAX_RECIPIENT_DOMAINS) -> list[str]:
    """Sorted unique recipient domains, at most `limit`."""
    domains = set()
    for address in addresses:
        domain = address_domain(address)
        if domain is not None:
            domains.add(domain)
    return sorted(domains)[:limit]


def envelope_attributes(provider: str, recipients) -> dict:
    """Send-span attributes describing the envelope (`recipients` as normalize_recipients gives;
    None, unknown, leaves the recipient attributes out)."""
    values = {attr.PROVIDER: provider}
    if recipients is None:
        return values
    values[attr.RECIPIENTS_COUNT] = len(recipients)
    domains = recipient_domains(recipients)
    if domains:
        values[attr.RECIPIENTS_DOMAINS] = domains
    return values


# --- message ------------------------------------------------------------------
def message_id_hash(value) -> str | None:
    """First 16 hex chars of SHA-256 of the Message-ID, angle brackets stripped."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    text = str(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        return None
    digest = _SHA256.copy()  # a copy skips OpenSSL's per-call lookup of the algorithm
    digest.update(text.encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


_SHA256 = hashlib.sha256()  # never updated itself: only copied


def message_size(data) -> int | None:
    """Bytes of a message as an SMTP client sends it (lone CR/LF counted as CRLF for text)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    if isinstance(data, str):
        crlf = data.count("\r\n")
        extra = (data.count("\n") - crlf) + (data.count("\r") - crlf)
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogateescape"))
        return size + extra
    return None


def _wanted_headers() -> dict:
    """lower-cased header name -> attribute name, from MAILSCOPE_HEADER_ATTRIBUTES."""
    return _header_plan()[0]


def _header_plan():
    """(mapping, [(key, str needle, bytes needle)]) for the Message-ID and mapped headers, per settings."""
    config = settings()
    plan = _plan_cache.get(config.header_attributes)
    if plan is None:
        mapping = {header.lower(): name for header, name in config.header_attributes}
        needles = [(key, key + ":", (key + ":").encode("ascii", "replace")) for key in (MESSAGE_ID_HEADER, *mapping)]
        plan = (mapping, needles)
        _plan_cache.clear()  # only the current settings are ever kept
        _plan_cache[config.header_attributes] = plan
    return plan


_plan_cache: dict = {}


def headers_from_message(message) -> dict:
    """{lower-cased name: value} for the Message-ID and mapped headers of a Message object."""
    found = {}
    get = getattr(message, "get", None)
    if get is None:
        return found
    for name in (MESSAGE_ID_HEADER, *_wanted_headers()):
        try:
            value = get(name)
        except Exception:  # a malformed header the email package cannot parse
            continue
        if value is not None:
            found[name] = str(value)
    return found


def _header_section(data):
    """The header section of raw message text: up to the first empty line, at most RAW_HEADER_SCAN_BYTES."""
    limit = min(len(data), RAW_HEADER_SCAN_BYTES)
    blank, crlf = (b"\n\n", b"\r\n\r\n") if isinstance(data, bytes) else ("\n\n", "\r\n\r\n")
    end = data.find(crlf, 0, limit)
    end_lf = data.find(blank, 0, end if end != -1 else limit)
    if end_lf != -1:
        end = end_lf
    return data[: limit if end == -1 else end]


def headers_from_raw(data) -> dict:
    """{lower-cased name: value} for the Message-ID and mapped headers of raw message text.

    A plain scan (no parsing of the whole message): for each wanted header the
    first line `Name:` of the header section, with its folded continuation
    lines unfolded and whitespace collapsed.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data[:RAW_HEADER_SCAN_BYTES])
    if isinstance(data, bytes):
        is_bytes, newline, folds = True, b"\n", (b" ", b"\t")
    elif isinstance(data, str):
        is_bytes, newline, folds = False, "\n", (" ", "\t")
    else:
        return {}
    head = _header_section(data)
    if not head:
        return {}
    lower = head.lower()
    size = len(head)
    found = {}
    for key, needle_text, needle_bytes in _header_plan()[1]:
        needle = needle_bytes if is_bytes else needle_text
        if lower.startswith(needle):
            start = len(needle)
        else:
            pos = lower.find(newline + needle)
            if pos == -1:
                continue
            start = pos + 1 + len(needle)
        end = head.find(newline, start)
        while end != -1 and head[end + 1 : end + 2] in folds:  # folded continuation line
            end = head.find(newline, end + 1)
        value = head[start : size if end == -1 else end]
        if is_bytes:
            value = value.decode("utf-8", "replace")
        found[key] = " ".join(value.split())
    return found


_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@]+@([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)")
MASK = "<redacted>"  # the redaction stage's mask, so its output and ours agree


def mask_addresses(text: str) -> str:
    """Mask every address in `text` as MAILSCOPE_REDACT says (`domain`: `<redacted>@domain`).

    Defence in depth for values the instrumentor copies from the app (mapped
    headers): the redaction stage at the end of the chain rewrites every
    exported string anyway, this keeps the instrumentor's own output clean
    when spans do not go through mailscope's pipeline.
    """
    if "@" not in text:
        return text
    mode = settings().redact
    if mode == "off":
        return text
    text = redact(text, mode)  # the stage's own grammar first: it also masks a display name (`Ann Lee <...>`)
    return _ADDRESS.sub(MASK + "@" + (MASK if mode == "full" else r"\1"), text)


def message_attributes(headers: dict) -> dict:
    """Span attributes from `headers_from_message`/`headers_from_raw` output."""
    values = {}
    id_hash = message_id_hash(headers.get(MESSAGE_ID_HEADER))
    if id_hash:
        values[attr.MESSAGE_ID_HASH] = id_hash
    for header, name in _wanted_headers().items():
        value = headers.get(header)
        if value is None:
            continue
        value = mask_addresses(value.strip())[:MAX_HEADER_VALUE_CHARS]
        if value:
            values[name] = value
    return values


# --- replies -------------------------------------------------------------------
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def reply_text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def enhanced_status(text, code: int | None = None) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply text, e.g. `5.1.1`.

    Its class digit must agree with the reply code's first digit when the code
    is known (RFC 3463 requires that), so a host name that happens to look like
    a status is not taken for one.
    """
    match = _ENHANCED.match(reply_text(text))
    if match is None:
        return None
    if code is not None and str(code)[:1] != match.group(1):
        return None
    return ".".join(match.groups())


def reply_attributes(code, text) -> dict:
    values = {}
    try:
        code = int(code)
    except (TypeError, ValueError):
        return values
    if code < 0:  # smtplib's -1: no reply at all
        return values
    values[attr.SMTP_RESPONSE_CODE] = code
    status = enhanced_status(text, code)
    if status:
        values[attr.SMTP_ENHANCED_STATUS] = status
    return values


# --- refusals and errors -------------------------------------------------------
def add_refusal_events(span, refusals) -> int:
    """One `email.recipient.refused` event per (address, code, text); returns how many were refused.

    The address only contributes its domain.
    """
    count = 0
    for address, code, text in refusals:
        count += 1
        if count > MAX_REFUSAL_EVENTS:
            continue
        values = reply_attributes(code, text)
        domain = address_domain(_address_text(address) or "")
        if domain:
            values[attr.RECIPIENT_DOMAIN] = domain
        span.add_event(attr.EVENT_RECIPIENT_REFUSED, values)
    return count


def type_name(cls: type) -> str:
    """`module.QualName` of a class (builtins without module), as the SDK names exception types."""
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    """The `error.type` value for an exception: its class's `type_name`."""
    return type_name(type(exc))


def mark_error(span, exc: BaseException, code=None, text=None, error_name: str | None = None) -> None:
    """Mark a send or connect span failed by `exc` (the caller re-raises the same object)."""
    values = reply_attributes(code, text)
    values[attr.ERROR_TYPE] = error_name or error_type(exc)
    span.set_attributes(values)
    span.record_exception(exc)  # text is scrubbed by the redaction stage before export
    span.set_status(Status(StatusCode.ERROR))


# --- metrics ------------------------------------------------------------------
class RecipientsMetric:
    """`mailscope.recipients` (email.provider, outcome accepted/refused).

    Counted in a `Tally` (in-process totals exported as an ObservableCounter:
    the same cumulative sum a Counter gives, without the SDK's per-add cost).
    Uses mailscope's process-wide instrument, or, when an instrumentor received
    its own meter provider, one Tally per such provider (the SDK would hand a
    second registration the first one's instrument, so they are shared).
    The provider label is capped.
    """

    def __init__(self, meter_provider=None):
        self._meter_provider = meter_provider
        self._tally = None
        self._cap = LabelCap(PROVIDER_LABELS_MAX)
        self._labels: dict = {}

    def _attributes(self, provider: str, outcome: str) -> dict:
        key = (provider, outcome)
        labels = self._labels.get(key)
        if labels is None:
            labels = {attr.PROVIDER: self._cap(provider), attr.LABEL_OUTCOME: outcome}
            if len(self._labels) < 4 * PROVIDER_LABELS_MAX:
                self._labels[key] = labels
        return labels

    def record(self, provider: str, accepted: int = 0, refused: int = 0) -> None:
        tally = self._tally
        if tally is None:
            tally = self._tally = tally_for(self._meter_provider, attr.METRIC_RECIPIENTS)
        if accepted > 0:
            tally.add(accepted, self._attributes(provider, attr.OUTCOME_ACCEPTED))
        if refused > 0:
            tally.add(refused, self._attributes(provider, attr.OUTCOME_REFUSED))



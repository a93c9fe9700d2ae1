"""Error-pattern tagging: `classify()` and the `errors` stage.

`classify(message, error_type=None)` returns a `Classification` with
- `pattern`: the message with variable parts masked (error_patterns.mask);
- `fingerprint`: 16 hex chars of SHA-256 over the error type and the pattern,
  nothing else, so the same error gets the same fingerprint in every process and
  on every host (no Python `hash()`, no clustering history);
- `category` / `retryable`: from the pattern and the type (error_categories).

It is a pure function. Results are cached per (pattern, type) in a small
bounded dict, so a warm stream of variants costs one masking pass each.

The stage tags every span with status ERROR or an `exception` event: text =
`exception.message`, else the status description, else the status line
(`HTTP 503 Service Unavailable`) of an HTTP client span answered with an error
status; type = `exception.type`,
else `error.type`. It sets mailscope.error.category / retryable / pattern /
fingerprint / occurrences (per-fingerprint count in this process, from a
bounded LRU table of `MAILSCOPE_ERROR_PATTERNS_MAX`), and counts
`mailscope.errors` by category, retryable and fingerprint; fingerprints beyond
the first `MAILSCOPE_ERROR_PATTERNS_MAX` are counted as `other`.
"""

from __future__ import annotations

import hashlib
from http import HTTPStatus
from typing import NamedTuple

from mailscope import attributes as attr
from mailscope.metrics import LabelCap, instruments
from mailscope.processors.error_categories import UNKNOWN, categorize
from mailscope.processors.error_patterns import evidence, masked, shorten
from mailscope.processors.error_table import OccurrenceTable
from mailscope.processors.error_type import event_attributes, http_error_status

_CACHE_MAX = 4096
_NO_TYPE = "_OTHER"  # error_type stage's fallback: names nothing


class Classification(NamedTuple):
    category: str
    retryable: bool
    pattern: str
    fingerprint: str


def normalize_type(error_type) -> str:
    if not error_type:
        return ""
    text = str(error_type).strip()
    if text == _NO_TYPE:
        return ""
    if text.startswith("builtins."):
        text = text[len("builtins.") :]
    return text


def http_status_line(status: int) -> str:
    """`HTTP 503 Service Unavailable`: a status line that the masking and the categories read."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"HTTP {status} {phrase}"


def fingerprint(error_type: str, pattern: str) -> str:
    """16 hex chars: a deterministic function of (error type, pattern) only."""
    return hashlib.sha256(f"{error_type}\x1f{pattern}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


_cache: dict = {}
# exact repeats (the same static error 40,000 times overnight) skip masking altogether
_MESSAGE_CACHE_MAX = 2048
_MESSAGE_CACHE_CHARS = 512
_messages: dict = {}


def _remember(cache: dict, limit: int, key, value) -> None:
    if len(cache) >= limit:
        try:
            del cache[next(iter(cache))]  # oldest first: dicts keep insertion order
        except (StopIteration, KeyError, RuntimeError):
            cache.clear()
    cache[key] = value


def classify(message, error_type=None) -> Classification:
    """Classify one error message (the same logic as `mailscope classify`)."""
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    if error_type is not None and not isinstance(error_type, str):
        error_type = str(error_type)
    exact = (text, error_type) if len(text) <= _MESSAGE_CACHE_CHARS else None
    if exact is not None:
        hit = _messages.get(exact)
        if hit is not None:
            return hit
    kind = normalize_type(error_type)
    full = masked(text)
    pattern = shorten(full)
    # a long text's pattern is its head and tail: the key also holds the whole text's hash, since its middle
    # may hold the cause (the key keeps the hash, not the text, so the table stays small)
    key = (pattern, kind) if full is pattern else (pattern, kind, hash(full))
    result = _cache.get(key)
    if result is None:
        category, retryable = categorize(evidence(full), kind or None)
        result = Classification(category, retryable, pattern, fingerprint(kind, pattern))
        _remember(_cache, _CACHE_MAX, key, result)
    if exact is not None:
        _remember(_messages, _MESSAGE_CACHE_MAX, exact, result)
    return result


MAX_LINE_CHARS = 65536


def read_messages(stream, max_chars: int = MAX_LINE_CHARS):
    """Lines of `stream` without their line ending, in bounded memory: a line longer than
    `max_chars` is cut there and the rest of it skipped; undecodable bytes are replaced."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="replace")
        except Exception:  # a stream that cannot change its error handler keeps its own
            pass
    readline = stream.readline
    while True:
        line = readline(max_chars)
        if not line:
            return
        if len(line) >= max_chars and not line.endswith("\n"):
            rest = line
            while rest and not rest.endswith("\n"):
                rest = readline(max_chars)
        yield line.rstrip("\r\n")


class ErrorsStage:
    """Tag failed spans with the error's category, retryability, pattern and fingerprint."""

    name = "errors"
    failed_only = True  # the pipeline skips it on spans with no ERROR status and no event

    def __init__(self, config=None, counter=None):
        limit = getattr(config, "error_patterns_max", 500)
        self.table = OccurrenceTable(limit)
        self.labels = LabelCap(limit)
        self._counter = counter  # injected in tests; else mailscope.metrics' instrument

    def __call__(self, draft) -> None:
        event = draft.exception_event()
        if event is None and not draft.is_error:
            return
        event_attrs = event_attributes(event) if event is not None else {}
        message = event_attrs.get(attr.EXCEPTION_MESSAGE)
        if not message:
            message = draft.status.description or ""
        if not message:
            # an HTTP client span failed by its answer alone (requests, httpx): the status is the text
            status = http_error_status(draft.attributes)
            if status is not None:
                message = http_status_line(status)
        error_type = event_attrs.get(attr.EXCEPTION_TYPE) or draft.attributes.get(attr.ERROR_TYPE)
        result = classify(str(message), error_type)
        category, retryable = result.category, result.retryable
        if category == UNKNOWN:
            category, retryable = self._from_span_codes(draft, category, retryable)
        occurrences = self.table.seen(result.fingerprint)
        pattern = result.pattern
        # the category is one of error_categories' constants, the fingerprint hex, the others a
        # flag and a count: no address can hide in them, so the last redaction need not rescan
        # them. The pattern is derived from the message: it is written again as free text (the
        # same key keeps its place, so the exported order is unchanged).
        draft.set_attributes(
            {
                attr.ERROR_CATEGORY: category,
                attr.ERROR_RETRYABLE: retryable,
                attr.ERROR_PATTERN: pattern,
                attr.ERROR_FINGERPRINT: result.fingerprint,
                attr.ERROR_OCCURRENCES: occurrences,
            },
            free_text=False,
        )
        draft.set_attribute(attr.ERROR_PATTERN, pattern)
        if self._counter is None:
            self._counter = instruments().errors
        self._counter.add(
            1,
            {
                attr.ERROR_CATEGORY: category,
                attr.ERROR_RETRYABLE: retryable,
                attr.ERROR_FINGERPRINT: self.labels(result.fingerprint),
            },
        )

    @staticmethod
    def _from_span_codes(draft, category, retryable):
        """An instrumentor may know the SMTP reply or the HTTP status when the message does not say it."""
        attributes = draft.attributes
        code = attributes.get(attr.SMTP_RESPONSE_CODE)
        enhanced = attributes.get(attr.SMTP_ENHANCED_STATUS)
        if code is None and enhanced is None:
            status = http_error_status(attributes)
            if status is not None:
                return _categorize_hint(http_status_line(status))
            return category, retryable
        hint = " ".join(str(part) for part in (code, enhanced) if part is not None)
        return _categorize_hint(hint)


# (category, retryable) of the span-code hints (`550 5.1.1`, `HTTP 503 Service Unavailable`):
# a storm of failures whose message says nothing repeats the same few hints, and categorize
# costs 10-50 us a call. A pure function of the hint, remembered in a small bounded dict.
_HINTS_MAX = 256
_HINT_MAX_CHARS = 64
_hints: dict = {}


def _categorize_hint(hint: str):
    result = _hints.get(hint)
    if result is None:
        result = categorize(hint)
        if len(hint) <= _HINT_MAX_CHARS:
            _remember(_hints, _HINTS_MAX, hint, result)
    return result

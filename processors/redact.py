"""Redaction: rewrite every email address in exported text, and the stage that applies it.

`redact(text, mode)` is the reusable function: `domain` keeps the domain and masks
the local part (`<redacted>@gmail.com`), `full` masks both (`<redacted>@<redacted>`),
`off` returns the text unchanged.

What counts as an address (RFC 5322 addr-spec, as it shows up in logs and reprs):
- dot-atom local parts with plus-addressing, apostrophes and the other RFC atext
  characters, unicode letters included (RFC 6531), and quoted local parts
  (`"john doe"@example.com`);
- a domain of at least two labels whose last label is alphabetic (unicode
  letters for IDN) or punycode (`xn--...`), or a domain literal (`[192.0.2.1]`);
- the `@` may also be percent-encoded (`%40`), JSON/Python-escaped (`\\u0040`,
  `\\x40`) or an HTML entity (`&#64;`, `&#x40;`).

What is deliberately left alone (it is not an address, and must not be corrupted):
- `user@host` in URL userinfo (`https://user@example.com/`), `@decorator`,
  `a@b` without a dot, `pkg@1.2.3` (numeric "TLD"), retina asset names such as
  `logo@2x.png` (one name and a file suffix after the `@`; `ann@example.org.html`
  is an address with a suffix and is masked);
- the characters around an address: a quote opening a Python repr (`'a@b.com'`),
  `key=` in query strings and logs (`?email=a@b.com` keeps `?email=`), an escape
  such as `\\n` glued to the front.

The stage runs last in the chain and is `privacy_critical`: it rewrites the span
name, attribute keys and values (string arrays too), event names and attributes
(`exception.message`, `exception.stacktrace`), the status description and link
attributes. `EarlyRedactionStage` runs first and rewrites the span name and the
attributes only, so the stages in between (slow, memory, metrics) take their
metric labels (`span.name`, template and queue names) and their per-name tables
from address-free text; metric labels never pass through the last stage. It is cheap when there is nothing to do: a string is only searched
when a quick substring test finds an `@` (or one of its encoded forms). Failures repeat, so
the last stage remembers what it made of a failure text (exception message, stack trace,
status description, a whole exception event) once it has seen it twice, in bounded tables
(see "remembered texts" below).
"""

from __future__ import annotations

import re

from opentelemetry.trace import Link, Status

from mailscope.locks import module_lock
from mailscope.processors.draft import FAST_READ, make_event
from opentelemetry.attributes import BoundedAttributes

MASK = "<redacted>"
MODES = ("domain", "full", "off")

# --- the address grammar -------------------------------------------------------
# RFC 5322 atext, with \w standing in for ALPHA / DIGIT plus unicode letters (RFC 6531).
_ATEXT = r"[\w!#$%&'*+/=?^`{|}~-]"
# the first character may not be a quote: it would belong to a Python repr ('a@b.com')
_ATEXT_FIRST = r"[\w!#$%&*+/=?^`{|}~-]"
_DOT_ATOM = rf"{_ATEXT_FIRST}{_ATEXT}*(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[^"\\\r\n]|\\.){1,64}"'
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD = r"(?:xn--[A-Za-z0-9-]{1,59}|[^\W\d_]{2,63})"
_DOMAIN = rf"(?:{_LABEL}\.)+{_TLD}(?![\w-])|\[(?:IPv6:[0-9A-Fa-f:.]+|\d{{1,3}}(?:\.\d{{1,3}}){{3}})\]"

# tokens that look like addresses but name files (logo@2x.png) or package versions
_FILE_SUFFIXES = frozenset(
    "png jpg jpeg gif svg webp bmp ico avif css js mjs json html htm txt log xml yaml yml "
    "ini cfg conf exe dll pdf csv tmp bak lock whl jar pyc map".split()
)
# where a key ends inside a local part: `?email=` / `&to=` / `;rcpt=` / `/path/`
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}=")
_URL_DELIMS = "/?&;"
_ESCAPE_LETTERS = "nrtfvb0"


def _looks_like_file(domain: str) -> bool:
    """`2x.png` in `logo@2x.png`: one name and a file suffix. `example.org.html` is an address
    with a suffix glued on (a per-recipient template name): it is masked."""
    dot = domain.rfind(".")
    return dot > 0 and domain.find(".") == dot and domain[dot + 1 :].lower() in _FILE_SUFFIXES


def _in_url_authority(text: str, start: int) -> bool:
    """True when `start` is inside the userinfo of `scheme://user@host`."""
    scheme = text.rfind("://", max(0, start - 512), start)
    if scheme < 0:
        return False
    between = text[scheme + 3 : start]
    return not any(c in between for c in "/?#&= \t\r\n@\"'<>")


def _split_local(text: str, start: int, local: str) -> tuple[str, str]:
    """Separate characters glued in front of the real local part: (kept prefix, local part)."""
    if local.startswith('"'):
        return "", local
    prefix = ""
    # URL path or query structure in front: keep everything up to the last delimiter
    cut = max(local.rfind("/"), local.rfind("?"), local.rfind("&"), local.rfind(";"))  # _URL_DELIMS
    if cut >= 0:
        prefix, local = local[: cut + 1], local[cut + 1 :]
    # `key=value`: keep a plain identifier key; anything else (VERP `bounce+john=gmail.com`,
    # SRS) stays inside the masked part so an encoded recipient cannot leak
    if "=" in local:
        key = _KEY.match(local)
        if key is not None and key.end() < len(local):
            prefix, local = prefix + local[: key.end()], local[key.end() :]
    # punctuation glued to the front (`{'a@b.com': ...}` in a dict repr) is legal atext
    # but practically never starts a real local part: keep it as text
    lead = 0
    while lead < len(local) - 1 and not (local[lead].isalnum() or local[lead] == "_"):
        lead += 1
    if lead:
        prefix, local = prefix + local[:lead], local[lead:]
    # a backslash escape glued to the front (`b'...\njohn@x.com'` in a repr)
    pos = start + len(prefix)
    if pos > 0 and text[pos - 1] == "\\" and len(local) > 1 and local[0] in _ESCAPE_LETTERS:
        prefix, local = prefix + local[0], local[1:]
    return prefix, local


# The scan is anchored on each `@` (or encoded form): the local part is found by walking
# back at most 256 characters, the domain by one regex match of at most 256 characters.
# A plain regex search would retry the local part from every position of a long run of
# word characters (a base64 blob in a stack trace) and go quadratic.
_WINDOW = 256
_DOMAIN_RX = re.compile(_DOMAIN)
_QUOTED_RX = re.compile(_QUOTED)
_SEPARATORS = re.compile(r"%40|\\u0040|\\x40|&#64;|&#x40;", re.IGNORECASE)
_PLAIN_EXTRA = "!#$%&'*+/=?^`{|}~-."
_ENCODED_EXTRA = ".+'%!#$*^`{|}~-"
# a run of local-part characters: `\w` is str.isalnum() or "_" (the same Unicode test), and
# the extra atext characters. Matched on the reversed window: the run that ends at the `@`.
_PLAIN_RUN = re.compile(rf"[\w{re.escape(_PLAIN_EXTRA)}]*")
_ENCODED_RUN = re.compile(rf"[\w{re.escape(_ENCODED_EXTRA)}]*")


def _local_start(text: str, at: int, floor: int, run) -> int:
    """Where the dot-atom local part ending at `at` starts, or `at` when there is none."""
    limit = max(floor, at - _WINDOW)
    if at <= limit:
        return at
    start = at - run.match(text[limit:at][::-1]).end()
    local = text[start:at]
    if not local or local[-1] == ".":
        return at
    double = local.rfind("..")
    if double >= 0:
        start += double + 2
    while start < at and text[start] in "'.":
        start += 1  # a quote opens a repr ('a@b.com'), a dot cannot start a local part
    return start


def _address_at(text: str, at: int, sep_len: int, floor: int, encoded: bool):
    """(local start, domain end) of an address whose separator is at `at`, or None."""
    domain = _DOMAIN_RX.match(text, at + sep_len, min(len(text), at + sep_len + _WINDOW))
    if domain is None:
        return None
    if not encoded and at > floor and text[at - 1] == '"':
        opening = text.rfind('"', max(floor, at - 70), at - 1)
        while opening > floor and text[opening - 1] == "\\":
            opening = text.rfind('"', max(floor, at - 70), opening - 1)
        if opening >= floor and _QUOTED_RX.fullmatch(text, opening, at):
            return opening, domain.end()
    start = _local_start(text, at, floor, _ENCODED_RUN if encoded else _PLAIN_RUN)
    if start == at:
        return None
    return start, domain.end()


# --- display names ---------------------------------------------------------------
# An address in angle brackets may come with its owner's name (RFC 5322 name-addr: `Ann Lee <ann@example.org>`,
# `"Lee, Ann" <ann@...>`): the name is masked with the address, in every mode but `off`. Which words before the `<`
# are the name: a quoted string; any words after a header field name (`To: ann lee <...>`); otherwise one to four
# capitalised words (`sending to Ann Lee <...>`, `['Ann Lee <...>']`). A reply's own words stay (`unknown user <...>`,
# `RCPT TO:<...>`). A name the rules miss (`ann van berg <...>` in running text) is not masked: the promise is the address.
_NAME_WORD = r"[^\W\d_][\w'.-]*"
# a name word read backwards from its end: letters, digits and `'.-`, starting (its last character here) with a letter
# that follows no word character (a quote may come before it: `'Ann`)
_WORD_REVERSED = re.compile(r"[\w'.-]*[^\W\d_](?![\w.-])")
_PHRASE_WORDS = 6
_HEADER_BEFORE = re.compile(
    r"(?i)(?:^|[^\w-])(?:to|from|cc|bcc|reply-to|sender|recipient|delivered-to|resent-(?:to|from)|x-original-to)\s*:\s*$"
)
_LAST_FIRST = re.compile(rf"(?:(?<=[\s\"'`(\[:])|(?<=^))({_NAME_WORD}), $")
_NAME_WINDOW = 96
_CAPITALISED_MAX = 4
# words that name a role or an outcome in a mail reply, not a person: the name is only what follows the last of them
# (`Invalid Recipient <...>` has none; `Invalid Recipient Ann Lee <...>` has one)
NOT_NAMES = frozenset(
    "recipient recipients sender user mailbox address rcpt mail email e-mail from to cc bcc reply-to invalid unknown "
    "rejected denied refused blocked error failed delivery undeliverable".split()
)


def name_words(words: list, any_case: bool = False, most: int = _CAPITALISED_MAX) -> int:
    """How many of `words`, counted from the end, are a display name: capitalised (or any, after a header field
    name), none of NOT_NAMES, at most `most`."""
    kept = 0
    while kept < len(words) and kept < most:
        word = words[-1 - kept]
        if word.lower() in NOT_NAMES or not (any_case or word[0].isupper()):
            break
        kept += 1
    return kept


def _phrase_start(text: str, low: int, end: int):
    """Where the run of up to _PHRASE_WORDS words separated by single spaces that ends at `end` starts (not before
    `low`; a word the window cuts is left out), or None. Read backwards, so it costs one pass."""
    backwards = text[low:end][::-1]
    position, start = 0, None
    for _ in range(_PHRASE_WORDS):
        word = _WORD_REVERSED.match(backwards, position)
        if word is None:
            break
        if word.end() == len(backwards) and low > 0 and (text[low - 1].isalnum() or text[low - 1] in "_.-"):
            break  # the window starts inside this word
        start = end - word.end()
        if word.end() == len(backwards) or backwards[word.end()] != " ":
            break
        position = word.end() + 1
    return start


def _display_name(text: str, bracket: int, floor: int):
    """(start, end) of the display name before the `<` at `bracket`, or None; never before `floor`."""
    end = bracket - 1 if bracket > floor and text[bracket - 1] == " " else bracket
    if end <= floor:
        return None
    quote = text[end - 1]
    if quote == '"' or quote == "'":
        opening = text.rfind(quote, max(floor, end - 66), end - 1)
        if opening < 0 or opening + 1 == end - 1:
            return None
        close = end - 1 if text[end - 2] != "\\" else end - 2  # JSON's `\"Ann Lee\" <...>`: the escape stays
        name = text[opening + 1 : close]
        if not name or "<" in name or ">" in name or "\n" in name or "\r" in name:
            return None
        return opening + 1, close
    start = _phrase_start(text, max(floor, end - _NAME_WINDOW), end)
    if start is None or (start > floor and text[start - 1] not in " \t\n\"'`([{,;:"):
        return None  # no words, or a word glued to something else (`id=Ann <...>`, `TO:<...>`)
    words = text[start:end].split(" ")
    if _HEADER_BEFORE.search(text, max(0, start - 40), start):
        kept = name_words(words, any_case=True, most=len(words))
    else:
        kept = name_words(words)
    if not kept:
        return None
    start = end - len(" ".join(words[-kept:]))
    if kept == len(words) and start - 2 > floor and text[start - 2 : start] == ", ":
        last = _LAST_FIRST.search(text, max(floor, start - 40), start)  # `Lee, Ann <...>`: a directory's last name first
        if last is not None and name_words([last.group(1)]):
            return last.start(), end
    return start, end


def _rewrite(text: str, positions, full: bool, encoded: bool) -> str:
    out = []
    done = 0  # text[:done] is already in `out`
    for at, sep_len in positions:
        if at < done:
            continue
        found = _address_at(text, at, sep_len, done, encoded)
        if found is None:
            continue
        start, end = found
        domain = text[at + sep_len : end]
        if _looks_like_file(domain):
            continue
        prefix, local = _split_local(text, start, text[start:at])
        if not local or local.startswith("."):
            continue
        if not encoded and _in_url_authority(text, start + len(prefix)):
            continue
        name = _display_name(text, start - 1, done) if not prefix and start and text[start - 1] == "<" else None
        if name is not None:
            out.append(text[done : name[0]])
            out.append(MASK)
            done = name[1]
        out.append(text[done:start])
        out.append(f"{prefix}{MASK}{text[at : at + sep_len]}{MASK if full else domain}")
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _plain_positions(text: str):
    at = text.find("@")
    while at >= 0:
        yield at, 1
        at = text.find("@", at + 1)


def _encoded_positions(text: str):
    for match in _SEPARATORS.finditer(text):
        yield match.start(), match.end() - match.start()


_ENCODED_HINTS = ("%40", "\\u0040", "\\x40", "&#")


def might_contain_address(text: str) -> bool:
    """Cheap pre-check: False guarantees `redact` would return `text` unchanged."""
    # every encoded form contains "40" (%40, \u0040, \x40) or "&#" (&#64;, &#x40;)
    return "@" in text or "&#" in text or ("40" in text and any(hint in text for hint in _ENCODED_HINTS))


def redact(text: str, mode: str = "domain") -> str:
    """Return `text` with every email address masked according to `mode`."""
    if mode == "off" or not text or not might_contain_address(text):
        return text
    if mode not in ("domain", "full"):
        raise ValueError(f"unknown redaction mode {mode!r}; expected one of {MODES}")
    full = mode == "full"
    if "@" in text:
        text = _rewrite(text, _plain_positions(text), full, encoded=False)
    if "%" in text or "\\" in text or "&#" in text:
        text = _rewrite(text, list(_encoded_positions(text)), full, encoded=True)
    return text


# --- remembered texts --------------------------------------------------------------
# Failures repeat: an error storm ends thousands of spans with the same exception message,
# stack trace and status description, and each holds the same address. The last stage
# remembers what it made of those texts (events, status, links), so a repeat costs a dict
# lookup instead of a scan: per text, and per event or link whose attribute values are all
# strings (an exception event). `redact` is a pure function of (text, mode), and the
# redaction of a mapping a pure function of its items: a remembered result is the result.
# A text is remembered the second time it is seen (the hashes of recent misses are kept in
# a fixed array), so failures that never repeat (a new recipient in each message) pay no
# table upkeep. Each mode's table is bounded three ways (entries, characters held, the
# longest entry remembered) and forgets the oldest first; it holds original texts in this
# process's memory only, as the spans being processed do.
_TEXTS_MAX = 512
_TEXT_MAX_CHARS = 16384
_TEXTS_BUDGET = 1 << 19  # characters held at once by each mode's table, keys and results
_SAME = object()  # remembered: nothing to rewrite
_MISS = object()
_texts = {"domain": {}, "full": {}}  # mode -> {text or mapping items: result or _SAME}
_texts_chars = {"domain": 0, "full": 0}
_texts_lock = module_lock()
_SEEN_SLOTS = 1024  # a power of two
_seen = {"domain": [-1] * _SEEN_SLOTS, "full": [-1] * _SEEN_SLOTS}  # mode -> hashes of recent misses (-1 is no hash)


def _seen_before(mode: str, key) -> bool:
    """True when `key` missed recently (its hash sits in one of its two slots); else notes it and
    says False. Two slots per hash: two texts of one storm that share a slot and alternate
    (message, stack trace) would otherwise keep overwriting each other and never be remembered."""
    slots = _seen[mode]
    code = hash(key)  # a text's hash is cached by the lookup that just missed
    first = code & (_SEEN_SLOTS - 1)
    second = (code >> 10) & (_SEEN_SLOTS - 1)
    if slots[first] == code or slots[second] == code:
        return True
    slots[first] = slots[second] = code
    return False


def _chars(entry) -> int:
    """Characters an entry holds: a text, the items of a mapping of texts, a result, _SAME."""
    if entry.__class__ is str:
        return len(entry)
    if entry is _SAME:
        return 0
    if entry.__class__ is dict:
        entry = entry.items()
    return sum(len(key) + len(value) for key, value in entry)


def _remember(mode: str, key, result) -> None:
    size = _chars(key) + _chars(result)
    if size > _TEXT_MAX_CHARS:
        return
    table = _texts[mode]
    with _texts_lock:
        if key in table:
            return
        held = _texts_chars[mode]
        while table and (len(table) >= _TEXTS_MAX or held + size > _TEXTS_BUDGET):
            old = next(iter(table))
            held -= _chars(old) + _chars(table.pop(old))
        table[key] = result
        _texts_chars[mode] = held + size


def _redact_text(text: str, mode: str) -> str:
    """`redact(text, mode)` for a text that may contain an address, remembered for repeats."""
    table = _texts.get(mode)
    if table is None:
        return redact(text, mode)
    hit = table.get(text, _MISS)
    if hit is _SAME:
        return text
    if hit is not _MISS:
        return hit
    result = redact(text, mode)
    if _seen_before(mode, text):
        _remember(mode, text, _SAME if result == text else result)
    return result


def _redact_remembered(attributes, mode: str):
    """`_redact_mapping(attributes, mode, remember=True)` for the attributes of an event or a
    link; when every value is a string (an exception event) the whole result is remembered."""
    if not attributes:
        return None
    if _PLAIN_DICT and type(attributes) is BoundedAttributes and attributes._immutable:
        attributes = attributes._dict
    if _clean_attributes(attributes):
        return None
    table = _texts.get(mode)
    if table is None or len(attributes) > 16:
        return _redact_mapping(attributes, mode, remember=True)
    key = tuple(attributes.items())
    for item in key:
        if item[1].__class__ is not str:  # 1 == 1.0 == True: only texts make a faithful key
            return _redact_mapping(attributes, mode, remember=True)
    hit = table.get(key, _MISS)
    if hit is _SAME:
        return None
    if hit is not _MISS:
        return hit.copy()  # each span gets a dict of its own
    result = _redact_mapping(attributes, mode, remember=True)
    if _seen_before(mode, key):
        _remember(mode, key, _SAME if result is None else result.copy())
    return result


def forget_texts() -> None:
    """Empty the tables of remembered texts (tests)."""
    with _texts_lock:
        for mode, table in _texts.items():
            table.clear()
            _texts_chars[mode] = 0
            _seen[mode][:] = [-1] * _SEEN_SLOTS


# --- the stage -------------------------------------------------------------------
def _redact_value(value, mode: str, remember: bool = False):
    """A redacted attribute value, or the same object when nothing changed."""
    if isinstance(value, str):
        if not might_contain_address(value):
            return value
        return _redact_text(value, mode) if remember else redact(value, mode)
    if isinstance(value, (tuple, list)):
        changed = False
        out = []
        for item in value:
            new = _redact_value(item, mode, remember) if isinstance(item, str) else item
            changed = changed or new is not item
            out.append(new)
        return tuple(out) if changed else value
    return value


def _suspect(text: str) -> bool:
    # might_contain_address, inlined for the per-attribute hot loop: every encoded form
    # contains "40" or "&#", so clean text costs three substring tests
    return "@" in text or "&#" in text or ("40" in text and ("%40" in text or "0040" in text or "\\x40" in text))


def _clean_attributes(attributes) -> bool:
    """True when no key or string value of `attributes` could hold an address.

    Almost every span has none, so this is the hot path: each key and string value
    costs three substring tests, and `_suspect` only looks closer at a "40".
    """
    for key, value in attributes.items():
        if ("@" in key or "40" in key or "&#" in key) and _suspect(key):
            return False
        if value.__class__ is str:
            if ("@" in value or "40" in value or "&#" in value) and _suspect(value):
                return False
        elif value.__class__ is tuple or value.__class__ is list:
            for item in value:
                if item.__class__ is str and _suspect(item):
                    return False
    return True


def _redact_mapping(attributes, mode: str, remember: bool = False):
    """A new dict when something changed, else None. `remember`: string values go through the
    table of remembered texts (event and link attributes, where failures repeat)."""
    if not attributes:
        return None
    if _PLAIN_DICT and type(attributes) is BoundedAttributes and attributes._immutable:
        attributes = attributes._dict  # the same items, without the Mapping methods' overhead
    if _clean_attributes(attributes):
        return None
    changed = None
    for key, value in attributes.items():
        new_value = _redact_value(value, mode, remember)
        new_key = redact(key, mode) if might_contain_address(key) else key
        if new_value is not value or new_key is not key:
            if changed is None:
                changed = {}
            changed[key] = (new_key, new_value)
    if changed is None:
        return None
    out = {}
    for key, value in attributes.items():
        if key in changed:
            new_key, new_value = changed[key]
            out[new_key] = new_value
        else:
            out[key] = value
    return out


# BoundedAttributes keeps its items in a plain `_dict`, final once immutable (an event's, a link's)
_PLAIN_DICT = FAST_READ and hasattr(BoundedAttributes(), "_immutable")


def redact_attributes(attributes, mode: str = "domain"):
    """A new dict of `attributes` with every address in keys and string values masked, or None when none holds one."""
    return _redact_mapping(attributes, mode)


class RedactionStage:
    """Last stage of the chain: no address leaves the process in an exported span."""

    name = "redaction"
    privacy_critical = True

    def __init__(self, mode: str = "domain"):
        if mode not in MODES:
            raise ValueError(f"unknown redaction mode {mode!r}")
        self.mode = mode

    def __call__(self, draft) -> None:
        mode = self.mode
        if mode == "off":
            return
        if getattr(draft, "clean", None) == mode:
            # the early stage already scanned the name and the attributes in this mode:
            # only what was written (or renamed) since is new text
            self._written_since(draft, mode)
        else:
            self._name_and_attributes(draft, mode)
        if draft.has_extra_text:
            self._events_status_links(draft, mode)

    @staticmethod
    def _written_since(draft, mode: str) -> None:
        if draft._name is not None:
            name = draft._name
            if might_contain_address(name):
                new_name = redact(name, mode)
                if new_name != name:
                    draft.set_name(new_name)
        written = draft.written
        if not written:
            return
        attributes = draft.attributes
        for key in written:  # fast scan: stages write numbers, flags and address-free labels
            if _suspect(key):
                break
            value = attributes.get(key)
            if value.__class__ is str:
                if _suspect(value):
                    break
            elif value.__class__ is tuple or value.__class__ is list:
                if any(item.__class__ is str and _suspect(item) for item in value):
                    break
        else:
            return
        fresh = {key: attributes[key] for key in written if key in attributes}
        redacted = _redact_mapping(fresh, mode)
        if redacted is None:
            return
        for key in fresh:
            if key not in redacted:
                del draft._attributes[key]  # a key itself held an address
        draft.set_attributes(redacted)

    @staticmethod
    def _name_and_attributes(draft, mode: str) -> None:
        name = draft.name
        if might_contain_address(name):
            new_name = redact(name, mode)
            if new_name != name:
                draft.set_name(new_name)

        attributes = _redact_mapping(draft.attributes, mode)
        if attributes is not None:
            draft.set_attributes(attributes)
            if len(draft.attributes) != len(attributes):
                # a key itself held an address: drop the unredacted key from the draft's copy
                stale = [key for key in draft.attributes if key not in attributes]
                for key in stale:
                    del draft._attributes[key]

    @staticmethod
    def _events_status_links(draft, mode: str) -> None:
        events = draft.events
        if events:
            new_events = None
            for index, event in enumerate(events):
                event_attrs = _redact_remembered(event.attributes, mode)
                event_name = _redact_text(event.name, mode) if might_contain_address(event.name) else event.name
                if event_attrs is not None or event_name is not event.name:
                    if new_events is None:
                        new_events = list(events)
                    new_events[index] = make_event(
                        event_name,
                        event_attrs if event_attrs is not None else event.attributes,
                        event.timestamp,
                    )
            if new_events is not None:
                draft.replace_events(new_events)

        status = draft.status
        description = status.description
        if description and might_contain_address(description):
            new_description = _redact_text(description, mode)
            if new_description != description:
                draft.set_status(Status(status.status_code, new_description))

        links = draft.links
        if links:
            new_links = None
            for index, link in enumerate(links):
                link_attrs = _redact_remembered(link.attributes, mode)
                if link_attrs is not None:
                    if new_links is None:
                        new_links = list(links)
                    new_links[index] = Link(link.context, link_attrs)
            if new_links is not None:
                draft.replace_links(new_links)


class EarlyRedactionStage(RedactionStage):
    """First stage of the chain: span name and attributes, before any stage derives labels from them."""

    name = "redaction.early"

    def __call__(self, draft) -> None:
        mode = self.mode
        if mode == "off":
            return
        if _suspect(draft.name) or not _clean_attributes(draft.attributes):
            self._name_and_attributes(draft, mode)
        if hasattr(draft, "written"):
            # name and attributes are clean now: the draft remembers what is written after
            draft.clean = mode
            draft.written = []

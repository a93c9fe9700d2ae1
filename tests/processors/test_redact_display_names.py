"""A display name that comes with an address (RFC 5322 name-addr) is masked with it, in every signal.

`MAILSCOPE_REDACT=domain` used to export `"Ann Lee" <<redacted>@example.org>`: the address was masked and the
person's name left with the telemetry. processors/redact.py now masks the name too; the instrumentors' own masking
(instrumentation/common/send.py) uses the same rules. tests/privacy/test_matrix.py checks it end to end."""

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from mailscope.processors.redact import MASK, NOT_NAMES, redact

# (input, expected with mode=domain)
MASKED = [
    ('"Ann Lee" <ann@example.org>', '"<redacted>" <<redacted>@example.org>'),
    ("'Lee, Ann' <ann@example.org>", "'<redacted>' <<redacted>@example.org>"),
    ("To: ann lee <ann@example.org>", "To: <redacted> <<redacted>@example.org>"),
    ("reply-to: Ann van Berg <ann@example.org>", "reply-to: <redacted> <<redacted>@example.org>"),
    ("sending to Ann Lee <ann@example.org>", "sending to <redacted> <<redacted>@example.org>"),
    ("['Ann Lee <ann@example.org>']", "['<redacted> <<redacted>@example.org>']"),
    ("Ann<ann@example.org>", "<redacted><<redacted>@example.org>"),
    ("Müller Jürgen <mj@bücher.de>", "<redacted> <<redacted>@bücher.de>"),
    ("reply to Ann O'Brien-Smith <a@example.org>", "reply to <redacted> <<redacted>@example.org>"),
    ("550 Invalid Recipient Ann Lee <ann@example.org>", "550 Invalid Recipient <redacted> <<redacted>@example.org>"),
    ('To: Ann Lee <ann@example.org>, "Lee, Bob" <bob@example.net>, Cy Roe <cy@example.com>',
     'To: <redacted> <<redacted>@example.org>, "<redacted>" <<redacted>@example.net>, <redacted> <<redacted>@example.com>'),
    ("x" * 300 + " Ann Lee <ann@example.org>", "x" * 300 + " <redacted> <<redacted>@example.org>"),
    # a directory's last name first (Outlook, Exchange)
    ("To: Lee, Ann <ann@example.org>", "To: <redacted> <<redacted>@example.org>"),
    ("sending to Lee, Ann <ann@example.org>", "sending to <redacted> <<redacted>@example.org>"),
]

# the words before the address are a reply's, a command's or a key's: they stay
KEPT = [
    ("550 5.1.1 <ann@example.org>: Recipient address rejected", "550 5.1.1 <<redacted>@example.org>: Recipient address rejected"),
    ("RCPT TO:<ann@example.org>", "RCPT TO:<<redacted>@example.org>"),
    ("RCPT TO: <ann@example.org>", "RCPT TO: <<redacted>@example.org>"),
    ("MAIL FROM:<ann@example.org> SIZE=1024", "MAIL FROM:<<redacted>@example.org> SIZE=1024"),
    ("unknown user <ann@example.org>", "unknown user <<redacted>@example.org>"),
    ("550 5.1.1 Invalid Recipient <ann@example.org>", "550 5.1.1 Invalid Recipient <<redacted>@example.org>"),
    ("id=Ann <ann@example.org>", "id=Ann <<redacted>@example.org>"),
    ("to=<ann@example.org>, relay=mx.example.org", "to=<<redacted>@example.org>, relay=mx.example.org"),
    ('"" <ann@example.org>', '"" <<redacted>@example.org>'),
    ("Error, Ann <ann@example.org>", "Error, <redacted> <<redacted>@example.org>"),  # a reply's word before the comma
    # not a name-addr (no angle brackets): the address is masked, the words are not known to be its owner's
    ("Ann Lee ann@example.org", "Ann Lee <redacted>@example.org"),
]


@pytest.mark.parametrize("text,expected", MASKED + KEPT)
def test_a_display_name_is_masked_with_its_address(text, expected):
    assert redact(text, "domain") == expected


def test_every_mode_but_off_masks_the_name():
    text = 'bounce for "Ann Lee" <ann@example.org>'
    assert redact(text, "full") == 'bounce for "<redacted>" <<redacted>@<redacted>>'
    assert redact(text, "off") == text


def test_an_escaped_quote_stays_an_escape():
    """A JSON log body (`"to": "\\"Ann Lee\\" <...>"`) stays valid JSON: the backslash before the closing quote is kept."""
    body = json.dumps({"to": '"Ann Lee" <ann@example.org>'})
    assert json.loads(redact(body)) == {"to": '"<redacted>" <<redacted>@example.org>'}


def test_the_instrumentors_masking_masks_the_name_too(monkeypatch):
    from instrumentation.common import send
    from mailscope.config import reload_settings

    monkeypatch.setenv("MAILSCOPE_REDACT", "domain")
    reload_settings()
    try:
        assert send.mask_addresses("Ann Lee <ann@example.org>") == "<redacted> <<redacted>@example.org>"
    finally:
        monkeypatch.undo()
        reload_settings()


_WORD = st.from_regex(r"[A-ZÉÖ][a-zäöüßéèçñ]{2,9}", fullmatch=True).filter(lambda word: word.lower() not in NOT_NAMES)
_NAME = st.lists(_WORD, min_size=1, max_size=4).map(" ".join)
_SHAPES = ['"{n}" <{e}>', "'{n}' <{e}>", "To: {n} <{e}>", "cc: {n} <{e}>", "sending to {n} <{e}>", "['{n} <{e}>']",
           "{n} <{e}>", "a@example.net, {n} <{e}>", "rejected: {n} <{e}>", '{{"to": "{n} <{e}>"}}',
           "550 5.1.1 Invalid Recipient {n} <{e}> unknown", "To: Quist, {n} <{e}>"]


@settings(max_examples=300, deadline=None)
@given(_NAME, st.sampled_from(_SHAPES), st.sampled_from(["domain", "full"]))
def test_property_no_word_of_a_display_name_survives(name, shape, mode):
    text = shape.format(n=name, e="someone@example.org")
    out = redact(text, mode)
    assert MASK in out
    fixed = set(re.findall(r"\w+", shape))
    for word in name.split():
        if word not in fixed:
            assert not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", out), (text, out)

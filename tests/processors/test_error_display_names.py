"""A display name before an address is a person's name: it must not reach an error pattern (no PII leaves the
process). Found while reading the sixteenth wave's grouping: parsers quote the whole `Ann Lee <ann@...>` they
refused, and servers and libraries print `"Ann Lee" <ann@...>` and `To: Ann Lee <ann@...>`."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from mailscope.processors.errors import classify
from mailscope.processors.redact import NOT_NAMES


@pytest.mark.parametrize("text", [
    '550 5.1.1 "John Smith" <john@example.org>: Recipient address rejected: User unknown',
    "To: John Smith <john@example.org>",
    "To: john smith <john@example.org>",
    "Invalid address:  (to): John Smith <john@example.org",  # PHPMailer
    'failed to parse mail address "John Smith <john@example.org": mail: unclosed angle-addr',  # Go net/mail
    "Local address contains control or whitespace in string ``John Smith <john@example.org>''",  # Jakarta Mail
    "Recipient address rejected: John Smith <john@example.org>",
    "SMTPRecipientsRefused: {'John Smith <john@example.org>': (550, b'5.1.1 unknown')}",
    # after any word, as redaction masks it (the privacy matrix's exception text)
    "cannot deliver to John Smith <john@example.org>",
    "550 Invalid Recipient John Smith <john@example.org>",
    "Recipient address rejected: Smith, John <john@example.org>",  # a directory's last name first
])
def test_a_display_name_does_not_reach_the_pattern(text):
    pattern = classify(text).pattern
    assert not re.search(r"(?i)\b(?:john|smith)\b", pattern), pattern


def test_a_name_with_accents_and_three_words_is_masked():
    pattern = classify("Recipient address rejected: José María García <jm@example.org>").pattern
    assert not re.search(r"José|María|García", pattern), pattern


@pytest.mark.parametrize("text,kept", [
    # a reply's own words before an address are not a name
    ('smtpd[1]: 1a2b smtp failed-command command="RCPT TO:<a@example.org>" result="550 5.1.1 Invalid recipient '
     '<a@example.org>"', "Invalid recipient"),
    ("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", "User unknown"),
    ("RCPT TO:<a@example.org> 550 unknown user <a@example.org>", "unknown user"),
    ("550 5.1.1 Invalid Recipient <a@example.org>", "Invalid Recipient"),
    ("550 Invalid Recipient Ann Lee <a@example.org>", "Invalid Recipient"),
])
def test_words_that_are_no_name_stay(text, kept):
    assert kept in classify(text).pattern


# a word of NOT_NAMES is a reply's word, never a name (`Invalid Recipient <...>`)
_WORD = st.from_regex(r"[A-Z][a-z]{2,9}", fullmatch=True).filter(lambda word: word.lower() not in NOT_NAMES)
_NAME = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_SHAPES = ['550 5.1.1 "{n}" <{e}>: Recipient address rejected', "To: {n} <{e}>", '"{n} <{e}>": unclosed angle-addr',
           "Invalid address:  (to): {n} <{e}", "in string ``{n} <{e}>''", "Recipient address rejected: {n} <{e}>",
           "cannot deliver to {n} <{e}>", "SMTPRecipientsRefused: {{'{n} <{e}>': (550, b'no')}}",
           "550 Invalid Recipient {n} <{e}>"]


@settings(max_examples=200, deadline=None)
@given(_NAME, st.sampled_from(_SHAPES))
def test_property_no_display_name_word_reaches_the_pattern(name, shape):
    text = shape.format(n=name, e="someone@example.org")
    pattern = classify(text).pattern
    fixed = set(re.findall(r"[A-Za-z]+", shape))
    for word in name.split():
        if word not in fixed:
            assert not re.search(rf"\b{word}\b", pattern), (text, pattern)

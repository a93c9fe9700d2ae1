"""A bounce or a queue that quotes the message's Subject quotes rendered text: it can hold personalization values (no
value may leave the process) and differs in every campaign (one error, one fingerprint). The error pattern masks it
up to the next field or the report's own words, or to the end of its line."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from mailscope.processors.errors import classify

SHAPES = [
    # (text with {s} for the subject, words after the subject that must stay)
    ("Delivery is delayed to these recipients or groups: ann@example.org Subject: {s} This message hasn't been "
     "delivered yet. Delivery will continue to be attempted.", "This message hasn't been delivered yet"),
    ("Your message did not reach some or all of the intended recipients. Subject: {s} Sent: 1/2/2024 10:00 AM The "
     "following recipient(s) cannot be reached", "Sent:"),
    ("Your message Subject: {s} was not delivered to: ann@example.org because: not listed in Domino Directory",
     "was not delivered to"),
    ("Mail Queue | Subject: {s} | Sender: a@example.org | Status: Deferred", "| Sender:"),
    # Postfix's header check reject: masked before too (a guard)
    ("Dec 1 10:00:00 mx postfix/cleanup[123]: ABC123: reject: header Subject: {s} from mail.example.org[192.0.2.1]; "
     "from=<a@example.org> to=<b@example.org> proto=ESMTP helo=<x>: 5.7.1 message content rejected", "content rejected"),
    ("To: ann@example.org\nSubject: {s}\n\nThe mail system said: 550 5.1.1 user unknown", "550 5.1.1 user unknown"),
]


@pytest.mark.parametrize("shape,kept", SHAPES)
def test_a_quoted_subject_is_masked_and_the_report_around_it_stays(shape, kept):
    first = classify(shape.format(s="Ann, your order 4711 has shipped"))
    second = classify(shape.format(s="Weekly digest for Bob"))
    for word in ("Ann", "order", "shipped", "Weekly", "digest", "Bob"):
        assert not re.search(rf"\b{word}\b", first.pattern + " " + second.pattern), (first.pattern, second.pattern)
    assert "Subject: <*>" in first.pattern or "SUBJECT: <*>" in first.pattern, first.pattern
    assert kept in first.pattern, first.pattern
    assert first.fingerprint == second.fingerprint and first.category == second.category


@pytest.mark.parametrize("text", [
    "552 5.7.0 Subject line too long",  # the word, not a quoted header
    "554 5.6.0 Message has no subject",
    "Subject:",
])
def test_text_that_quotes_no_subject_is_left_alone(text):
    assert classify(text).pattern == text


_WORD = st.from_regex(r"[A-Za-z][a-z]{2,9}", fullmatch=True)
_SUBJECT = st.lists(_WORD, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_SUBJECT, st.sampled_from([shape for shape, _ in SHAPES]))
def test_property_no_word_of_a_subject_reaches_the_pattern(subject, shape):
    pattern = classify(shape.format(s=subject)).pattern
    fixed = {word.lower() for word in re.findall(r"[A-Za-z]+", shape)}
    for word in subject.split():
        if word.lower() not in fixed:
            assert not re.search(rf"(?i)\b{word}\b", pattern), (subject, pattern)

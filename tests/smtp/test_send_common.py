"""send_common: the provider-neutral description of a send, checked against the standard library.

Where the standard library already answers a question (how smtplib sizes a text
message, what the email parser reads as a Message-ID), the helpers are compared
with it on generated input rather than with hand-written expectations.
"""

import email
import email.policy
import hashlib
import smtplib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.instrumentation.common import send as common

LOCAL = st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s
)
LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
DOMAIN = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(LABEL, min_size=1, max_size=3),
                   st.sampled_from(["com", "org", "net", "io", "example"]))
ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN)


@pytest.fixture
def mapped_headers():
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id,X-Tenant=email.tenant")
    yield
    reload_settings()


# --- recipients ------------------------------------------------------------------
ODD_VALUES = st.recursive(
    st.none() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30) | st.binary(max_size=30) | ADDRESS,
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner) | st.sets(st.text(max_size=5), max_size=3),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(ODD_VALUES)
def test_normalize_recipients_accepts_anything(value):
    result = common.normalize_recipients(value)
    assert result is None or all(isinstance(a, str) for a in result)


def test_normalize_recipients_shapes():
    from email.headerregistry import Address, Group

    assert common.normalize_recipients("a@x.org") == ["a@x.org"]  # a single string is one recipient
    assert common.normalize_recipients(b"a@x.org") == ["a@x.org"]
    assert common.normalize_recipients(("a@x.org", [b"b@y.org"])) == ["a@x.org", "b@y.org"]
    assert common.normalize_recipients(Address("A", "a", "x.org")) == ["a@x.org"]
    assert common.normalize_recipients([Group("team", [Address("B", "b", "y.org"), Address("C", "c", "z.org")])]) == [
        "b@y.org", "c@z.org"]
    generator = (a for a in ["a@x.org"])
    assert common.normalize_recipients(generator) is None  # not consumed: unknown
    assert next(generator) == "a@x.org"


@settings(max_examples=100, deadline=None)
@given(st.lists(ADDRESS | st.builds(lambda n, a: f"{n} <{a}>", st.text(string.ascii_letters, max_size=8), ADDRESS),
                max_size=40))
def test_recipient_domains_are_sorted_unique_bounded_and_real(addresses):
    domains = common.recipient_domains(addresses)
    everything = {email.utils.parseaddr(a)[1].rpartition("@")[2].lower() for a in addresses}
    assert domains == sorted(everything)[: attr.MAX_RECIPIENT_DOMAINS]


def test_envelope_attributes_never_carry_addresses():
    recipients = [f"user{i}@d{i}.example.com" for i in range(25)]
    values = common.envelope_attributes("smtp", recipients)
    assert values[attr.RECIPIENTS_COUNT] == 25
    assert len(values[attr.RECIPIENTS_DOMAINS]) == 10
    assert not any("user" in str(v) for v in values.values())
    assert attr.RECIPIENTS_COUNT not in common.envelope_attributes("smtp", None)


# --- message ---------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.text(string.ascii_letters + string.digits + ".-_$@", min_size=1, max_size=40))
def test_message_id_hash_follows_the_contract(core):
    expected = hashlib.sha256(core.encode()).hexdigest()[:16]
    assert common.message_id_hash(f"<{core}>") == expected
    assert common.message_id_hash(core) == expected
    assert common.message_id_hash(f"  <{core}>\r\n") == expected


@settings(max_examples=100, deadline=None)
@given(st.text(string.printable.replace("\x0b", "").replace("\x0c", ""), max_size=200))
def test_message_size_matches_what_smtplib_sends_for_text(text):
    # smtplib turns a str message into bytes with smtplib._fix_eols(...).encode("ascii")
    assert common.message_size(text) == len(smtplib._fix_eols(text).encode("ascii"))


HEADER_VALUE = st.text(string.ascii_letters + string.digits + "<>@._-", min_size=1, max_size=30).map(str.strip).filter(bool)


@settings(max_examples=100, deadline=None)
@given(HEADER_VALUE, HEADER_VALUE, st.sampled_from(["\r\n", "\n"]), st.booleans(), st.booleans())
def test_raw_header_scan_agrees_with_the_email_parser(message_id, campaign, eol, folded, as_bytes):
    fold = f"{eol} " if folded else " "
    raw = eol.join([
        "From: someone@example.com",
        f"Message-ID:{fold}{message_id}",
        f"X-Campaign-ID: {campaign}",
        "Subject: hi",
        "",
        "Message-ID: <in-the-body@example.com>",
    ])
    parsed = email.message_from_string(raw, policy=email.policy.compat32)
    found = common.headers_from_raw(raw.encode() if as_bytes else raw)
    assert found[common.MESSAGE_ID_HEADER] == " ".join(parsed["Message-ID"].split())


def test_message_attributes_from_a_message_and_from_raw_text(mapped_headers):
    msg = email.message.EmailMessage()
    msg["Message-ID"] = "<abc.123@example.com>"
    msg["X-Campaign-ID"] = "spring"
    msg["X-Tenant"] = "Acme <billing@acme.example>"
    from_object = common.message_attributes(common.headers_from_message(msg))
    from_raw = common.message_attributes(common.headers_from_raw(msg.as_bytes()))
    assert from_object == from_raw
    assert from_object[attr.MESSAGE_ID_HASH] == hashlib.sha256(b"abc.123@example.com").hexdigest()[:16]
    assert from_object["email.campaign.id"] == "spring"
    assert "billing@" not in from_object["email.tenant"] and "acme.example" in from_object["email.tenant"]
    assert common.message_attributes(common.headers_from_message(email.message.Message())) == {}


@settings(max_examples=100, deadline=None)
@given(st.lists(ADDRESS, min_size=1, max_size=4), st.text(" ,;<>\t", min_size=1, max_size=5))
def test_mask_addresses_keeps_domains_only(addresses, glue):
    text = glue.join(addresses)
    masked = common.mask_addresses(text)
    for address in addresses:
        local, _, domain = address.partition("@")
        assert f"{local}@" not in masked
        assert domain in masked


# --- replies ---------------------------------------------------------------------
STATUS = st.tuples(st.sampled_from("245"), st.integers(0, 999), st.integers(0, 999))


@settings(max_examples=100, deadline=None)
@given(STATUS, st.text(string.ascii_letters + " <>@.", max_size=30), st.booleans())
def test_enhanced_status_is_read_from_the_reply_text(status, rest, as_bytes):
    klass, subject, detail = status
    text = f"{klass}.{subject}.{detail} {rest}"
    code = int(klass) * 100 + 50
    assert common.enhanced_status(text.encode() if as_bytes else text, code) == f"{klass}.{subject}.{detail}"
    other = int({"2": "5", "4": "2", "5": "4"}[klass]) * 100
    assert common.enhanced_status(text, other) is None  # RFC 3463: the class must match the reply


@pytest.mark.parametrize("text", ["mx.example.com ESMTP", "250-PIPELINING", "2.0 ok", "5.1.1.1 host", "", None])
def test_no_enhanced_status_where_there_is_none(text):
    assert common.enhanced_status(text, 250) is None


def test_refusal_events_carry_domains_only():
    tracer = TracerProvider().get_tracer("t")
    span = tracer.start_span("s")
    refusals = [("x@gone.example", 550, b"5.1.1 <x@gone.example> unknown"), (b"y@full.example", 452, "4.2.2 full"),
                ("not-an-address", 550, "no status")]
    assert common.add_refusal_events(span, refusals) == 3
    span.end()
    events = [dict(e.attributes) for e in span.events]
    assert events == [
        {attr.SMTP_RESPONSE_CODE: 550, attr.SMTP_ENHANCED_STATUS: "5.1.1", attr.RECIPIENT_DOMAIN: "gone.example"},
        {attr.SMTP_RESPONSE_CODE: 452, attr.SMTP_ENHANCED_STATUS: "4.2.2", attr.RECIPIENT_DOMAIN: "full.example"},
        {attr.SMTP_RESPONSE_CODE: 550},
    ]

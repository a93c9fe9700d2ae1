"""smtplib / aiosmtplib exceptions: their str() is a repr of the SMTP reply, the pattern reads as the reply.

Every message here is str() of a real exception instance, constructed or raised by the real
client against the aiosmtpd test server, never a hand-written repr.
"""

import asyncio
import re
import smtplib

import aiosmtplib
import aiosmtplib.errors as aio
import pytest

from mailscope import attributes as attr
from mailscope.processors.error_patterns import MAX_INPUT_CHARS
from mailscope.processors.errors import classify
from tests.support.smtp_server import Behaviour, SMTPTestServer

ADDRESS_SHAPE = re.compile(r"[\w.+'%=-]+@[\w-]+\.[\w.-]+")
UNKNOWN = "5.1.1 <{}>: Recipient address rejected: User unknown"
UNKNOWN_PATTERN = "550 5.1.1 <email>: Recipient address rejected: User unknown"
PEOPLE = ["ann@example.org", "bob.smith@mail.example.net", "zoë+news@bücher.de"]


def type_name(exc) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def classified(exc):
    message = str(exc)
    result = classify(message, type_name(exc))
    assert "@" not in result.pattern and not ADDRESS_SHAPE.search(result.pattern), (message, result.pattern)
    return result


def smtplib_refused(addresses, reply=UNKNOWN, code=550):
    return smtplib.SMTPRecipientsRefused({a: (code, reply.format(a).encode()) for a in addresses})


def aiosmtplib_refused(addresses, reply=UNKNOWN, code=550):
    return aio.SMTPRecipientsRefused([aio.SMTPRecipientRefused(code, reply.format(a), a) for a in addresses])


@pytest.mark.parametrize(
    "exc,pattern,category,retryable",
    [
        (smtplib_refused(PEOPLE[:1]), UNKNOWN_PATTERN, "recipient", False),
        (aiosmtplib_refused(PEOPLE[:1]), UNKNOWN_PATTERN, "recipient", False),
        (smtplib.SMTPDataError(552, b"5.2.2 Mailbox full"), "552 5.2.2 Mailbox full", "mailbox_full", False),
        (aio.SMTPDataError(552, "5.2.2 Mailbox full"), "552 5.2.2 Mailbox full", "mailbox_full", False),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender rejected", "me@x.com"), "553 5.7.1 Sender rejected",
         "reputation", False),
        (aio.SMTPSenderRefused(553, "5.7.1 Sender rejected", "me@x.com"), "553 5.7.1 Sender rejected",
         "reputation", False),
        # Gmail's `421 4.7.0 Try again later, closing connection`: infrastructure, the one answer that every corpus
        # labelling it accepts (docs/errors-quality.md, "A better vote")
        (smtplib.SMTPResponseException(421, b"4.7.0 Try again later\nclosing connection"),
         "421 4.7.0 Try again later closing connection", "infrastructure", True),
        (smtplib.SMTPResponseException(421, b"4.7.0 Try again later\r\nclosing connection"),
         "421 4.7.0 Try again later closing connection", "infrastructure", True),
        (aio.SMTPResponseException(421, "4.7.0 Try again later\nclosing connection"),
         "421 4.7.0 Try again later closing connection", "infrastructure", True),
        (smtplib.SMTPDataError(450, b"4.2.1 The user you are trying to contact is receiving mail at a rate that "
                                    b"prevents additional messages from being delivered."),
         "450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional "
         "messages from being delivered.", "rate_limit", True),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Username and Password not accepted."),
         "535 5.7.8 Username and Password not accepted.", "authentication", False),
        (aio.SMTPAuthenticationError(535, "5.7.8 Username and Password not accepted."),
         "535 5.7.8 Username and Password not accepted.", "authentication", False),
        (smtplib.SMTPHeloError(501, b"Syntax error"), "501 Syntax error", "validation", False),
        # the code stays a code even when the text starts with a host name
        (smtplib.SMTPConnectError(421, b"mx.example.org Service not available, closing transmission channel"),
         "421 <host> Service not available, closing transmission channel", "infrastructure", True),
        # smtplib's multi-line reply: the lines joined by \n, each with Gmail's enhanced code
        (smtplib.SMTPDataError(550, b"5.4.5 Daily user sending limit exceeded.\n5.4.5 For more information go to"
                                    b"\n5.4.5  https://support.google.com/a/answer/166852 d9443c01a7336-1f3a - gsmtp"),
         "550 5.4.5 Daily user sending limit exceeded. 5.4.5 For more information go to 5.4.5 <url> <*> - gsmtp",
         "rate_limit", True),
        # a quote in the text makes Python choose double quotes for the repr
        (smtplib.SMTPDataError(554, b"Transaction failed: Duplicate header 'Subject'."),
         "554 Transaction failed: Duplicate header <*>.", "content", False),
    ],
    ids=lambda value: type_name(value) if isinstance(value, BaseException) else None,
)
def test_exception_reprs_read_as_the_reply(exc, pattern, category, retryable):
    result = classified(exc)
    assert result.pattern == pattern, str(exc)
    assert (result.category, result.retryable) == (category, retryable)


@pytest.mark.parametrize("refused", [smtplib_refused, aiosmtplib_refused], ids=["smtplib", "aiosmtplib"])
def test_one_or_three_identical_refusals_share_pattern_and_fingerprint(refused):
    one, three = classified(refused(PEOPLE[:1])), classified(refused(PEOPLE))
    assert one.pattern == three.pattern == UNKNOWN_PATTERN
    assert one.fingerprint == three.fingerprint
    assert (one.category, one.retryable) == (three.category, three.retryable) == ("recipient", False)


@pytest.mark.parametrize("refused", [smtplib_refused, aiosmtplib_refused], ids=["smtplib", "aiosmtplib"])
def test_different_replies_get_different_fingerprints(refused):
    unknown = classified(refused(PEOPLE))
    full = classified(refused(PEOPLE, "4.2.2 <{}>: Mailbox full, over quota", code=452))
    assert full.pattern == "452 4.2.2 <email>: Mailbox full, over quota"
    assert full.fingerprint != unknown.fingerprint
    assert (full.category, full.retryable) == ("mailbox_full", True)


def test_mixed_refusals_list_distinct_replies_in_order_and_the_first_decides():
    exc = smtplib.SMTPRecipientsRefused({
        PEOPLE[0]: (550, UNKNOWN.format(PEOPLE[0]).encode()),
        PEOPLE[1]: (452, f"4.2.2 <{PEOPLE[1]}>: Mailbox full".encode()),
        PEOPLE[2]: (550, UNKNOWN.format(PEOPLE[2]).encode()),
    })
    result = classified(exc)
    assert result.pattern == UNKNOWN_PATTERN + "; 452 4.2.2 <email>: Mailbox full"
    assert (result.category, result.retryable) == ("recipient", False)
    items = list(exc.recipients.items())
    reordered = classified(smtplib.SMTPRecipientsRefused(dict([items[1], items[0], items[2]])))
    assert reordered.pattern == "452 4.2.2 <email>: Mailbox full; " + UNKNOWN_PATTERN
    assert (reordered.category, reordered.retryable) == ("mailbox_full", True)
    assert reordered.fingerprint != result.fingerprint


def test_smtplib_and_aiosmtplib_agree_on_the_pattern():
    pairs = [
        (smtplib_refused(PEOPLE), aiosmtplib_refused(PEOPLE)),
        (smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"), aio.SMTPDataError(554, "5.7.1 Message rejected as spam")),
        (smtplib.SMTPSenderRefused(550, b"5.7.1 <me@x.com>: SPF check failed", "me@x.com"),
         aio.SMTPSenderRefused(550, "5.7.1 <me@x.com>: SPF check failed", "me@x.com")),
    ]
    for sync, not_sync in pairs:
        a, b = classified(sync), classified(not_sync)
        assert a.pattern == b.pattern and (a.category, a.retryable) == (b.category, b.retryable), (a, b)


def test_fifty_refusals_beyond_the_input_cap_match_one():
    addresses = [f"subscriber.{i:03d}@readers{i}.example.com" for i in range(50)]
    exc = smtplib_refused(addresses)
    assert len(str(exc)) > MAX_INPUT_CHARS  # the cap cuts the dict in the middle of an entry
    assert classified(exc) == classified(smtplib_refused(addresses[:1]))
    assert classified(aiosmtplib_refused(addresses)) == classified(aiosmtplib_refused(addresses[:1]))


def test_text_around_the_repr_is_kept_and_masked():
    exc = smtplib_refused(PEOPLE)
    assert classify(f"smtplib.SMTPRecipientsRefused: {exc}").pattern == "smtplib.SMTPRecipientsRefused: " + UNKNOWN_PATTERN
    assert classify(repr(exc)).pattern == "SMTPRecipientsRefused " + UNKNOWN_PATTERN
    data = smtplib.SMTPDataError(552, b"5.2.2 Mailbox full")
    assert classify(repr(data)).pattern == "SMTPDataError 552 5.2.2 Mailbox full"
    assert classify(f"send to bob@example.org failed after 3 tries: {data}").pattern == (
        "send to <email> failed after <*> tries: 552 5.2.2 Mailbox full"
    )


def test_non_ascii_addresses_in_bytes_reprs_are_masked():
    exc = smtplib_refused(["zoë@bücher.de"], "5.1.1 <{}> unknown")
    assert "\\x" in str(exc)  # bytes repr of UTF-8
    assert classified(exc).pattern == "550 5.1.1 <email> unknown"
    assert classified(aiosmtplib_refused(["zoë@bücher.de"], "5.1.1 <{}> unknown")).pattern == "550 5.1.1 <email> unknown"


def test_other_tuples_and_plain_messages_are_left_alone():
    # not an SMTP reply: errno-like numbers and tuples without a quoted text keep the old masking
    assert classify("[Errno 111] Connect call failed ('127.0.0.1', 25)").pattern == classify(
        "[Errno 111] Connect call failed ('10.0.0.9', 2525)").pattern
    assert classify(str(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))).pattern == (
        "Connection unexpectedly closed"
    )
    assert classify("(111, 'Connection refused')").pattern != "111 Connection refused"


# --- raised by the real clients against a real server ---------------------------------
REFUSE_ALL = Behaviour(refuse={a: f"550 5.1.1 <{a}>: Recipient address rejected: User unknown"
                               for a in ("ann@example.org", "bob@example.net", "cat@example.com")})


def smtplib_send(server, recipients):
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
            client.sendmail("news@example.com", recipients, "Subject: hi\r\n\r\nbody\r\n")
    return raised.value


def aiosmtplib_send(server, recipients):
    async def send():
        client = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False, timeout=10)
        async with client:
            await client.sendmail("news@example.com", recipients, "Subject: hi\r\n\r\nbody\r\n")

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as raised:
        asyncio.run(send())
    return raised.value


@pytest.mark.parametrize("send", [smtplib_send, aiosmtplib_send], ids=["smtplib", "aiosmtplib"])
def test_refusals_raised_by_the_client(send):
    recipients = sorted(REFUSE_ALL.refuse)
    with SMTPTestServer(REFUSE_ALL) as server:
        one, three = classified(send(server, recipients[:1])), classified(send(server, recipients))
    assert one.pattern == three.pattern == UNKNOWN_PATTERN
    assert one.fingerprint == three.fingerprint
    assert (one.category, one.retryable) == ("recipient", False)
    assert len(one.pattern) <= attr.ERROR_PATTERN_MAX_CHARS


def test_a_hand_made_repr_with_an_apostrophe_in_the_address_is_read_the_same():
    # Python would write "o'brien@x.org"; a log line formatted by hand leaves the quote bare
    real = classified(smtplib_refused(["o'brien@example.org", "ann@example.org"], "5.1.1 <{}> unknown"))
    hand = classify("{'o'brien@example.org': (550, b'5.1.1 <o'brien@example.org> unknown')}")
    assert real.pattern == hand.pattern == "550 5.1.1 <email> unknown"

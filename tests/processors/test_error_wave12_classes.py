"""Failure classes of the twelfth wave's tuning part (high-volume sending MTAs, receiving providers of other regions,
sending libraries of other languages, self-hosted applications), one case each, written as variants of the rows, not
the rows. Every case but the controls fails on the code before the wave's rules (docs/errors-quality.md, "Twelfth
wave")."""

import smtplib
import ssl

import pytest

from mailscope.processors.errors import classify
from tests.support.smtp_server import SMTPTestServer


@pytest.mark.parametrize("message,error_type", [
    # the client speaks TLS to a plain-text port, plain text to a TLS port, or no TLS version both ends accept: its TLS
    # mode, port or version setting (docs/errors-quality.md, "TLS mode mismatches")
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", "ssl.SSLError"),
    ("Could not connect to SMTP host: mail.example.net, port: 465; nested exception is: javax.net.ssl.SSLException: "
     "Unrecognized SSL message, plaintext connection?", "jakarta.mail.MessagingException"),
    ("dial: tls: first record does not look like a TLS handshake", None),
    ("curl: (35) OpenSSL/3.0.13: error:0A00010B:SSL routines::wrong version number", None),
    ("System.Security.Authentication.AuthenticationException: The handshake failed due to an unexpected packet format.",
     None),
    ("smtp relay: remote error: tls: protocol version not supported", None),
    ("[SSL] record layer failure (_ssl.c:1029)", "ssl.SSLError"),  # OpenSSL 3.2 and later
])
def test_tls_mode_mismatch_is_the_clients_setting(message, error_type):
    result = classify(message, error_type)
    assert (result.category, result.retryable) == ("validation", False)


def test_implicit_tls_against_a_plain_text_server_is_the_clients_setting():
    # what this machine's Python and OpenSSL really raise when SMTP_SSL meets a plain-text port
    with SMTPTestServer() as server:
        with pytest.raises(ssl.SSLError) as raised:
            smtplib.SMTP_SSL(server.host, server.port, context=ssl.create_default_context(), timeout=10)
    result = classify(str(raised.value), "ssl.SSLError")
    assert (result.category, result.retryable) == ("validation", False)


@pytest.mark.parametrize("message,expected", [
    # RFC 3463's description of an enhanced code after it (PowerMTA's accounting records) is read as the code: the
    # reply after it decides
    ('b,2026-01-02 10:00:00+0000,ann@example.org,,failed,5.7.1 (delivery not authorized, message refused),'
     '"smtp;554 5.7.1 Service unavailable; client host [198.51.100.4] blocked using zen.spamhaus.org",'
     'mx.example.net (203.0.113.9),spam-related', "reputation"),
    ('d,5.7.1 (delivery not authorized, message refused),"smtp;554 5.7.1 Too many connections from your IP, slow down"',
     "rate_limit"),
    # a filter's words for what the message holds: content (docs/errors-quality.md, "Spam verdicts")
    ("550 5.7.1 Message rejected: spam content detected", "content"),
    ("553 Your message may contain spam patterns, rejected", "content"),
    ("554 5.7.1 Message refused by ExampleNet antispam (score 14.2)", "content"),
    ("554 5.7.1 Message rejected as bulk / spam", "content"),
    # the client will not go on without the TLS it was told to demand, or has nothing to send to, or shares no
    # authentication mechanism with the server: its settings
    ("SmtpClientSecureException: STARTTLS was required but the server did not offer it", "validation"),
    ("Refusing to log in: connection is not secure", "validation"),
    ("The server does not support PLAIN authentication method.", "validation"),
    ("The supported authentication mechanisms could not be found on smtp.example.net", "validation"),
    ("Mail job failed: the mail does not have any recipients.", "validation"),
    ("Message not sent: NO_RECIPIENTS", "validation"),
    # the sender's own provider: a From its login may not use, mail that must leave through its own server
    ("550 5.7.1 Sender address not authorized for this account", "validation"),
    ("554 5.7.1 Customers must send via the ExampleNet outgoing mail server", "validation"),
    # the server answered with something that is not a reply, or the peer went away (curl's and asio's words)
    ("smtp.send: Failure when receiving data from the peer", "infrastructure"),
    ("Weird server reply", "infrastructure"),
    ("smtp client: the server sent an invalid reply", "infrastructure"),
    ("Response from the server was malformed", "infrastructure"),
    ("async_read: End of file", "infrastructure"),
])
def test_twelfth_wave_classes(message, expected):
    assert classify(message, None).category == expected


@pytest.mark.parametrize("message,expected", [
    # controls: a block of the sender for spam stays reputation
    ("554 5.7.1 Service unavailable; Client host [198.51.100.4] blocked by a spam source list", "reputation"),
    ("550 Your IP is on our antispam block list", "reputation"),
    # controls: the client's own malformed command stays validation, relaying without a login stays authentication
    ("501 5.5.4 Invalid command arguments", "validation"),
    ("554 5.7.1 <ann@example.org>: Relay access denied", "authentication"),
    # controls: a server's own log of a peer's TLS trouble, an untrusted certificate, a handshake the peer reset
    ("Mar  3 10:00:01 mx1 postfix/smtpd[812]: warning: TLS library problem: error:0A00010B:SSL routines::wrong version "
     "number:ssl/record/ssl3_record.c:354:", "infrastructure"),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1000)", "infrastructure"),
])
def test_twelfth_wave_controls(message, expected):
    assert classify(message, None).category == expected

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
    # controls: a server's own log of a peer's TLS trouble, an untrusted certificate, a handshake the peer reset
    ("Mar  3 10:00:01 mx1 postfix/smtpd[812]: warning: TLS library problem: error:0A00010B:SSL routines::wrong version "
     "number:ssl/record/ssl3_record.c:354:", "infrastructure"),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1000)", "infrastructure"),
])
def test_twelfth_wave_controls(message, expected):
    assert classify(message, None).category == expected

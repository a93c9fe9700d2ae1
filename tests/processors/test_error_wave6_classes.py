"""Failure classes of the sixth wave's tuning part (what users quoted in issue threads and forums), one case each.
Every case failed on the code before the wave's fixes (docs/errors-quality.md, "Sixth wave")."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,error_type,expected", [
    # RFC 3463's x.7.5 is a cryptographic failure: Postfix's TLS trouble, or a signature check; the words decide
    ("Mar  3 04:05:06 mx2 postfix/smtp[811]: 3B1C44A2F1: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, "
     "delay=1.2, delays=0.1/0/1.1/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)", None, "infrastructure"),
    ("554 5.7.5 Permanent error evaluating DMARC policy", None, "sender_auth"),
    # the word `reputation` over a syntax code
    ("554 5.5.4 Your IP 203.0.113.9 address has a bad reputation. To unblock visit https://x.example/u", None, "reputation"),
    # a reply refusing our address is a policy; a refused TCP connect is the network
    ("554 mx.example.net bizsmtp Connection refused from 203.0.113.9. See https://x.example/rbl", None, "reputation"),
    ("[Errno 111] Connection refused", "ConnectionRefusedError", "infrastructure"),
    ("554 5.7.0 Your message could not be sent. The limit on the number of allowed outgoing messages was exceeded.",
     None, "rate_limit"),
    ("Error: invalid_grant", None, "authentication"),
    ("550 User has no permission", "smtplib.SMTPSenderRefused", "authentication"),
    ("net/http: TLS handshake timeout", None, "timeout"),
    ("[outbound] Temp failing example.org for 60 seconds: Tried all MXs", None, "infrastructure"),
    ("Failure Reason: Error: Some recipients failed: bob@example.org", None, "recipient"),
    ("553 Requested action not taken: NULL sender is not allowed", None, "validation"),
    ("550 Requested mail action not taken: Fake sender", None, "sender_auth"),
    ("Your IT team has not authorized Acme to send emails on your behalf", None, "sender_auth"),
    ("550 5.7.703 Your message can't be delivered because messages to bob@example.org are blocked by your "
     "organization using Tenant Allow Block List.", None, "validation"),
    ("Invalid address; only bob@example.org could be parsed from \"bob@example.org, Ann\"", "ValueError", "validation"),
    ("procmail: Quota exceeded while writing \"/var/mail/bob\"", None, "mailbox_full"),
    ("Authentication failed because the remote party has closed the transport stream.", None, "infrastructure"),
    ("A call to SSPI failed, see inner exception.", None, "infrastructure"),
    ("SMTP ERROR: Failed to connect to server: Permission denied (13)", None, "infrastructure"),
    ("Could not access file: /srv/app/invoices/4411.pdf", None, "validation"),
    ("Process could not be started [The system cannot find the path specified.]", None, "validation"),
    ("SMTP ERROR: EHLO command failed: 550 Access denied - Invalid HELO name (See RFC2821 4.1.1.1)", None, "validation"),
    ("Expected response code 250 but got code \"500\", with message \"500 message line is too long\"", None, "content"),
    ("550 5.1.0 <ann@example.org> sender rejected. Please see https://x.example/aup for more information. AUP#In-1310",
     None, "reputation"),
])
def test_category(message, error_type, expected):
    assert classify(message, error_type).category == expected


@pytest.mark.parametrize("message,retryable", [
    ("Diagnostic-Code: X-Postfix; mail for example.org loops back to myself", False),  # retrying loops again
    ("SMTP ERROR: Failed to connect to server: Permission denied (13)", False),  # SELinux: a setting
])
def test_retryable(message, retryable):
    assert classify(message).retryable is retryable


@pytest.mark.parametrize("first,second", [
    # Celery's worker frame: the task's name is where, not what
    ("Task app.tasks.send_welcome[3f2a1b] retry: Retry in 30s: SMTPServerDisconnected('Connection unexpectedly closed')",
     "Task billing.send_invoice[9c0d2e] retry: Retry in 5s: SMTPServerDisconnected('Connection unexpectedly closed')"),
    # a scanner's name for what it found
    ("552 5.7.1 virus Eicar-Test-Signature detected by Zoho Mail", "552 5.7.1 virus Win.Trojan.Agent-123 detected by Zoho Mail"),
    # Go's x509: the name the client wanted is a host, even a bare one
    ("x509: certificate is not valid for any names, but wanted to match mail",
     "x509: certificate is not valid for any names, but wanted to match smtp.example.org"),
    # Java's InetAddress, name/address
    ("failed to connect to relay01/2001:db8::5 (port 25) after 30ms: isConnected failed: ENETUNREACH",
     "failed to connect to smtp.example.org/203.0.113.5 (port 587) after 12ms: isConnected failed: ENETUNREACH"),
])
def test_one_fingerprint(first, second):
    assert classify(first).fingerprint == classify(second).fingerprint, (classify(first).pattern, classify(second).pattern)

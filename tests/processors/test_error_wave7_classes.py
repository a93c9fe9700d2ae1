"""Failure classes of the seventh wave's tuning part (providers and gateways no older wave used, MTA log lines,
senders' exceptions), one case each, written as variants of the rows rather than copies of them.
Every case but the last two failed on the code before the wave (its rules and its word table; docs/errors-quality.md,
"Seventh wave"); the last two are controls that held before and must keep holding."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,error_type,expected", [
    # a service the MTA relies on failed: its virus scanner, its spam filter, its authentication server
    ("2026-03-01 10:00:00 1abCDe-000Xyz-9Q malware acl condition: clamd /run/clamd.sock : unable to connect to UNIX "
     "socket (/run/clamd.sock): No such file or directory", None, "infrastructure"),
    ("2026-03-01 10:00:00 1abCDe-000Xyz-9Q spam acl condition: all spamd servers failed", None, "infrastructure"),
    ("[WARN] [core] msg=\"Virus scanner error\" plugin=clamd", None, "infrastructure"),
    ("Mar  1 10:00:00 mail postfix/smtpd[42]: warning: unknown[198.51.100.7]: SASL LOGIN authentication failed: "
     "Connection lost to authentication server", None, "infrastructure"),
    # greylisting without the word, block lists in the plural, a domain block list, a spam source under a syntax code
    ("2026-03-01 10:00:00 H=mx.example.org [198.51.100.7] F=<a@example.org> temporarily rejected RCPT <b@example.net>: "
     "mx.example.org is not yet authorized to deliver mail from <a@example.org> to <b@example.net>. Please try later.",
     None, "reputation"),
    ("550 203.0.113.9 found on one or more RBLs (abusix). Refer to https://x.example/help", None, "reputation"),
    ("550 Sender domain example.org failed a DBL test", None, "reputation"),
    ("554 5.5.4 Spam source rejected", None, "reputation"),
    ("550 mail sending from this account has been suspended", None, "reputation"),
    # rate limits: open connections under 4.3.2, thresholds, a limited frequency
    ("421 4.3.2 Too many open connections, try again later", None, "rate_limit"),
    ("421 mx.example.net Daily message threshold reached", None, "rate_limit"),
    ("450 The frequency of sending messages is limited. https://x.example/help", None, "rate_limit"),
    # authentication: AUTH first (under 5.5.1), a relay attempt, `auth failed`, French, a challenge nobody expected
    ("530 5.5.1 Invalid command: Must issue an AUTH command first", None, "authentication"),
    ("Relay attempt from IP address 198.51.100.7 rejected", None, "authentication"),
    ("Mar  1 10:00:00 mx chasquid[7]: 198.51.100.7 auth failed for bob@example.org", None, "authentication"),
    ("535 5.7.0 Echec d'authentification", None, "authentication"),
    ("unexpected server challenge", None, "authentication"),
    # recipient: a mailbox currently suspended, an archived one under 5.5.0, a domain without a mail server
    ("550 Mailbox currently suspended - please contact the recipient another way", None, "recipient"),
    ("550 5.5.0 Archived mailbox", None, "recipient"),
    ("bob@example.org failed (permanent): Could not find mail server: lookup example.org on 127.0.0.53:53: no such host",
     None, "recipient"),
    # content: a forbidden attachment type, amavis's BANNED, header_checks, a content filter, spam found in the body
    ("552 mx.example.net attachment extension is forbidden here", None, "content"),
    ("554 5.7.0 Reject, id=12345-01 - BANNED: invoice.pdf.exe", None, "content"),
    ("450 4.5.5 Header checks reject", None, "content"),
    ("554 Content rejected: spam denied", None, "content"),
    ("550 Spam found in the message body. https://x.example/why", None, "content"),
    ("message has lines too long for transport", None, "content"),
    # sender authentication: Microsoft's Sender ID
    ("550 5.7.1 Sender ID (PRA) not permitted", None, "sender_auth"),
    # x.1.0 is `other address status`: the words say whose address
    ("501 5.1.0 Invalid sender", None, "validation"),
    ("550 5.1.0 Sender denied", None, "reputation"),
    # validation: a library not set up, a message it cannot build, a From domain without MX, our own key
    ("Unsupported mail transport [sendmial].", None, "validation"),
    ("No provider for smtps", "jakarta.mail.NoSuchProviderException", "validation"),
    ("Could not execute: /usr/sbin/sendmail -t -i", None, "validation"),
    ("[SSL: KEY_VALUES_MISMATCH] key values mismatch (_ssl.c:3929)", "ssl.SSLError", "validation"),
    ("No recipient addresses", "jakarta.mail.SendFailedException", "validation"),
    ("no sender address has been set", None, "validation"),
    ("\"to\" argument must be a list or tuple", None, "validation"),
    ("delivery error: expected :from to be set", None, "validation"),
    ("A message must have a text part, an HTML part or attachments.", None, "validation"),
    ("An invalid character was found in the mail header: ','.", "System.FormatException", "validation"),
    ("No MX for example.org FROM address", None, "validation"),
    ("{:error, :retries_exceeded, {:missing_requirement, \"mx.example.org\", :tls}}", None, "validation"),
    ("Mar  1 10:00:00 mx postfix/postscreen[9]: NON-SMTP COMMAND from [198.51.100.7]:51000 after CONNECT: GET / HTTP/1.1",
     None, "validation"),
    # infrastructure: a loop (too many Received headers), a load average, a client not connected, an inaccessible host
    ("554 Too many Received headers", None, "infrastructure"),
    ("Mar  1 10:00:00 mx sendmail[5]: rejecting connections on daemon MTA: load average: 41", None, "infrastructure"),
    ("SMTP ERROR: Called RCPT TO without being connected", None, "infrastructure"),
    ("Inaccessible host: `email.eu-west-1.amazonaws.com'", None, "infrastructure"),
    # timeouts: a time limit, a server that never answered the connection attempt
    ("status=bounced (Command time limit exceeded: \"/usr/local/bin/deliver\")", None, "timeout"),
    ("Message delivery to the host '203.0.113.9' failed while delivering to the remote domain example.org for the "
     "following reason: The remote server did not respond to a connection attempt.", None, "timeout"),
    # mailbox full: an account's storage limit
    ("Account storage limit", None, "mailbox_full"),
    # controls: a temporarily unavailable recipient stays the server's trouble; a bare refused connect stays infrastructure
    ("451 Recipient temporarily unavailable - https://x.example/help", None, "infrastructure"),
    ("dial tcp 203.0.113.9:25: connect: connection refused", None, "infrastructure"),
])
def test_seventh_wave_classes(message, error_type, expected):
    assert classify(message, error_type).category == expected


@pytest.mark.parametrize("variants", [
    # what a scanner found, after `infected with`
    ("554 5.7.1 Mail appears infected with Eicar-Test -- disinfect and resend.",
     "554 5.7.1 Mail appears infected with Trojan.Agent-77 -- disinfect and resend."),
    ('[INFO] [core] msg="Message is infected with Win.Test.EICAR_HDB-1"', '[INFO] [core] msg="Message is infected with Phish.X"'),
    # the encoding PHPMailer was given
    ("Unknown encoding: welcome", "Unknown encoding: 8bitx"),
    # Sendmail's `<local part>...`
    ("553 5.1.3 <deploybot>... User address required", "553 5.1.3 <first_name>... User address required"),
    # hosts that only their place tells
    ("dial tcp: address mailhog: missing port in address", "dial tcp: address smtp.internal: missing port in address"),
    ("msmtp: cannot locate host mail: Name or service not known", "msmtp: cannot locate host relay-7: Name or service not known"),
    ("2026-03-01 10:00:00 MAILHOST SMTPSVC 4000: Message delivery to the remote domain example.org failed",
     "2026-03-01 10:00:00 prod-mailer-2 SMTPSVC 4000: Message delivery to the remote domain example.org failed"),
    ("2026-03-01T10:00:00.000Z,EX01\\Default Frontend EX01,08D1,10.0.0.5,>,550 5.1.0 Sender denied,",
     "2026-03-01T10:00:00.000Z,mta-7\\Default Frontend gw,08D1,10.0.0.9,>,550 5.1.0 Sender denied,"),
])
def test_seventh_wave_values_mask_alike(variants):
    assert len({classify(message, None).fingerprint for message in variants}) == 1, [
        classify(message, None).pattern for message in variants]

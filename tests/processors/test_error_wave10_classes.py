"""Failure classes of the tenth wave's tuning part (returned bounce messages, smarthost and submission relays, filtering
gateways), one case each, written as variants of the rows, not the rows. 22 of the 26 cases fail on the code before
the wave's rules (docs/errors-quality.md, "Tenth wave"); the other four are controls, two of them variants that other
evidence already decided (the rows they vary did fail)."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,expected", [
    # a filter's verdict on what the message carries
    ("550 5.7.1 Your message was rejected because it was detected as phishing", "content"),
    ("554 Message refused: possible fraud attempt from mail.example.org", "content"),
    ("550 5.7.1 Rejected: suspected business email compromise", "content"),
    ("550 5.7.1 Message blocked by data loss prevention policy outbound-pci", "content"),
    ("554 5.7.1 Message rejected: threat detected (Trojan.Generic)", "content"),
    ("554 Rejected: links through a URL shortener are blocked by policy", "content"),
    ("550 5.7.1 Message rejected by mail gateway: file type scr is not permitted", "content"),  # control
    # the client and server share no authentication mechanism: the client's settings
    ("smtp: cannot find a usable authentication method", "validation"),
    ("Server does not advertise any supported authentication methods", "validation"),
    ("authentication method XOAUTH2 not supported", "validation"),
    # a local sending tool that cannot read its own setup
    ("dma[812]: can not open config `/etc/dma/dma.conf'", "validation"),
    ("nullmailer[90]: No remote hosts listed for delivery", "validation"),
    ("msmtp: account alerts not found in /home/app/.msmtprc", "validation"),
    ("postfix/smtp[77]: warning: TLS support is not compiled in", "validation"),
    # the recipient's own directory and allow list
    ("User Jane Roe (jane@example.org) not listed in public address book", "recipient"),
    ("Your message wasn't delivered: the group only accepts messages from approved senders.", "recipient"),
    ("550 4.7.1 Suppression for recipient jane@example.org", "recipient"),
    # SPF's permanent error, DKIM without a signature
    ("550 5.7.1 <ann@example.org>: Recipient address rejected: SPF Permanent Error: too many DNS lookups",  # control
     "sender_auth"),
    ("550 5.7.0 no signature data", "sender_auth"),
    # time the delivery ran out of
    ("Could not deliver the message in the time limit specified. Please retry or contact your administrator.", "timeout"),
    ("dma[44]: 1a2b3c: Could not deliver for the last 86400 seconds. Giving up.", "timeout"),
    ("421 Exceeded allowed connection time", "timeout"),
    # a loop, a scanner that is down
    ("Please DO NOT REPLY. Delivery to the following recipients failed: ann@example.org: Loop detected", "infrastructure"),
    ("451 4.7.1 Try later: virus scanning service unavailable", "infrastructure"),
    # controls: the server's own missing mechanisms stay authentication; a spam score stays as it was
    ("postfix/submission/smtpd[1]: fatal: no SASL authentication mechanisms", "authentication"),
    ("smtp: server doesn't support AUTH", "authentication"),
])
def test_tenth_wave_classes(message, expected):
    assert classify(message, None).category == expected


@pytest.mark.parametrize("message,expected", [
    # a spam filter's verdict on the message: review the message
    ("550 5.7.1 Blocked by SpamAssassin (score 8.2)", "content"),
    ("554 5.7.1 Your message was classified as spam by our filter", "content"),
    ("550 This email looks like spam (score 7.4, required 5.0)", "content"),
    ("554 Rejected: high probability of spam", "content"),
    ("bounce_class=52: The message was rejected as spam by the receiver", "content"),
    # controls: the sender blocked for spam stays reputation
    ("550 Suspected spam ip, see the postmaster page", "reputation"),
    ("421 Too many spams from your IP (198.51.100.7), please visit the postmaster site", "reputation"),
    ("554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org", "reputation"),
    ("550 5.5.4 Spam source rejected", "reputation"),
])
def test_a_spam_verdict_on_the_message_is_content_and_a_spam_block_of_the_sender_is_reputation(message, expected):
    assert classify(message, None).category == expected


@pytest.mark.parametrize("message,expected", [
    # a connection that ended without a reply, a name that does not resolve: the path to the server
    ('Connection to "smtp.example.org:465" has been closed unexpectedly.', "infrastructure"),
    ('Expected response code "220" but got code "", with message "".', "infrastructure"),
    ("nullmailer[12]: Sending failed: Host not found", "infrastructure"),
    ("Error: queryMx ENODATA example.org", "infrastructure"),
    # the sending tool's own source address setting
    ("nullmailer[12]: Sending failed: Failed to bind source address", "validation"),
])
def test_a_connection_that_ended_without_a_reply_is_infrastructure(message, expected):
    assert classify(message, None).category == expected

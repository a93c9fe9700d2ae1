"""Failure classes of the eleventh wave's tuning part (HTTP email APIs and SDKs, mail servers and suites, marketing
platforms' bounce and suppression reasons), one case each, written as variants of the rows, not the rows. Every case
but the controls fails on the code before the wave's rules (docs/errors-quality.md, "Eleventh wave")."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,expected", [
    # the sender's own list says the contact may not be mailed
    ("Skipped: subscriber ann@example.org is unsubscribed from marketing email", "recipient"),
    ("Email not sent to ann@example.org: contact has email status Cleaned", "recipient"),
    ("Contact ann@example.org was skipped: address is on your account blocklist", "recipient"),
    ("Message not sent: no marketing consent for this profile", "recipient"),
    ("ann@example.org is suppressed and cannot receive campaigns", "recipient"),
    # a list server that takes posts only from its members
    ("Your message to staff@lists.example.org was rejected: you are not allowed to post to this list", "recipient"),
    ("sympa_msg[33]: err Unknown list news@lists.example.org", "recipient"),
    # a server that wants SMTP AUTH first, a sender it suspects of spoofing, a message without the authentication required
    ("503 5.5.1 Error: you must authenticate first", "authentication"),
    ("550 5.7.1 Sender address not authenticated, possible spoofing", "sender_auth"),
    ("Block bounce: Authentication - Message lacks required authentication.", "sender_auth"),
    # the receiving server is down
    ("Soft bounce: the destination mail server is offline", "infrastructure"),
    # controls: a block of our IP stays reputation, a list's own block list of senders too
    ("554 Your IP 198.51.100.7 is blacklisted at bl.example.net", "reputation"),
    ("550 Sender ann@example.org is blacklisted by the recipient's postmaster", "reputation"),
])
def test_eleventh_wave_classes(message, expected):
    assert classify(message, None).category == expected

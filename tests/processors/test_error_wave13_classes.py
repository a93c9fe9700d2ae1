"""Failure classes of the thirteenth wave's tuning part (web hosts' and privacy mail services, forwarding and alias
services, email-to-SMS gateways and group addresses, cloud and serverless runtimes), one case each, written as variants
of the rows, not the rows. Every case but the controls fails on the code before the wave's rules
(docs/errors-quality.md, "Thirteenth wave")."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,expected", [
    # a group, a list, a subscriber or an alias owner that will not take this sender's mail
    ("Your post to team@groups.example.org was declined by a moderator.", "recipient"),
    ("staff only accepts posts from its members; posts from users outside the company are not allowed", "recipient"),
    ("You are not authorized to post to the ALUMNI-L list from ann@example.org.", "recipient"),
    ("550 5.7.1 <bob@example.net>: the addressee has blocked e-mails from ann@example.org", "recipient"),
    ("550 5.7.1 Mail to a no-reply address is not accepted", "recipient"),
    ("Relay mask bob@relay.example.com is set to block all emails", "recipient"),
    ("Jun 3 10:00:01 mx postsrsd[77]: srs_reverse: <SRS0=ab12=XY=example.org=ann@fwd.example.net> not reversed: "
     "Hash invalid in SRS address.", "recipient"),
    # a serverless runtime or container that died under the sender
    ("2026-06-03T10:00:01Z RequestId: 5f2c Error: Runtime exited with error: signal: killed", "infrastructure"),
    ("Reason: OOMKilled Exit Code: 137", "infrastructure"),
    # the function's own time limits are timeouts, not sending rate limits
    ("Function exceeded its CPU time limit while sending the email", "timeout"),
    ("Request aborted: maximum request timeout reached. To change this limit, see the docs", "timeout"),
    # the account's plan or the service: no SMTP, another port, a sender it may not use, no recipient, no template
    ("554 5.7.1 Basic accounts are not allowed to send from outside applications", "validation"),
    ("Connection to smtp.example.net:25 refused: use port 587 with authentication", "validation"),
    ("553 5.7.1 a masked alias cannot be used as the sender of SMTP submissions", "validation"),
    ("Failed to deliver email. Expected at least one of 'to', 'cc' or 'bcc' to contain at least a single recipient.",
     "validation"),
    ("Tried to render template 'welcome-v2', but it was not found", "validation"),
    # the sending host's reverse name, the DKIM signer: sender_auth; a cloud permission: authentication
    ("450 4.7.1 Client host rejected: reverse host name lookup failed for 198.51.100.9", "sender_auth"),
    ("Jun 3 10:00:01 mx opendkim[88]: 4XyZ1: error loading key 'mail'", "sender_auth"),
    ("PermissionDenied: 403 Permission 'storage.objects.get' denied on resource (or it may not exist).", "authentication"),
    # a receiver that defers for volume, an API over its quota
    ("421 4.7.0 Messages from 198.51.100.9 deferred due to volume, try later", "rate_limit"),
    ("OverQuotaError: mail.Send() required more quota than is available.", "rate_limit"),
])
def test_thirteenth_wave_classes(message, expected):
    assert classify(message, None).category == expected


@pytest.mark.parametrize("message,expected", [
    # controls: a plain refused connection stays infrastructure, a block of our IP for spam stays reputation, a
    # mailbox over its own quota stays mailbox_full, and a rate limit that names a time window stays rate_limit
    ("Connection to smtp.example.net:25 refused", "infrastructure"),
    ("554 5.7.1 Service unavailable; client host 198.51.100.9 blocked using zen.spamhaus.org", "reputation"),
    ("552 5.2.2 <bob@example.net>: mailbox is over quota", "mailbox_full"),
    ("451 4.7.1 Hourly sending limit exceeded, try again later", "rate_limit"),
])
def test_thirteenth_wave_controls(message, expected):
    assert classify(message, None).category == expected

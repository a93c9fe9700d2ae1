"""Category classes found on the fourth wave's tuning part (issue 18 §1, docs/errors-quality.md, "Fourth wave").

One case per class, written here (not rows of the corpus). Each fails on the code before the change.
"""

import pytest

from mailscope.processors.errors import classify

CLASSES = [
    # advice a library appends to every failure names no cause: the failure before it decides
    ("Exception raised Timed out connecting to smtp.example.org on port 587, check your credentials or email "
     "service configuration", "fastapi_mail.errors.ConnectionErrors", "timeout"),
    ("Exception raised Error connecting to smtp.example.org on port 465: [Errno 111] Connect call failed "
     "('10.0.0.7', 465), check your credentials or email service configuration", None, "infrastructure"),
    # the other end does not offer the TLS the client demands: the client's setting, not the network
    ("msmtp: the server does not support TLS via the STARTTLS command", None, "validation"),
    ("curl: (64) Requested SSL level failed", None, "validation"),
    ("STARTTLS extension unavailable", None, "validation"),
    # a policy requires encryption the sender cannot apply
    ("A policy required encryption but was unable to encrypt the message.", None, "validation"),
    # the message carries no recipient
    ("sendmail: fatal: deploy(1001): No recipient addresses found in message header", None, "validation"),
    # an address that does not follow the grammar
    ("Address in mailbox given [ops] does not comply with RFC 2822, 3.6.2.", None, "validation"),
    # the client breaks the protocol: not a rate limit, not the recipient
    ("503 5.5.0 <a@example.org>: Recipient address rejected: Improper use of SMTP command pipelining", None,
     "validation"),
    ('msg="Too many unrecognized commands"', None, "validation"),
    # certificate trouble is infrastructure, also under x.7.5
    ("dsn=4.7.5, status=deferred (Server certificate not verified)", None, "infrastructure"),
    # queue age in days
    ("DSN: Cannot send message for 4 days", None, "timeout"),
    # a block-list listing says why the connection was refused
    ("The mail server sent an incorrect greeting: Connection refused. (192.0.2.4) is listed on the CBL", None,
     "reputation"),
    # test-mode sending, unverified sending domains, sending on behalf of another account
    ("You can only send testing emails to your own email address. Please verify a domain first.", None,
     "validation"),
    ("The example.org domain must be verified in your account to send emails.", None, "validation"),
    ("The account does not have the right to send mail on behalf of the specified sending account.", None,
     "validation"),
    ("msmtp: envelope from address ops@example.org not accepted by the server", None, "validation"),
    # failed authentication in any word order
    ("451 Requested action aborted: too many failed authentication attempts from your IP", None,
     "authentication"),
    # the recipient in other words
    ("At least one recipient is not valid.", None, "recipient"),
    ("msmtp: recipient address a@example.org not accepted by the server", None, "recipient"),
    ("The DNS response does not contain an answer to the question: example.org. IN MX", None, "recipient"),
    ("The domain name example.org does not exist.", None, "recipient"),
    # the request names something that is not there or not set
    ("You must specify a region.", None, "validation"),
    ("Mailer [postmark] is not defined.", None, "validation"),
    ('{"status":"error","message":"No such template \\"welcome-v2\\""}', None, "validation"),
    ('HTTP Error 400: Bad Request {"errors":[{"message":"The attachment filename is required.",'
     '"field":"attachments.0.filename","help":null}]}', None, "validation"),
    # sending services' reason words (Mandrill's reject reasons, Elastic Email's categories)
    ('[{"email":"a@example.org","status":"rejected","reject_reason":"unsigned"}]', None, "sender_auth"),
    ('[{"email":"a@example.org","status":"rejected","reject_reason":"unsub"}]', None, "recipient"),
    ('[{"email":"a@example.org","status":"rejected","reject_reason":"test-mode-limit"}]', None, "validation"),
    ("status=Error&category=NoMailbox&messageid=ab12", None, "recipient"),
    # transient server trouble over an ambiguous x.7.x fallback
    ("451 4.7.0 Temporary server error. Please try again later. PRX5", None, "infrastructure"),
    ("milter-reject: END-OF-MESSAGE from mx.example.org: 4.7.1 Service unavailable - try again later", None,
     "infrastructure"),
    # Postfix's `delivery temporarily suspended:` prefix: the reason after it decides
    ("dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to mx.example.org[192.0.2.9]:25: Connection refused)",
     None, "infrastructure"),
    # a failed connection or a broken service, in more words
    ("Connection was closed before we received a valid response from endpoint URL", None, "infrastructure"),
    ("unable to establish SMTP connection to smtp.example.org port 25", None, "infrastructure"),
    ("Expected response code 354 but got an empty response", None, "infrastructure"),
    ("Work-horse terminated unexpectedly; waitpid returned 9", None, "infrastructure"),
    ("All nameservers failed to answer the query example.org. IN MX: Server 10.0.0.2 answered SERVFAIL", None,
     "infrastructure"),
    ("An unexpected error occurred processing the request.", None, "infrastructure"),
    ("postdrop: warning: unable to look up public/pickup: No such file or directory", None, "infrastructure"),
    ("A connection attempt failed because the connected party did not properly respond after a period of time",
     None, "timeout"),
]


@pytest.mark.parametrize("message,error_type,category", CLASSES)
def test_fourth_wave_classes(message, error_type, category):
    assert classify(message, error_type).category == category


@pytest.mark.parametrize("message,retryable", [
    ("DSN: Cannot send message for 5 days", False),  # the queue gave up
    ("Domain example.org has exceeded the max defers and failures per hour allowed. Message discarded.", False),
    ("The attached message had PERMANENT fatal delivery errors! Delivery to the remote server failed: temporary failure.", False),
    ("All nameservers failed to answer the query example.org. IN MX", True),
    ("Connection was closed before we received a valid response from endpoint URL", True),
    ("msmtp: the server does not support TLS via the STARTTLS command", False),
])
def test_fourth_wave_retryability(message, retryable):
    assert classify(message).retryable is retryable

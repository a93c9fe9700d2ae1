"""Failure classes of the eighth wave's tuning part (sending services' bounce reasons, mail servers' own reject
texts, applications' send errors), one case each, written as variants of the rows. Every case failed on the code
before the wave (docs/errors-quality.md, "Eighth wave")."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("message,expected", [
    # a client that breaks the protocol: postscreen's limits and bare newlines, a synchronization error,
    # Postfix's hard error limit
    ("Mar  3 04:05:06 mx1 postfix/postscreen[811]: COMMAND COUNT LIMIT from [198.51.100.7]:4410 after DATA",
     "validation"),
    ("Mar  3 04:05:06 mx1 postfix/postscreen[811]: BARE NEWLINE from [198.51.100.7]:4410 after MAIL", "validation"),
    ("554 SMTP synchronization error, closing connection", "validation"),
    ("Mar  3 04:05:06 mx1 postfix/smtpd[811]: too many errors after DATA from unknown[198.51.100.7]", "validation"),
    # a timeout named as such beats the transport wording around it; a disconnection is the network's
    ("Unable to read data from the transport connection: Connection timed out.", "timeout"),
    ("2026-03-03 04:05:06 unexpected disconnection while reading SMTP command from mx.example.org [198.51.100.7]",
     "infrastructure"),
])
def test_eighth_wave_classes(message, expected):
    assert classify(message, None).category == expected


@pytest.mark.parametrize("message,kept", [
    # a key named for a kind or a cause keeps its word value: two different causes are two errors
    ('{"EventType":"Bounce","MessageCategory":"NoMailbox","TransactionID":"a1b2c3"}', '"NoMailbox"'),
    ('{"event":"bounce","bounce_classification":"Content","email":"ann@example.org"}', '"Content"'),
    ("drop_reason=Throttled id=77", "drop_reason=Throttled"),
])
def test_keys_named_for_a_kind_or_a_cause_keep_their_word_values(message, kept):
    assert kept in classify(message, None).pattern


@pytest.mark.parametrize("variants", [
    # names in the places libraries and servers put names
    ("421 mailhog SMTP incoming data timeout - closing connection.", "421 smtp SMTP incoming data timeout - closing connection."),
    ('Connection could not be established with host "mail:587": stream_socket_client(): php_network_getaddresses: '
     "getaddrinfo for mail failed", 'Connection could not be established with host "mx.example.org": '
     "stream_socket_client(): php_network_getaddresses: getaddrinfo for mx.example.org failed"),
    ("Connection could not be established with host mail :stream_socket_client(): unable to connect to tcp://mail:25",
     "Connection could not be established with host relay :stream_socket_client(): unable to connect to tcp://relay:25"),
    ("Mail::AddressList can not parse |welcome|: Only able to parse up to 0", "Mail::AddressList can not parse "
     "|ops-user|: Only able to parse up to 3"),
    ("Missing template user_mailer/welcome with {:locale=>[:en]}. Searched in: * app/views",
     "Missing template billing_mailer/receipt with {:locale=>[:en]}. Searched in: * app/views"),
    ("View [emails2.welcome] not found.", "View [mail.receipt] not found."),
])
def test_eighth_wave_values_mask_alike(variants):
    assert len({classify(message, None).fingerprint for message in variants}) == 1, [
        classify(message, None).pattern for message in variants]

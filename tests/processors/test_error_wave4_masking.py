"""Masking classes found on the fourth wave's tuning part (issue 18 §1).

Each case is written for the class, not copied from a corpus row: renderings of one error must share
one pattern, different errors must not, and values (ids, numbers, addresses, hosts) still mask.
"""

import pytest

from mailscope.processors.error_patterns import mask
from mailscope.processors.errors import classify


def patterns(*messages):
    return {mask(m) for m in messages}


# --- 1. enumerated values of categorical keys survive in structured bodies ------------------------
@pytest.mark.parametrize("template,values", [
    # JSON `"key":"value"`, compact and spaced, and a Python dict repr
    ('[{{"email":"{a}","status":"{v}","_id":"{i}"}}]', ("sent", "queued", "rejected")),
    ('[{{"email":"{a}","status":"rejected","reject_reason":"{v}","_id":"{i}"}}]',
     ("hard-bounce", "soft-bounce", "spam", "unsub", "custom", "invalid-sender", "test-mode-limit", "rule")),
    ('{{"to": "{a}", "reason": "{v}", "id": "{i}"}}', ("blocked", "quota-exceeded", "expired")),
    ("{{'to': '{a}', 'bounce_type': '{v}', 'id': '{i}'}}", ("Permanent", "Transient")),
    # JSON inside a JSON string (escaped quotes)
    ('{{"body":"{{\\"reject_reason\\":\\"{v}\\",\\"_id\\":\\"{i}\\"}}","to":"{a}"}}', ("spam", "hard-bounce")),
    # a query string outside a URL
    ("status=Error&category={v}&to={a}&transaction={i}", ("NoMailbox", "Throttled", "Spam", "AccountProblem")),
    # key=value with a hyphenated word, a key=value quoted word
    ("delivery for {a} id={i} reason={v}", ("hard-bounce", "dns-failure")),
    ('retval=DENY id={i} for {a} msg="{v}"', ("Blacklisted", "Throttled")),
])
def test_categorical_values_survive_and_ids_mask(template, values):
    renderings = {
        v: patterns(*(template.format(a=a, i=i, v=v) for a, i in (
            ("ann.lee@example.org", "a1b2c3d4e5f6"), ("ops+x@mail.example.net", "9f8e7d6c5b4a3f21"),
            ("z@q.io", "feedc0de99")))) for v in values
    }
    for v, found in renderings.items():
        assert len(found) == 1, found  # the id and the address are values
        (pattern,) = found
        assert v in pattern and "@" not in pattern, pattern
    assert len({next(iter(found)) for found in renderings.values()}) == len(values)  # different errors stay apart


@pytest.mark.parametrize("messages,kept", [
    # Sendmail's stat= holds a status of one or more words, with or without a colon after it
    (["relay=mx.example.org. [192.0.2.7], dsn=5.0.0, stat=Service unavailable",
      "relay=gw.example.com. [198.51.100.3], dsn=5.0.0, stat=Service unavailable"], "stat=Service unavailable"),
    (["to=<a@example.org>, dsn=4.0.0, stat=Deferred: Connection refused by mx.example.org.",
      "to=<b@example.com>, dsn=4.0.0, stat=Deferred: Connection refused by 192.0.2.9."], "stat=Deferred: Connection"),
    # Haraka's msg="..." keeps its words
    (['hook=rcpt plugin=rcpt_to.in_host_list retval=DENY msg="relaying denied for this sender"'] * 2,
     'msg="relaying denied for this sender"'),
])
def test_status_words_after_keys_survive(messages, kept):
    found = patterns(*messages)
    assert len(found) == 1, found
    assert kept in next(iter(found))


@pytest.mark.parametrize("message", [
    '{"status":"deadbeefcafe","reason":"x7y8z9"}',  # hex-letter and alphanumeric ids are values
    '{"reason":"SkLqKsbYjqWzt"}',  # a random-looking letters id
    "status=Error&category=2291&to=a@example.org",
    '{"error": "a1b2c3d4"}',
])
def test_categorical_keys_still_mask_values(message):
    pattern = mask(message)
    for value in ("deadbeefcafe", "x7y8z9", "SkLqKsbYjqWzt", "2291", "a1b2c3d4", "a@example.org"):
        assert value not in pattern, pattern
    assert "@" not in pattern


# --- 2. host names that are single words, recognisable by place ------------------------------------
@pytest.mark.parametrize("template", [
    "<u@example.org>: host {h}[10.20.30.40] said: 451 4.3.0 Temporary lookup failure (in reply to RCPT TO command)",
    "<u@example.org>: host {h}[/var/spool/lmtp/socket] said: 452 4.2.2 Quota exceeded (in reply to RCPT TO command)",
    "Unable to connect with host {h} [Connection refused #111]",
    "curl: (28) Failed to connect to {h} port 465 after 10001 ms: Timeout was reached",
    "could not open SMTP connection to {h} port 2525",
    "cannot connect to {h}, port 587: No route to host",
])
def test_single_word_hosts_by_place(template):
    found = patterns(*(template.format(h=h) for h in
                       ("outbound", "postbox", "mta7", "smtp-gw", "mx.example.org", "localhost", "203.0.113.8")))
    assert len(found) == 1, found
    assert "<host>" in next(iter(found))


def test_words_that_are_not_hosts_stay():
    assert mask("Failed to bind port 2525") == "Failed to bind port <*>"
    assert mask("the host [Connection reset]").startswith("the host [")


# --- 3. a single-token name in brackets or quotes that a noun introduces ----------------------------
@pytest.mark.parametrize("template", [
    "Transport [{w}] is not supported.",
    "Mailer [{w}] has no configuration.",
    "Recipient given [{w}] does not comply with RFC 5322.",
    '{{"status":"error","message":"No such template \\"{w}\\""}}',
    'No such sender profile "{w}"',
    "sendmail: fatal: {w}(1001): unable to open queue file",
    "postdrop: warning: {w}(0): mail submission refused",
])
def test_bracketed_and_quoted_names_are_values(template):
    found = patterns(*(template.format(w=w) for w in ("billing", "alerts_bot", "Support", "ci-runner", "nightly7")))
    assert len(found) == 1, found
    assert "<*>" in next(iter(found))


@pytest.mark.parametrize("message,kept", [
    ("[WARN] [worker] queue is full", "[WARN]"),
    ("Stage [ERROR] is not handled", "[ERROR]"),  # a log level is no name
    ("Mailer [Connection timed out] is not defined", "[Connection timed out]"),  # several words: a message
    ("write(2): Broken pipe", "write(<*>):"),  # not after fatal: / warning:
])
def test_levels_and_sentences_in_brackets_stay(message, kept):
    assert kept in mask(message)


# --- 4. RFC 2822 dates with a weekday, anywhere in a line ------------------------------------------
@pytest.mark.parametrize("template", [
    "{d},SMTP,SEND,mx.example.org,Failed to connect. Winsock error code: 10065",
    "queued at {d}, delivery failed",
    "deferred until ({d}) by policy",
    "row;when={d};event=FAIL",
])
def test_weekday_dates_anywhere_read_as_ts(template):
    dates = ("Wed, 3 Jan 2024 01:02:03 +0000", "Fri, 27 Sep 2024 23:59:59 -0700", "Thu, 14 Nov 2024 12:00:00 GMT",
             "Saturday, 6 Apr 2024 08:15:00 +0200")
    found = patterns(*(template.format(d=d) for d in dates))
    assert len(found) == 1, found
    pattern = next(iter(found))
    assert "<ts>" in pattern
    for word in ("Wed", "Fri", "Thu", "Sat", "Jan", "Sep", "Nov", "Apr"):
        assert word not in pattern, pattern


def test_a_weekday_token_seen_without_a_date_does_not_hide_a_later_date():
    # the token cache must not remember `(Tue,` from a text where it opened no date
    mask("deferred until (Tue, no date given) by policy")
    assert mask("deferred until (Tue, 12 Jul 2024 10:22:33 +0000) by policy") == "deferred until (<ts>) by policy"


# --- 5. a reply code at the end after `failed:` and after `response code` stays a code --------------
@pytest.mark.parametrize("message,code", [
    ("curl: (55) DATA failed: 554", "554"),
    ("curl: (55) RCPT failed: 452", "452"),
    ("smtp error: server said: 421", "421"),
    ("Expected response code 354 but got code 451", "354"),
    ("Expected reply code 220 but got nothing", "220"),
])
def test_reply_codes_by_place(message, code):
    assert f" {code}" in mask(message), mask(message)


@pytest.mark.parametrize("message", [
    "Command '/usr/sbin/sendmail -t' returned non-zero exit status 69.",
    "RCPT failed: 999",  # no real code
    "failed with error 201",
    "ratelimit exceeded, retry after: 450",  # not a code-introducing colon word
])
def test_other_numbers_still_mask(message):
    assert "<*>" in mask(message), mask(message)


def test_codes_decide_between_groups():
    assert classify("curl: (55) RCPT failed: 550").fingerprint != classify("curl: (55) RCPT failed: 452").fingerprint

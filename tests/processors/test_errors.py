"""Error patterns, fingerprints, categories: the labelled corpus, properties, and the stage."""

import random
import re

import pytest
from hypothesis import given, settings, strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Status, StatusCode

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.draft import SpanDraft
from mailscope.processors.error_table import OccurrenceTable
from mailscope.processors.errors import Classification, ErrorsStage, classify, fingerprint
from tests.errors_corpus import CORPUS, grouping_accuracy, load_corpus, variants

UNSEEN = CORPUS.with_name("send_errors_unseen.tsv")
PROBE = CORPUS.with_name("send_errors_probe.tsv")
ADDRESS_SHAPE = re.compile(r"[\w.+'%=-]+@[\w-]+\.[\w.-]+")


def evaluate(rows, k=6, seed=7):
    rng = random.Random(seed)
    category_ok = retry_ok = 0
    truth, predicted, failures = [], [], []
    for row in rows:
        results = [classify(v, row.error_type) for v in variants(row, k, rng)]
        first = results[0]
        if first.category in row.categories:
            category_ok += 1
        else:
            failures.append((row.line, row.categories, first.category, first.pattern))
        if row.retryable is None or first.retryable == row.retryable:
            retry_ok += 1
        for result in results:
            truth.append(row.line)
            predicted.append(result.fingerprint)
    n = len(rows)
    return category_ok / n, retry_ok / n, grouping_accuracy(truth, predicted), failures


@pytest.mark.parametrize("path", [CORPUS, UNSEEN, PROBE], ids=["corpus", "unseen", "probe"])
def test_corpus_accuracy(path):
    rows = load_corpus(path)
    assert len(rows) >= {CORPUS: 150, UNSEEN: 80, PROBE: 60}[path]
    category, retryable, grouping, failures = evaluate(rows)
    # what was reached (docs/errors-quality.md, "A better vote"): a lower floor let three changes cost 3-4 rows
    # each unnoticed; the unseen part's failures are never printed
    # the probe's 0.96 (0.970): two of its rows label a spam filter's verdict on the message reputation, which the
    # classifier now calls content (docs/errors-quality.md, "Spam verdicts")
    # the corpus's 0.98 (0.989) and the unseen part's 0.97 (0.978): each labels a TLS mode mismatch (`wrong version
    # number`) infrastructure, which the classifier now calls validation (docs/errors-quality.md, "TLS mode mismatches")
    floor = {CORPUS: 0.98, UNSEEN: 0.97, PROBE: 0.96}[path]
    assert category >= floor, (category, len(failures)) if path == UNSEEN else failures
    assert retryable >= 0.9
    assert grouping >= 0.95


def test_corpus_covers_every_provider_family_and_category():
    text = CORPUS.read_text(encoding="utf-8")
    for family in ("Gmail", "Microsoft", "Yahoo", "Postfix", "Exim", "SES", "SendGrid", "Mailgun", "Postmark", "Python"):
        assert family in text
    labelled = {c for row in load_corpus() for c in row.categories}
    assert labelled == set(attr.ERROR_CATEGORIES) - {"unknown"}


def test_patterns_keep_codes_and_drop_variables():
    rows = load_corpus()
    rng = random.Random(3)
    for row in rows:
        for message in variants(row, 3, rng):
            pattern = classify(message, row.error_type).pattern
            assert len(pattern) <= attr.ERROR_PATTERN_MAX_CHARS
            assert "@" not in pattern and not ADDRESS_SHAPE.search(pattern), (message, pattern)
            for code in re.findall(r"\b[245]\.\d{1,3}\.\d{1,3}\b", message[:120]):
                if not re.search(rf"\d\.{re.escape(code)}|{re.escape(code)}\.\d", message):
                    assert code in pattern, (code, pattern)


@pytest.mark.parametrize(
    "message,expected",
    [
        ("550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
         "550 5.1.1 <email>: Recipient address rejected: User unknown in virtual mailbox table"),
        ("connect to mx1.example.org[203.0.113.7]:25: Connection timed out",
         "connect to <host>[<host>]:<*>: Connection timed out"),
        ("HTTP Error 429: Too Many Requests", "HTTP Error 429: Too Many Requests"),
        ("{'a@b.com': (452, b'4.2.2 Mailbox full')}", "452 4.2.2 Mailbox full"),
        ("job 8f14e45f-ceea-467f-a0e6-2b1f0e7c9b3a failed after 3 retries at 2024-05-01T10:00:01Z",
         "job <*> failed after <*> retries at <ts>"),
        ("Expiring session 0x14f05578bf, timeout of 5000ms exceeded", "Expiring session <*>, timeout of <*>ms exceeded"),
        ("open /var/spool/postfix/deferred/4F3A21C0D3B: Permission denied", "open <path>: Permission denied"),
        ("KeyError: 'first_name'", "KeyError: <*>"),
        ("Sent to a@x.org, b@y.org and c@z.org", "Sent to <email>"),
        ("connection from 2001:db8::25 refused", "connection from <host> refused"),
        ("408 double-hummer alignment exceptions", "<*> double-hummer alignment exceptions"),
        ("", ""),
        # a login name after `for user` is masked, the sentence around it is not
        ("452 4.2.2 mailbox for user is full", "452 4.2.2 mailbox for user is full"),
        ("mailbox for user john is full", "mailbox for user <*> is full"),
        ("Failed password for invalid user oracle from 1.2.3.4", "Failed password for invalid user <*> from <host>"),
        # a status named as HTTP is kept even with nothing after it; a bare trailing number is a value
        ("HTTP Error 429", "HTTP Error 429"),
        ("upstream answered HTTP 503", "upstream answered HTTP 503"),
        ("failed with error 201", "failed with error <*>"),
    ],
)
def test_pattern_examples(message, expected):
    assert classify(message).pattern == expected


def test_pattern_is_at_most_300_chars():
    long = "550 5.7.1 " + " ".join(f"word{i} rejected" for i in range(500)) + " bob@example.org"
    result = classify(long)
    assert attr.ERROR_PATTERN_MAX_CHARS - 40 < len(result.pattern) <= attr.ERROR_PATTERN_MAX_CHARS
    assert "bob@" not in result.pattern


# a bounce body: boilerplate longer than a pattern, then the cause
_BOUNCE = ("This is the mail system at host mx1.example.org. I'm sorry to have to inform you that your message could "
           "not be delivered to one or more recipients. It's attached below. For further assistance, please send mail "
           "to postmaster. If you do so, please include this problem report. You can delete your own text from the "
           "attached returned message. The mail system <ann@example.net>: host mx.example.net[192.0.2.7] said: {}")


def test_a_long_text_is_categorised_by_its_cause_at_the_end_and_its_pattern_keeps_it():
    full = classify(_BOUNCE.format("552 5.2.2 <ann@example.net>: Mailbox full (in reply to RCPT TO command)"))
    unknown = classify(_BOUNCE.format("550 5.1.1 <ann@example.net>: User unknown (in reply to RCPT TO command)"))
    assert (full.category, unknown.category) == ("mailbox_full", "recipient")
    assert full.pattern.startswith("This is the mail system at host <host>.") and " ... " in full.pattern
    assert full.pattern.endswith("Mailbox full (in reply to RCPT TO command)"), full.pattern
    assert full.fingerprint != unknown.fingerprint  # two causes behind the same boilerplate are two errors
    assert len(full.pattern) <= attr.ERROR_PATTERN_MAX_CHARS and "ann@" not in full.pattern


def test_categorize_reads_a_bounded_head_and_tail_of_a_long_text():
    from mailscope.processors.error_patterns import CATEGORIZE_MAX_CHARS, evidence, masked

    filler = " ".join(f"line{i} of the transcript" for i in range(120))  # within the 4,096 input characters
    read = evidence(masked(_BOUNCE.format(filler + " 552 5.2.2 Mailbox full")))
    assert len(read) <= CATEGORIZE_MAX_CHARS and read.startswith("This is the mail system")
    assert read.endswith("552 5.2.2 Mailbox full")
    assert classify(_BOUNCE.format(filler + " 552 5.2.2 Mailbox full")).category == "mailbox_full"


def test_a_text_longer_than_the_input_cap_keeps_its_end():
    """A bounce body over MAX_INPUT_CHARS (a long transcript before the cause) is read as its head and its tail."""
    from mailscope.processors.error_patterns import MAX_INPUT_CHARS

    filler = " ".join(f"line{i} of the transcript" for i in range(400))
    full = classify(_BOUNCE.format(filler + " 552 5.2.2 <ann@example.net>: Mailbox full"))
    unknown = classify(_BOUNCE.format(filler + " 550 5.1.1 <ann@example.net>: User unknown"))
    assert len(_BOUNCE.format(filler)) > 2 * MAX_INPUT_CHARS
    assert (full.category, unknown.category) == ("mailbox_full", "recipient")
    assert full.pattern.startswith("This is the mail system at host <host>.")
    assert full.pattern.endswith("Mailbox full"), full.pattern
    assert full.fingerprint != unknown.fingerprint and "ann@" not in full.pattern


def test_fingerprint_is_sha256_of_type_and_pattern_only():
    a = classify("550 5.1.1 <bob@example.org>: user unknown", "smtplib.SMTPRecipientsRefused")
    b = classify("550 5.1.1 <eve@example.net>: user unknown", "smtplib.SMTPRecipientsRefused")
    c = classify("550 5.1.1 <bob@example.org>: user unknown", "aiosmtplib.errors.SMTPRecipientsRefused")
    assert re.fullmatch(r"[0-9a-f]{16}", a.fingerprint)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.fingerprint == fingerprint("smtplib.SMTPRecipientsRefused", a.pattern)
    assert classify("x", "builtins.TimeoutError").fingerprint == classify("x", "TimeoutError").fingerprint
    assert classify("x", "_OTHER").fingerprint == classify("x").fingerprint
    assert isinstance(a, Classification) and a.category == "recipient" and a.retryable is False


@pytest.mark.parametrize(
    "message,error_type,category,retryable",
    [
        # Gmail misuses 4.2.1 / 5.2.1 for receiving-rate limits: the wording wins
        ("450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", None, "rate_limit", True),
        ("550-5.2.1 The email account that you tried to reach is disabled.", None, "recipient", False),
        ("", "TimeoutError", "timeout", True),
        ("[Errno 111] Connection refused", "ConnectionRefusedError", "infrastructure", True),
        ("[Errno -2] Name or service not known", "socket.gaierror", "infrastructure", True),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)", "ssl.SSLCertVerificationError", "infrastructure", True),
        ("Connection unexpectedly closed", "smtplib.SMTPServerDisconnected", "infrastructure", True),
        ("(535, b'5.7.8 Username and Password not accepted.')", "smtplib.SMTPAuthenticationError", "authentication", False),
        ("Timed out connecting to smtp.example.org on port 587", "aiosmtplib.errors.SMTPConnectTimeoutError", "timeout", True),
        ("HTTP Error 401: Unauthorized", None, "authentication", False),
        ("HTTP Error 503: Service Unavailable", None, "infrastructure", True),
        ("something odd happened", None, "unknown", False),
    ],
)
def test_category_and_retryability(message, error_type, category, retryable):
    result = classify(message, error_type)
    assert (result.category, result.retryable) == (category, retryable)


# --- properties --------------------------------------------------------------------
_ROWS = load_corpus()
_local = st.from_regex(r"[a-z][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s)
_domain = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.(com|org|net|de|co\.uk|io)", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_ROWS), st.integers(0, 2**32), st.integers(0, 2**32))
def test_property_variants_share_a_fingerprint(row, seed_a, seed_b):
    a = classify(variants(row, 1, random.Random(seed_a))[0], row.error_type)
    b = classify(variants(row, 1, random.Random(seed_b))[0], row.error_type)
    assert a.fingerprint == b.fingerprint, (a.pattern, b.pattern)
    assert (a.category, a.retryable) == (b.category, b.retryable)


@settings(max_examples=150, deadline=None)
@given(
    _local, _domain, st.ip_addresses(), st.uuids(), st.integers(0, 10**12),
    st.sampled_from([
        "550 5.1.1 <{email}>: Recipient address rejected: User unknown (host {ip} said, id {uuid}, {n} tries)",
        "{{'{email}': (452, b'4.2.2 The email account is over quota, queue id {uuid} at [{ip}]:{n}')}}",
        "Deferred: 421 4.7.0 [{ip}] Try again later, closing connection. to={email} n={n} id={uuid}",
        "An error occurred (MessageRejected): Email address is not verified: {email} ({n} at {ip}) req {uuid}",
    ]),
)
def test_property_addresses_ips_ids_numbers_do_not_change_the_fingerprint(local, domain, ip, uuid, n, template):
    email = f"{local}@{domain}"
    one = classify(template.format(email=email, ip=ip, uuid=uuid, n=n))
    two = classify(template.format(email="x@y.org", ip="10.0.0.1", uuid="00000000-0000-0000-0000-000000000000", n=1))
    assert one.fingerprint == two.fingerprint, (one.pattern, two.pattern)
    assert email not in one.pattern and local + "@" not in one.pattern


@settings(max_examples=200, deadline=None)
@given(_local, _domain, st.text(max_size=60), st.text(max_size=60), st.sampled_from(["{}", "<{}>", "'{}'", "to={}", "({})", '"{}"']))
def test_property_patterns_never_contain_an_address(local, domain, before, after, wrap):
    email = f"{local}@{domain}"
    pattern = classify(before + " " + wrap.format(email) + " " + after).pattern
    assert email not in pattern
    assert not ADDRESS_SHAPE.search(pattern), pattern


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400), st.none() | st.text(max_size=40))
def test_property_classify_is_total_and_bounded(message, error_type):
    result = classify(message, error_type)
    assert result.category in attr.ERROR_CATEGORIES
    assert isinstance(result.retryable, bool)
    assert len(result.pattern) <= attr.ERROR_PATTERN_MAX_CHARS
    assert re.fullmatch(r"[0-9a-f]{16}", result.fingerprint)
    assert classify(message, error_type) == result


# --- occurrences table -------------------------------------------------------------
def test_occurrence_table_counts_and_evicts_least_recently_seen():
    table = OccurrenceTable(2)
    assert [table.seen("a"), table.seen("a"), table.seen("b")] == [1, 2, 1]
    table.seen("a")  # b is now least recently seen
    assert table.seen("c") == 1
    assert len(table) == 2 and "b" not in table and table.count("a") == 3
    assert table.seen("b") == 1  # came back: counting starts again
    assert table.evicted == 2


# --- the stage ----------------------------------------------------------------------
@pytest.fixture
def errors_counter():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider.get_meter("test").create_counter(attr.METRIC_ERRORS), reader
    provider.shutdown()


def error_counts(reader):
    counts = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == attr.METRIC_ERRORS:
                    for point in metric.data.data_points:
                        a = point.attributes
                        counts[(a[attr.ERROR_CATEGORY], a[attr.ERROR_RETRYABLE], a[attr.ERROR_FINGERPRINT])] = point.value
    return counts


def span(message=None, error_type=None, status=StatusCode.ERROR, description=None, attributes=None):
    events = ()
    if message is not None:
        event_attrs = {attr.EXCEPTION_MESSAGE: message}
        if error_type:
            event_attrs[attr.EXCEPTION_TYPE] = error_type
        events = (Event(attr.EXCEPTION_EVENT, event_attrs, 5),)
    return ReadableSpan(
        name="email.send", attributes=attributes or {}, events=events,
        status=Status(status, description if status is StatusCode.ERROR else None), start_time=1, end_time=2,
    )


def run(stage, readable):
    draft = SpanDraft(readable)
    stage(draft)
    return dict(draft.build().attributes or {})


def test_stage_tags_failed_spans_and_counts_them(errors_counter):
    counter, reader = errors_counter
    stage = ErrorsStage(load_settings({}), counter=counter)
    got = [run(stage, span(f"{{'u{i}@example.org': (550, b'5.1.1 <u{i}@example.org>: user unknown')}}",
                           "smtplib.SMTPRecipientsRefused")) for i in range(3)]
    expected = classify("{'u0@example.org': (550, b'5.1.1 <u0@example.org>: user unknown')}", "smtplib.SMTPRecipientsRefused")
    for i, attrs in enumerate(got, 1):
        assert attrs[attr.ERROR_CATEGORY] == "recipient" and attrs[attr.ERROR_RETRYABLE] is False
        assert attrs[attr.ERROR_PATTERN] == expected.pattern
        assert attrs[attr.ERROR_FINGERPRINT] == expected.fingerprint
        assert attrs[attr.ERROR_OCCURRENCES] == i
    assert error_counts(reader) == {("recipient", False, expected.fingerprint): 3}


def test_stage_falls_back_to_status_description_and_error_type(errors_counter):
    counter, _ = errors_counter
    stage = ErrorsStage(load_settings({}), counter=counter)
    attrs = run(stage, span(description="timed out", attributes={attr.ERROR_TYPE: "TimeoutError"}))
    assert attrs[attr.ERROR_CATEGORY] == "timeout" and attrs[attr.ERROR_RETRYABLE] is True
    assert attrs[attr.ERROR_FINGERPRINT] == classify("timed out", "TimeoutError").fingerprint
    # an exception event on a span that did not fail is tagged too
    attrs = run(stage, span("[Errno 111] Connection refused", "ConnectionRefusedError", status=StatusCode.UNSET))
    assert attrs[attr.ERROR_CATEGORY] == "infrastructure"
    # the SMTP reply the instrumentor recorded decides when the message names nothing
    attrs = run(stage, span(description="failed", attributes={attr.SMTP_RESPONSE_CODE: 552, attr.SMTP_ENHANCED_STATUS: "5.2.2"}))
    assert attrs[attr.ERROR_CATEGORY] == "mailbox_full"


def test_stage_leaves_successful_spans_alone(errors_counter):
    counter, reader = errors_counter
    stage = ErrorsStage(load_settings({}), counter=counter)
    draft = SpanDraft(span(status=StatusCode.OK))
    stage(draft)
    assert not draft.dirty and error_counts(reader) == {}


def test_fingerprint_labels_beyond_the_cap_become_other(errors_counter):
    counter, reader = errors_counter
    stage = ErrorsStage(load_settings({"MAILSCOPE_ERROR_PATTERNS_MAX": "2"}), counter=counter)
    kinds = ["timed out", "[Errno 111] Connection refused", "HTTP Error 401: Unauthorized", "HTTP Error 429: Too Many Requests"]
    fingerprints = []
    for message in kinds + kinds:
        fingerprints.append(run(stage, span(message))[attr.ERROR_FINGERPRINT])
    labels = {key[2]: value for key, value in error_counts(reader).items()}
    first_two = fingerprints[:2]
    assert {k for k in labels if k != attr.LABEL_OVERFLOW} == set(first_two)
    assert [labels[f] for f in first_two] == [2, 2]
    other = sum(v for (cat, _, fp), v in error_counts(reader).items() if fp == attr.LABEL_OVERFLOW)
    assert other == 4
    assert len(stage.table) == 2  # the occurrence table is bounded too


"""Amazon SES through boto3, against moto's real SES server (and an error-injecting proxy in front of it).

boto3 runs unmodified with `endpoint_url` pointing at the proxy, which passes
everything to `moto_server` unless a test asks it to answer with one of the
errors real SES gives and moto cannot produce (throttling, paused sending, MAIL
FROM not verified), and which answers SES v2 SendBulkEmail (not in moto) in the
documented shape. Spans go through mailscope's real pipeline (errors stage and
redaction included) into memory.
"""

import hashlib

import boto3
import botocore.config
import botocore.exceptions
import pytest

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.instrumentation.providers import ses as providers_ses
from tests.support.provider_servers import MotoServer, SESProxy
from tests.support.provider_telemetry import CapturedProviders, exception_message, refusal_domains

SENDER = "billing@shop.example.com"
STRANGER = "intruder@elsewhere.example.com"  # never verified
TO_1 = "kim.lee@clients.example.org"
TO_2 = "lou@clients.example.org"
CC = "audit.copy@archive.example.net"
SUPPRESSED = "bounced.before@gone.example.io"
ADDRESSES = (SENDER, STRANGER, TO_1, TO_2, CC, SUPPRESSED)
MESSAGE = {"Subject": {"Data": "Your invoice"}, "Body": {"Text": {"Data": "Invoice attached."}}}
NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})


def id_hash(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(moto):
    moto.reset()
    server = SESProxy(moto.url, suppressed=[SUPPRESSED]).start()
    yield server
    server.stop()


def client(proxy, service="ses", config=NO_RETRIES):
    return boto3.client(service, region_name="us-east-1", endpoint_url=proxy.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=config)


@pytest.fixture
def captured():
    telemetry = CapturedProviders()
    yield telemetry
    telemetry.close()
    reload_settings()


@pytest.fixture
def ses(proxy, captured):
    ses = client(proxy)
    ses.verify_email_identity(EmailAddress=SENDER)
    return ses


def span_text(span, exception_events=True) -> str:
    events = [(e.name, dict(e.attributes)) for e in span.events if exception_events or e.name != attr.EXCEPTION_EVENT]
    return repr((span.name, dict(span.attributes), events, span.status.description))


def assert_clean(captured):
    """No address in what the instrumentor itself put on its spans (the exception event is the
    app's exception, scrubbed by the redaction stage), nor in anything exported."""
    texts = [span_text(s, exception_events=False) for s in captured.raw_spans()]
    texts += [span_text(s) for s in captured.spans()]
    for text in texts:
        for address in ADDRESSES:
            assert address not in text, (address, text)


def test_send_email_is_one_send_span_with_the_contract_attributes(ses, captured, proxy):
    result = ses.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1, TO_2], "CcAddresses": [CC]},
                            Message=MESSAGE)
    span = captured.one_send()
    a = span.attributes
    assert span.kind.name == "CLIENT" and span.status.status_code.name == "UNSET"
    assert a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == "ses"
    assert a[attr.RECIPIENTS_COUNT] == 3 and a[attr.RECIPIENTS_REFUSED] == 0
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["archive.example.net", "clients.example.org"]
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1" and a[attr.SERVER_PORT] == proxy.port
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[attr.MESSAGE_ID_HASH] == id_hash(result["MessageId"])
    assert attr.MESSAGE_BYTES not in a  # SES builds the MIME message itself: its size is unknown here
    assert captured.recipients("ses") == {attr.OUTCOME_ACCEPTED: 3}
    # moto really received it (SES counts each recipient as one email sent)
    assert ses.get_send_quota()["SentLast24Hours"] == 3
    assert_clean(captured)


def test_unverified_sender_is_message_rejected_classified_and_scrubbed(ses, captured, proxy):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ses.send_email(Source=STRANGER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
    assert raised.value.response["Error"]["Code"] == "MessageRejected"
    assert STRANGER in str(raised.value)  # the app's exception is untouched
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "ERROR"
    assert a[attr.ERROR_TYPE] == "MessageRejected" and a[attr.HTTP_RESPONSE_STATUS_CODE] == 400
    assert a[attr.ERROR_CATEGORY] == "validation" and a[attr.ERROR_RETRYABLE] is False
    assert "<redacted>@elsewhere.example.com" in exception_message(span)
    assert attr.RECIPIENTS_REFUSED not in a
    assert captured.recipients("ses") == {}  # nothing was accepted or refused recipient by recipient
    assert_clean(captured)


@pytest.mark.parametrize(
    "service, code, message, status, category, retryable",
    [
        ("ses", "Throttling", "Maximum sending rate exceeded.", 400, "rate_limit", True),
        ("ses", "Throttling", "Daily message quota exceeded.", 400, "rate_limit", True),
        ("ses", "AccountSendingPausedException", "Email sending is disabled for your entire Amazon SES account.",
         400, "reputation", False),
        ("ses", "MailFromDomainNotVerifiedException",
         "The MAIL FROM domain bounce.shop.example.com is not verified.", 400, "validation", False),
        ("sesv2", "TooManyRequestsException", "Too many requests have been made to the operation.", 429,
         "rate_limit", True),
        ("sesv2", "SendingPausedException", "Sending is paused for this account.", 400, "reputation", False),
    ],
)
def test_provider_errors_set_the_aws_code_as_error_type(proxy, captured, service, code, message, status,
                                                        category, retryable):
    sender = client(proxy, service)
    proxy.fail(service, "SendEmail", code, message, status=status)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        if service == "ses":
            sender.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        else:
            sender.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": [TO_1]},
                              Content={"Simple": MESSAGE})
    assert raised.value.response["Error"]["Code"] == code
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "ERROR"
    assert a[attr.ERROR_TYPE] == code and a[attr.HTTP_RESPONSE_STATUS_CODE] == status
    assert (a[attr.ERROR_CATEGORY], a[attr.ERROR_RETRYABLE]) == (category, retryable)
    assert message in exception_message(span)


def test_a_throttled_call_retried_by_botocore_is_one_send_span_with_the_aws_span_inside(proxy):
    captured = CapturedProviders(upstream=("botocore",))
    try:
        retrying = client(proxy, config=botocore.config.Config(retries={"total_max_attempts": 2, "mode": "standard"}))
        retrying.verify_email_identity(EmailAddress=SENDER)
        captured.clear()
        proxy.fail("ses", "SendEmail", "Throttling", "Maximum sending rate exceeded.", times=1)
        retrying.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        assert proxy.seen.count(("ses", "SendEmail")) == 2  # throttled once, accepted on the retry
        send = captured.one_send()
        assert send.status.status_code.name == "UNSET"
        (aws,) = [s for s in captured.spans() if s.name == "SES.SendEmail"]
        assert aws.parent.span_id == send.context.span_id and aws.attributes["retry_attempts"] == 1
    finally:
        captured.close()


def test_raw_message_without_destinations_counts_its_header_recipients(ses, captured):
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id")
    raw = (f"From: Billing <{SENDER}>\r\nTo: Kim <{TO_1}>, {TO_2}\r\nCc: {CC}\r\n"
           "Message-ID: <app-chosen.1@shop.example.com>\r\nX-Campaign-ID: spring-sale\r\n"
           "Subject: invoice\r\n\r\nbody\r\n").encode()
    result = ses.send_raw_email(RawMessage={"Data": raw})
    a = captured.one_send().attributes
    assert a[attr.RECIPIENTS_COUNT] == 3 and a[attr.MESSAGE_BYTES] == len(raw)
    assert a["email.campaign.id"] == "spring-sale"
    # SES's own MessageId wins over the app's Message-ID: it is what SES events and logs carry
    assert a[attr.MESSAGE_ID_HASH] == id_hash(result["MessageId"])
    assert a[attr.MESSAGE_ID_HASH] != id_hash("app-chosen.1@shop.example.com")
    assert_clean(captured)


def test_raw_message_with_destinations_counts_the_destinations(ses, captured):
    raw = f"From: {SENDER}\r\nTo: {TO_1}\r\nSubject: x\r\n\r\nbody\r\n"
    ses.send_raw_email(Source=SENDER, Destinations=[TO_2, CC], RawMessage={"Data": raw})
    a = captured.one_send().attributes
    assert a[attr.RECIPIENTS_COUNT] == 2 and list(a[attr.RECIPIENTS_DOMAINS]) == ["archive.example.net", "clients.example.org"]
    assert a[attr.MESSAGE_BYTES] == len(raw.encode())


def test_templated_and_bulk_templated_sends(ses, captured):
    ses.create_template(Template={"TemplateName": "invoice", "SubjectPart": "Invoice {{n}}", "TextPart": "Hi {{name}}"})
    captured.clear()
    result = ses.send_templated_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Template="invoice",
                                      TemplateData='{"n": 1, "name": "Kim"}')
    single = captured.one_send().attributes
    assert single[attr.RECIPIENTS_COUNT] == 1 and attr.MESSAGING_BATCH_MESSAGE_COUNT not in single
    assert single[attr.MESSAGE_ID_HASH] == id_hash(result["MessageId"])
    captured.clear()
    bulk = ses.send_bulk_templated_email(
        Source=SENDER, Template="invoice", DefaultTemplateData='{"n": 0, "name": "x"}',
        Destinations=[{"Destination": {"ToAddresses": [TO_1], "CcAddresses": [CC]}},
                      {"Destination": {"ToAddresses": [TO_2]}}])
    assert len([s["MessageId"] for s in bulk["Status"]]) == 2
    a = captured.one_send().attributes
    assert a[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2 and a[attr.RECIPIENTS_COUNT] == 3
    assert attr.MESSAGE_ID_HASH not in a  # two messages: no single id to hash
    assert captured.recipients("ses") == {attr.OUTCOME_ACCEPTED: 4}


def test_sesv2_simple_and_raw_content(proxy, captured):
    v1 = client(proxy)
    v1.verify_email_identity(EmailAddress=SENDER)
    v2 = client(proxy, "sesv2")
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id")
    captured.clear()
    result = v2.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": [TO_1], "BccAddresses": [CC]},
                           Content={"Simple": {**MESSAGE, "Headers": [{"Name": "X-Campaign-ID", "Value": "v2-simple"}]}})
    a = captured.one_send().attributes
    assert a[attr.PROVIDER] == "ses" and a[attr.RECIPIENTS_COUNT] == 2
    assert a["email.campaign.id"] == "v2-simple" and a[attr.MESSAGE_ID_HASH] == id_hash(result["MessageId"])
    captured.clear()
    raw = f"From: {SENDER}\r\nTo: {TO_2}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    v2.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": [TO_2]}, Content={"Raw": {"Data": raw}})
    a = captured.one_send().attributes
    assert a[attr.RECIPIENTS_COUNT] == 1 and a[attr.MESSAGE_BYTES] == len(raw)
    assert_clean(captured)


def test_sesv2_bulk_entries_rejected_by_ses_are_refused_recipients(proxy, captured):
    v2 = client(proxy, "sesv2")
    template = {"Template": {"TemplateName": "invoice", "TemplateData": "{}"}}
    result = v2.send_bulk_email(FromEmailAddress=SENDER, DefaultContent=template, BulkEmailEntries=[
        {"Destination": {"ToAddresses": [TO_1]}}, {"Destination": {"ToAddresses": [SUPPRESSED]}},
        {"Destination": {"ToAddresses": [TO_2]}}])
    assert [r["Status"] for r in result["BulkEmailEntryResults"]] == ["SUCCESS", "MESSAGE_REJECTED", "SUCCESS"]
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "UNSET"  # two of three were sent
    assert a[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 3 and a[attr.RECIPIENTS_COUNT] == 3
    assert a[attr.RECIPIENTS_REFUSED] == 1 and refusal_domains(span) == ["gone.example.io"]
    assert captured.recipients("ses") == {attr.OUTCOME_ACCEPTED: 2, attr.OUTCOME_REFUSED: 1}
    captured.clear()
    v2.send_bulk_email(FromEmailAddress=SENDER, DefaultContent=template,
                       BulkEmailEntries=[{"Destination": {"ToAddresses": [SUPPRESSED]}}])
    span = captured.one_send()
    assert span.status.status_code.name == "ERROR"  # nothing was sent, though nothing raised
    assert span.attributes[attr.ERROR_TYPE] == "MESSAGE_REJECTED"
    assert span.attributes[attr.ERROR_CATEGORY] == "recipient"  # "suppression list"
    assert_clean(captured)


@pytest.mark.parametrize("upstream_first", [True, False])
def test_the_botocore_span_is_a_child_of_the_send_span_whatever_the_order(proxy, upstream_first):
    captured = CapturedProviders(upstream=("botocore",), upstream_first=upstream_first)
    try:
        ses = client(proxy)  # created after both instrumentors, as under opentelemetry-instrument
        ses.verify_email_identity(EmailAddress=SENDER)
        ses.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        sends = captured.sends()
        aws = [s for s in captured.spans() if s.name == "SES.SendEmail"]
        assert len(sends) == 1 and len(aws) == 1
        assert aws[0].parent is not None and aws[0].parent.span_id == sends[0].context.span_id
        assert not any(s.attributes.get(attr.OPERATION) for s in aws)  # enriched no further: never a second send
    finally:
        captured.close()


def test_a_client_created_before_instrumenting_is_traced_too(proxy):
    early = client(proxy)
    early.verify_email_identity(EmailAddress=SENDER)
    captured = CapturedProviders()
    try:
        early.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        early.list_identities()  # not a send: no span
        assert captured.one_send().attributes[attr.RECIPIENTS_COUNT] == 1
    finally:
        captured.close()


def test_uninstrument_stops_tracing_existing_and_new_clients(proxy):
    captured = CapturedProviders()
    made_while_instrumented = client(proxy)
    made_while_instrumented.verify_email_identity(EmailAddress=SENDER)
    captured.close()
    exporter = captured.exporter
    made_while_instrumented.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
    client(proxy).send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
    assert exporter.get_finished_spans() == ()


def test_an_internal_failure_leaves_the_send_and_its_result_alone(ses, captured, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mailscope bug")

    monkeypatch.setattr(providers_ses, "describe_request", broken)
    monkeypatch.setattr(providers_ses, "describe_result", broken)
    result = ses.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
    assert result["MessageId"] and ses.get_send_quota()["SentLast24Hours"] == 1
    span = captured.one_send()  # still started and ended
    assert span.attributes[attr.PROVIDER] == "ses" and span.end_time is not None
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ses.send_email(Source=STRANGER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
    assert raised.value.response["Error"]["Code"] == "MessageRejected"


def test_results_and_errors_are_what_an_uninstrumented_client_gets(proxy):
    def run():
        ses = client(proxy)
        ses.verify_email_identity(EmailAddress=SENDER)
        ok = ses.send_email(Source=SENDER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        try:
            ses.send_email(Source=STRANGER, Destination={"ToAddresses": [TO_1]}, Message=MESSAGE)
        except botocore.exceptions.ClientError as exc:
            error = (type(exc).__name__, str(exc), exc.response["Error"])
        return sorted(k for k in ok if k != "ResponseMetadata"), ok["ResponseMetadata"]["HTTPStatusCode"], error

    plain = run()
    captured = CapturedProviders(upstream=("botocore",))
    try:
        assert run() == plain
        assert len(captured.sends()) == 2
    finally:
        captured.close()

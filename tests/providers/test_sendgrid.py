"""SendGrid: the unmodified `sendgrid` SDK against a local server speaking the v3 Mail Send API.

The server (tests/support/provider_servers.SendGridServer) answers as SendGrid
documents: 202 with `X-Message-Id`, and 400/401/403/429 with `{"errors":
[{"message", "field", "help"}]}`. The SDK's `host` argument points it there.
"""

import hashlib

import pytest
import sendgrid
from python_http_client import exceptions as http_errors
from sendgrid.helpers.mail import Bcc, Cc, Header, Mail, Personalization, To

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.instrumentation.providers import sendgrid as providers_sendgrid
from tests.support.provider_servers import SendGridServer
from tests.support.provider_telemetry import CapturedProviders, exception_message

SENDER = "news@shop.example.com"
UNVERIFIED = "someone.else@shop.example.com"
TO_1 = "kim.lee@clients.example.org"
TO_2 = "lou@clients.example.org"
CC = "audit.copy@archive.example.net"
BCC = "hidden.copy@archive.example.net"
ADDRESSES = (SENDER, UNVERIFIED, TO_1, TO_2, CC, BCC)


@pytest.fixture
def server():
    with SendGridServer(verified_senders=[SENDER]) as running:
        yield running


@pytest.fixture
def captured():
    telemetry = CapturedProviders()
    yield telemetry
    telemetry.close()
    reload_settings()


def api(server, key="SG.test-key"):
    return sendgrid.SendGridAPIClient(api_key=key, host=server.url)


def newsletter(sender=SENDER):
    message = Mail(from_email=sender, subject="Spring sale", plain_text_content="Hello")
    for address, cc in ((TO_1, CC), (TO_2, None)):
        personalization = Personalization()
        personalization.add_to(To(address))
        if cc:
            personalization.add_cc(Cc(cc))
            personalization.add_bcc(Bcc(BCC))
        message.add_personalization(personalization)
    message.add_header(Header("X-Campaign-ID", "spring-sale"))
    return message


def assert_clean(captured):
    texts = []
    for span in captured.raw_spans():  # the instrumentor's own output, before any stage
        texts.append(repr((dict(span.attributes), [dict(e.attributes) for e in span.events], span.status.description)))
    for span in captured.spans():
        texts.append(repr((dict(span.attributes), [dict(e.attributes) for e in span.events], span.status.description)))
    for text in texts:
        for address in ADDRESSES:
            assert address not in text, (address, text)


def test_send_is_one_send_span_with_personalizations_counted(server, captured):
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id")
    response = api(server).send(newsletter())
    assert response.status_code == 202
    (document, message_id), = server.accepted
    assert len(document["personalizations"]) == 2
    span = captured.one_send()
    a = span.attributes
    assert span.kind.name == "CLIENT" and span.status.status_code.name == "UNSET"
    assert a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == "sendgrid"
    assert a[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2  # one message per personalization
    assert a[attr.RECIPIENTS_COUNT] == 4 and a[attr.RECIPIENTS_REFUSED] == 0  # to, cc and bcc of both
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["archive.example.net", "clients.example.org"]
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == 202
    assert a[attr.MESSAGE_ID_HASH] == hashlib.sha256(message_id.encode()).hexdigest()[:16]
    assert a["email.campaign.id"] == "spring-sale"
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1" and a[attr.SERVER_PORT] == server.port
    assert captured.recipients("sendgrid") == {attr.OUTCOME_ACCEPTED: 4}
    assert_clean(captured)


def test_the_low_level_client_call_and_a_dict_body_are_traced_the_same(server, captured):
    body = {"personalizations": [{"to": [{"email": TO_1, "name": "Kim"}]}], "from": {"email": SENDER},
            "subject": "x", "content": [{"type": "text/plain", "value": "y"}]}
    response = api(server).client.mail.send.post(request_body=body)
    assert response.status_code == 202
    a = captured.one_send().attributes
    assert a[attr.RECIPIENTS_COUNT] == 1 and attr.MESSAGING_BATCH_MESSAGE_COUNT not in a
    captured.clear()
    api(server).send(body)
    assert captured.one_send().attributes[attr.RECIPIENTS_COUNT] == 1
    captured.clear()
    with pytest.raises(http_errors.NotFoundError):
        api(server).client.templates.get()  # another endpoint of the same client: not a send
    with pytest.raises(http_errors.NotFoundError):
        api(server).client.mail.batch.post(request_body={})
    assert captured.sends() == []


@pytest.mark.parametrize(
    "case, error_class, status, category, retryable, text",
    [
        ("unverified sender", http_errors.ForbiddenError, 403, "validation", False,
         "HTTP 403 Forbidden: The from address does not match a verified Sender Identity."),
        ("bad key", http_errors.UnauthorizedError, 401, "authentication", False,
         "HTTP 401 Unauthorized: The provided authorization grant is invalid, expired, or revoked"),
        ("throttled", http_errors.TooManyRequestsError, 429, "rate_limit", True,
         "HTTP 429 Too Many Requests: too many requests"),
        ("invalid address", http_errors.BadRequestsError, 400, "validation", False,
         "HTTP 400 Bad Request: Does not contain a valid address."),
    ],
)
def test_error_bodies_become_the_classified_exception_text(case, error_class, status, category, retryable, text,
                                                           captured):
    with SendGridServer(verified_senders=[SENDER], throttle_after=0 if case == "throttled" else None) as server:
        message = newsletter(UNVERIFIED if case == "unverified sender" else SENDER)
        if case == "invalid address":  # the Mail helper refuses it client-side; a dict body goes through
            message = {"personalizations": [{"to": [{"email": "not-an-address@"}, {"email": TO_1}]}],
                       "from": {"email": SENDER}, "subject": "x", "content": [{"type": "text/plain", "value": "y"}]}
        with pytest.raises(error_class) as raised:
            api(server, key="SG.wrong" if case == "bad key" else "SG.test-key").send(message)
    assert raised.value.status_code == status
    assert str(raised.value).startswith(f"HTTP Error {status}")  # what the app gets is python_http_client's own
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "ERROR"
    assert a[attr.ERROR_TYPE] == f"python_http_client.exceptions.{error_class.__name__}"
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == status
    assert exception_message(span).startswith(text)
    assert (a[attr.ERROR_CATEGORY], a[attr.ERROR_RETRYABLE]) == (category, retryable)
    assert_clean(captured)


def test_a_connection_failure_is_an_error_span_and_the_app_gets_urllib_error(captured):
    import urllib.error

    from tests.support.launcher import free_port

    with pytest.raises(urllib.error.URLError):
        sendgrid.SendGridAPIClient(api_key="SG.k", host=f"http://127.0.0.1:{free_port()}").send(newsletter())
    span = captured.one_send()
    assert span.attributes[attr.ERROR_TYPE] == "urllib.error.URLError"
    assert span.attributes[attr.ERROR_CATEGORY] == "infrastructure"


def test_an_internal_failure_leaves_the_send_alone(server, captured, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mailscope bug")

    monkeypatch.setattr(providers_sendgrid, "describe_request", broken)
    monkeypatch.setattr(providers_sendgrid, "error_text", broken)
    assert api(server).send(newsletter()).status_code == 202
    with pytest.raises(http_errors.ForbiddenError):
        api(server).send(newsletter(UNVERIFIED))
    assert len(server.accepted) == 1
    assert [s.status.status_code.name for s in captured.sends()] == ["UNSET", "ERROR"]


def test_uninstrumented_sendgrid_is_untouched(server):
    captured = CapturedProviders()
    captured.close()
    assert api(server).send(newsletter()).status_code == 202
    assert captured.exporter.get_finished_spans() == ()

"""Mailgun and Postmark over requests and httpx, against local servers speaking their documented APIs.

The servers (tests/support/provider_servers) parse the requests with the
standard library and answer with the providers' documented status codes and
bodies. MAILSCOPE_PROVIDER_ENDPOINTS points the URL matching at them, the way a
user points it at a proxy or a regional host.
"""

import asyncio
import hashlib
import json

import httpx
import pytest
import requests

from mailscope import attributes as attr
from mailscope.config import DEFAULT_PROVIDER_ENDPOINTS, load_settings, reload_settings
from mailscope.instrumentation.providers import mailgun as providers_mailgun
from mailscope.instrumentation.providers import postmark as providers_postmark
from mailscope.instrumentation.providers.http import match_url
from tests.support.launcher import free_port
from tests.support.provider_servers import MailgunServer, PostmarkServer
from tests.support.provider_telemetry import CapturedProviders, refusal_domains

SENDER = "news@shop.example.com"
STRANGER = "not.a.signature@shop.example.com"
TO_1 = "kim.lee@clients.example.org"
TO_2 = "lou@clients.example.org"
CC = "audit.copy@archive.example.net"
BCC = "hidden.copy@archive.example.net"
INACTIVE = "bounced.before@gone.example.io"
ADDRESSES = (SENDER, STRANGER, TO_1, TO_2, CC, BCC, INACTIVE)
MG_KEY = ("api", "key-test")
PM_HEADERS = {"X-Postmark-Server-Token": "pm-server-token", "Accept": "application/json"}


def id_hash(value: str) -> str:
    return hashlib.sha256(value.strip("<>").encode()).hexdigest()[:16]


@pytest.fixture
def mailgun():
    with MailgunServer() as server:
        yield server


@pytest.fixture
def postmark():
    with PostmarkServer(sender_signatures=[SENDER], inactive=[INACTIVE]) as server:
        yield server


@pytest.fixture
def endpoints(mailgun, postmark):
    reload_settings(provider_endpoints=(
        f"mailgun=127.0.0.1:{mailgun.port}/v3/*/messages,mailgun=127.0.0.1:{mailgun.port}/v3/*/messages.mime,"
        f"postmark=127.0.0.1:{postmark.port}/email,postmark=127.0.0.1:{postmark.port}/email/*"))
    yield
    reload_settings()


@pytest.fixture
def captured(endpoints):
    telemetry = CapturedProviders()
    yield telemetry
    telemetry.close()


def assert_clean(captured):
    texts = [repr((dict(s.attributes), [dict(e.attributes) for e in s.events], s.status.description))
             for s in captured.raw_spans() + captured.spans()]
    for text in texts:
        for address in ADDRESSES:
            assert address not in text, (address, text)


def pm_message(to, sender=SENDER, **extra):
    return {"From": sender, "To": to, "Subject": "Spring sale", "TextBody": "Hello", **extra}


# --- matching ----------------------------------------------------------------------------
def test_built_in_endpoints_match_the_documented_send_urls_only():
    assert DEFAULT_PROVIDER_ENDPOINTS  # the defaults are what a user without configuration gets
    assert match_url("POST", "https://api.mailgun.net/v3/mg.example.com/messages") == ("mailgun", ("api.mailgun.net", 443))
    assert match_url("post", "https://API.EU.mailgun.net/v3/mg.example.com/messages.mime")[0] == "mailgun"
    assert match_url("POST", "https://api.postmarkapp.com/email")[0] == "postmark"
    assert match_url("POST", "https://api.postmarkapp.com/email/batchWithTemplates")[0] == "postmark"
    for method, url in [("GET", "https://api.mailgun.net/v3/mg.example.com/messages"),
                        ("POST", "https://api.mailgun.net/v3/domains"),
                        ("POST", "https://api.mailgun.net/v4/address/validate"),
                        ("POST", "https://api.postmarkapp.com/templates"),
                        ("POST", "https://api.postmarkapp.com.evil.example/email"),
                        ("POST", "https://example.com/email"), ("POST", "not a url")]:
        assert match_url(method, url) is None, (method, url)


def test_endpoint_configuration_adds_entries_before_the_built_ins_and_rejects_bad_ones(caplog):
    parsed = load_settings({"MAILSCOPE_PROVIDER_ENDPOINTS": "postmark=mail-proxy.internal:8443/pm/email*"})
    assert parsed.provider_endpoints[0] == ("postmark", "mail-proxy.internal:8443", "/pm/email*")
    assert parsed.provider_endpoints[1:] == DEFAULT_PROVIDER_ENDPOINTS
    for bad in ("sendmail=api.sendmail.example/v3/mail/send", "mailgun=/v3/x", "mailgun=api.mailgun.net", "mailgun"):
        settings = load_settings({"MAILSCOPE_PROVIDER_ENDPOINTS": bad})
        assert settings.provider_endpoints == DEFAULT_PROVIDER_ENDPOINTS
        assert "MAILSCOPE_PROVIDER_ENDPOINTS" in settings.invalid
    assert "MAILSCOPE_PROVIDER_ENDPOINTS" in caplog.text
    reload_settings(provider_endpoints="postmark=mail-proxy.internal:8443/pm/email*")
    try:
        assert match_url("POST", "https://mail-proxy.internal:8443/pm/email/batch")[0] == "postmark"
        assert match_url("POST", "https://mail-proxy.internal/pm/email") is None  # port 443, not 8443
        assert match_url("POST", "https://api.postmarkapp.com/email")[0] == "postmark"
    finally:
        reload_settings()


# --- Mailgun -------------------------------------------------------------------------------
def test_mailgun_form_send_over_requests(mailgun, captured):
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id",
                    provider_endpoints=f"mailgun=127.0.0.1:{mailgun.port}/v3/*/messages")
    response = requests.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_KEY, data={
        "from": f"Shop <{SENDER}>", "to": [TO_1, f"Lou <{TO_2}>"], "cc": CC, "bcc": BCC, "subject": "Spring sale",
        "text": "Hello", "h:X-Campaign-ID": "spring-sale", "o:tag": "newsletter"})
    assert response.status_code == 200
    returned_id = response.json()["id"]
    span = captured.one_send()
    a = span.attributes
    assert span.kind.name == "CLIENT" and span.status.status_code.name == "UNSET"
    assert a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == "mailgun"
    assert a[attr.RECIPIENTS_COUNT] == 4 and a[attr.RECIPIENTS_REFUSED] == 0
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["archive.example.net", "clients.example.org"]
    assert a[attr.MESSAGE_ID_HASH] == id_hash(returned_id)
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == 200 and a["email.campaign.id"] == "spring-sale"
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1" and a[attr.SERVER_PORT] == mailgun.port
    assert attr.MESSAGING_BATCH_MESSAGE_COUNT not in a
    assert captured.recipients("mailgun") == {attr.OUTCOME_ACCEPTED: 4}
    assert_clean(captured)


def test_mailgun_multipart_batch_with_an_attachment(mailgun, captured):
    attachment = bytes(range(256)) * 4096  # 1 MiB that must not be copied or parsed
    variables = {TO_1: {"first": "Kim"}, TO_2: {"first": "Lou"}}
    response = requests.post(
        f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_KEY,
        data={"from": SENDER, "to": [TO_1, TO_2], "subject": "Hi %recipient.first%", "text": "x",
              "recipient-variables": json.dumps(variables)},
        files=[("attachment", ("catalogue.bin", attachment, "application/octet-stream"))])
    assert response.status_code == 200
    (values, _), = mailgun.accepted
    assert values["attachment"][0] == attachment  # the server got exactly what the app sent
    a = captured.one_send().attributes
    assert a[attr.RECIPIENTS_COUNT] == 2 and a[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert_clean(captured)


def test_mailgun_mime_send_over_httpx(mailgun, captured):
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id", provider_endpoints=(
        f"mailgun=127.0.0.1:{mailgun.port}/v3/*/messages.mime"))
    mime = (f"From: {SENDER}\r\nTo: {TO_1}\r\nMessage-ID: <app.1@shop.example.com>\r\nX-Campaign-ID: mime-run\r\n"
            "Subject: x\r\n\r\nbody\r\n").encode()
    response = httpx.post(f"{mailgun.url}/v3/mg.example.com/messages.mime", auth=MG_KEY, data={"to": TO_1},
                          files={"message": ("message.mime", mime, "message/rfc822")})
    assert response.status_code == 200
    a = captured.one_send().attributes
    assert a[attr.MESSAGE_BYTES] == len(mime) and a[attr.RECIPIENTS_COUNT] == 1
    assert a["email.campaign.id"] == "mime-run"
    assert a[attr.MESSAGE_ID_HASH] == id_hash(response.json()["id"])  # Mailgun's id, what its logs show


@pytest.mark.parametrize(
    "case, status, category, description",
    [
        ("bad key", 401, "authentication", "HTTP 401: Forbidden"),
        ("unknown domain", 404, "validation", "HTTP 404: Domain not found: unknown.example.com"),  # our sending domain
        ("missing to", 400, "validation", "HTTP 400: to parameter is missing"),
        ("throttled", 429, "rate_limit", "HTTP 429: Too many requests"),
    ],
)
def test_mailgun_error_answers_mark_the_span_failed_though_requests_raises_nothing(case, status, category,
                                                                                  description, endpoints):
    with MailgunServer(throttle_after=0 if case == "throttled" else None) as server:
        reload_settings(provider_endpoints=f"mailgun=127.0.0.1:{server.port}/v3/*/messages")
        captured = CapturedProviders()
        try:
            data = {"from": SENDER, "subject": "x", "text": "y"}
            if case != "missing to":
                data["to"] = TO_1
            domain = "unknown.example.com" if case == "unknown domain" else "mg.example.com"
            response = requests.post(f"{server.url}/v3/{domain}/messages", data=data,
                                     auth=("api", "wrong") if case == "bad key" else MG_KEY)
            assert response.status_code == status  # the app sees the answer unchanged, body included
            assert response.text
            span = captured.one_send()
            a = span.attributes
            assert span.status.status_code.name == "ERROR" and span.status.description == description
            assert a[attr.ERROR_TYPE] == str(status) and a[attr.HTTP_RESPONSE_STATUS_CODE] == status
            assert a[attr.ERROR_CATEGORY] == category
            assert captured.recipients("mailgun") == {}
        finally:
            captured.close()


def test_a_connection_failure_still_describes_the_request(captured, mailgun):
    port = free_port()
    reload_settings(provider_endpoints=f"mailgun=127.0.0.1:{port}/v3/*/messages")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{port}/v3/mg.example.com/messages", auth=MG_KEY,
                      data={"from": SENDER, "to": [TO_1, TO_2], "subject": "x", "text": "y"})
    span = captured.one_send()
    assert span.attributes[attr.ERROR_TYPE] == "requests.exceptions.ConnectionError"
    assert span.attributes[attr.RECIPIENTS_COUNT] == 2  # read from the PreparedRequest the exception carries
    assert span.attributes[attr.ERROR_CATEGORY] == "infrastructure"


# --- Postmark ------------------------------------------------------------------------------
def test_postmark_single_send_over_httpx(postmark, captured):
    reload_settings(header_attributes="X-Campaign-ID=email.campaign.id", provider_endpoints=(
        f"postmark=127.0.0.1:{postmark.port}/email"))
    message = pm_message(f"Kim <{TO_1}>, {TO_2}", Cc=CC, Headers=[{"Name": "X-Campaign-ID", "Value": "pm-1"}])
    response = httpx.post(f"{postmark.url}/email", headers=PM_HEADERS, json=message)
    assert response.status_code == 200 and response.json()["ErrorCode"] == 0
    a = captured.one_send().attributes
    assert a[attr.PROVIDER] == "postmark" and a[attr.RECIPIENTS_COUNT] == 3 and a[attr.RECIPIENTS_REFUSED] == 0
    assert a[attr.MESSAGE_ID_HASH] == id_hash(response.json()["MessageID"])
    assert a["email.campaign.id"] == "pm-1" and attr.MESSAGING_BATCH_MESSAGE_COUNT not in a
    assert captured.recipients("postmark") == {attr.OUTCOME_ACCEPTED: 3}
    assert_clean(captured)


def test_postmark_batch_with_per_message_failures(postmark, captured):
    batch = [pm_message(TO_1), pm_message(f"{INACTIVE}, {TO_2}"), pm_message(CC, sender=STRANGER)]
    response = requests.post(f"{postmark.url}/email/batch", headers=PM_HEADERS, json=batch)
    assert [r["ErrorCode"] for r in response.json()] == [0, 406, 400]
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "UNSET"  # one message went out
    assert a[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 3 and a[attr.RECIPIENTS_COUNT] == 4
    # the inactive address only (Postmark names it) and the whole third message
    assert a[attr.RECIPIENTS_REFUSED] == 2 and refusal_domains(span) == ["archive.example.net", "gone.example.io"]
    assert a[attr.MESSAGE_ID_HASH] == id_hash(response.json()[0]["MessageID"])
    assert captured.recipients("postmark") == {attr.OUTCOME_ACCEPTED: 2, attr.OUTCOME_REFUSED: 2}
    captured.clear()
    response = requests.post(f"{postmark.url}/email/batchWithTemplates", headers=PM_HEADERS,
                             json={"Messages": [pm_message(INACTIVE, TemplateAlias="welcome")]})
    assert response.json()[0]["ErrorCode"] == 406
    span = captured.one_send()
    assert span.status.status_code.name == "ERROR" and span.attributes[attr.ERROR_TYPE] == "ErrorCode 406"
    assert span.attributes[attr.ERROR_CATEGORY] == "recipient"
    assert_clean(captured)


@pytest.mark.parametrize(
    "case, status, error_code, category, refused",
    [
        ("inactive recipient", 422, 406, "recipient", 1),
        ("invalid address", 422, 300, "validation", None),
        ("no sender signature", 422, 400, "validation", None),
        ("bad token", 401, 10, "authentication", None),
    ],
)
def test_postmark_rejections(postmark, captured, case, status, error_code, category, refused):
    to = {"inactive recipient": f"{INACTIVE}, {TO_1}", "invalid address": "kim.lee@"}.get(case, TO_1)
    sender = STRANGER if case == "no sender signature" else SENDER
    headers = {**PM_HEADERS, "X-Postmark-Server-Token": "wrong"} if case == "bad token" else PM_HEADERS
    with httpx.Client() as client:
        response = client.post(f"{postmark.url}/email", headers=headers, json=pm_message(to, sender=sender))
    assert (response.status_code, response.json()["ErrorCode"]) == (status, error_code)
    span = captured.one_send()
    a = span.attributes
    assert span.status.status_code.name == "ERROR" and a[attr.ERROR_TYPE] == str(status)
    assert span.status.description.endswith(f"(ErrorCode {error_code})")
    assert a[attr.ERROR_CATEGORY] == category
    assert a.get(attr.RECIPIENTS_REFUSED) == refused
    if refused:
        assert refusal_domains(span) == ["gone.example.io"]
    assert_clean(captured)


def test_postmark_over_the_async_httpx_client(postmark, captured):
    async def send_three():
        async with httpx.AsyncClient(headers=PM_HEADERS) as client:
            with captured.tracer.start_as_current_span("campaign"):
                return await asyncio.gather(*(client.post(f"{postmark.url}/email", json=pm_message(to))
                                              for to in (TO_1, TO_2, INACTIVE)))

    responses = asyncio.run(send_three())
    assert [r.status_code for r in responses] == [200, 200, 422]
    (campaign,) = captured.spans("campaign")
    sends = captured.sends()
    assert len(sends) == 3 and all(s.parent.span_id == campaign.context.span_id for s in sends)
    assert sorted(s.status.status_code.name for s in sends) == ["ERROR", "UNSET", "UNSET"]
    hashes = {s.attributes.get(attr.MESSAGE_ID_HASH) for s in sends}
    assert hashes == {id_hash(r.json()["MessageID"]) for r in responses[:2]} | {None}


# --- coexistence and non-interference ---------------------------------------------------------
@pytest.mark.parametrize("upstream_first", [True, False])
def test_upstream_http_spans_stay_children_of_the_send_span(upstream_first, mailgun, postmark, endpoints):
    captured = CapturedProviders(upstream=("requests", "httpx"), upstream_first=upstream_first)
    try:
        requests.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_KEY,
                      data={"from": SENDER, "to": TO_1, "subject": "x", "text": "y"})
        httpx.post(f"{postmark.url}/email", headers=PM_HEADERS, json=pm_message(TO_2))
        requests.get(f"{postmark.url}/email")  # not a send: its HTTP span is a root
        sends = captured.sends()
        http = [s for s in captured.spans() if s.attributes.get(attr.OPERATION) is None]
        assert sorted(s.attributes[attr.PROVIDER] for s in sends) == ["mailgun", "postmark"]
        assert len(http) == 3
        children = [s for s in http if s.parent is not None]
        assert sorted(s.parent.span_id for s in children) == sorted(s.context.span_id for s in sends)
    finally:
        captured.close()


def test_other_requests_are_left_alone_and_streams_are_not_consumed(mailgun, postmark, captured):
    assert requests.get(f"{postmark.url}/email").status_code == 404
    assert requests.post(f"{mailgun.url}/v3/domains", auth=MG_KEY).status_code == 404
    assert httpx.put(f"{postmark.url}/email", json={}).status_code == 404
    assert captured.sends() == []
    response = requests.post(f"{postmark.url}/email", headers=PM_HEADERS, json=pm_message(TO_1), stream=True)
    span = captured.one_send()  # ended when the call returned, without reading the body
    assert span.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 200 and attr.MESSAGE_ID_HASH not in span.attributes
    assert response.json()["ErrorCode"] == 0  # the app reads the whole body itself
    captured.clear()
    with httpx.Client() as client, client.stream("POST", f"{postmark.url}/email", headers=PM_HEADERS,
                                                 json=pm_message(TO_2)) as streamed:
        assert streamed.read() and streamed.json()["ErrorCode"] == 0
    assert captured.one_send().attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 200


def test_an_internal_failure_leaves_the_request_alone(postmark, mailgun, captured, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mailscope bug")

    for module in (providers_mailgun, providers_postmark):
        monkeypatch.setattr(module, "describe_request", broken)
        monkeypatch.setattr(module, "describe_result", broken)
    response = requests.post(f"{postmark.url}/email", headers=PM_HEADERS, json=pm_message(TO_1))
    assert response.json()["ErrorCode"] == 0
    response = httpx.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_KEY,
                          data={"from": SENDER, "to": TO_1, "subject": "x", "text": "y"})
    assert response.status_code == 200
    assert len(postmark.accepted) == 1 and len(mailgun.accepted) == 1
    assert [s.attributes[attr.PROVIDER] for s in captured.sends()] == ["postmark", "mailgun"]

"""Delivery tracking through a provider's SMTP relay (smtplib), against a real SMTP server.

The relay host table maps the test server's address to each provider in turn (real relays are
`smtp.sendgrid.net`, `smtp.mailgun.org`, `smtp.postmarkapp.com`, `email-smtp.<region>.amazonaws.com`).
With tracking on, the message the server receives starts with the header that provider's relay
reads (X-SMTPAPI unique args, X-Mailgun-Variables, X-PM-Metadata-mailscope, X-SES-MESSAGE-TAGS);
the value it carries, echoed in a signed event as the provider would, puts the event span under
the send span. A header the app set itself is left alone; with tracking off the server receives
exactly the bytes the app sent.
"""

import json
import smtplib

import pytest

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.delivery import wsgi_app
from mailscope.instrumentation.providers import tracking as relay
from tests.support import delivery_events as de
from tests.support.delivery_receiver import Served
from tests.support.smtp_server import SMTPTestServer
from tests.support.smtp_telemetry import smtp_telemetry  # noqa: F401 (fixture)

SENDER = "billing@shop.example.com"
RECIPIENT = de.RECIPIENT
MESSAGE = (f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: Your invoice\r\nMessage-ID: <inv-1@shop.example.com>\r\n"
           "\r\nAttached.\r\n").encode()
HEADERS = {"sendgrid": "X-SMTPAPI", "mailgun": "X-Mailgun-Variables", "postmark": "X-PM-Metadata-mailscope",
           "ses": "X-SES-MESSAGE-TAGS"}


@pytest.fixture
def tracking_on():
    reload_settings(delivery_tracking="on")
    yield
    reload_settings()


def relay_for(monkeypatch, server, provider):
    monkeypatch.setattr(relay, "RELAY_HOSTS", [(server.host, provider)] + relay.RELAY_HOSTS)


def tracking_of(provider, header_value):
    """The tracking value the provider reads from its relay header (and echoes in its events)."""
    if provider == "sendgrid":
        return json.loads(header_value)["unique_args"]["mailscope"]
    if provider == "mailgun":
        return json.loads(header_value)["mailscope"]
    if provider == "postmark":
        return header_value
    name, _, value = header_value.partition("=")
    assert name == "mailscope"
    return value


@pytest.mark.parametrize("provider", list(HEADERS))
def test_the_relay_header_brings_the_event_into_the_send_trace(monkeypatch, smtp_telemetry, tracking_on,  # noqa: F811
                                                                provider):
    keys = de.WebhookKeys()
    with SMTPTestServer() as server:
        relay_for(monkeypatch, server, provider)
        with smtplib.SMTP(server.host, server.port) as client:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        received = server.handler.messages[0].content
    first, _, rest = received.partition(b"\r\n")
    name, _, value = first.decode().partition(": ")
    assert name == HEADERS[provider] and rest == MESSAGE  # one header first, the app's message intact after it
    send = smtp_telemetry.one(attr.SPAN_SEND)

    app = wsgi_app(config=keys.config(), tracer_provider=smtp_telemetry.tracer_provider,
                   meter_provider=smtp_telemetry.meter_provider)
    with Served(app, "wsgi") as served:
        body, headers = keys.request(provider, "delivered", "inv-1@shop.example.com", tracking_of(provider, value))
        assert de.post(served.url(provider), body, headers)[0] == 200
    keys.certs.stop()
    (span,) = smtp_telemetry.spans(attr.SPAN_DELIVERY)
    assert span.parent.span_id == send.context.span_id and span.context.trace_id == send.context.trace_id
    assert span.attributes[attr.MESSAGE_ID_HASH] == send.attributes[attr.MESSAGE_ID_HASH]


def test_a_header_the_app_set_is_left_alone(monkeypatch, smtp_telemetry, tracking_on):  # noqa: F811
    own = b'X-Mailgun-Variables: {"order": "A-1001"}\r\n' + MESSAGE
    with SMTPTestServer() as server:
        relay_for(monkeypatch, server, "mailgun")
        with smtplib.SMTP(server.host, server.port) as client:
            client.sendmail(SENDER, [RECIPIENT], own)
            client.sendmail(SENDER, [RECIPIENT], MESSAGE.decode())  # a str message gets it too
        first, second = (m.content for m in server.handler.messages)
    assert first == own
    assert second.startswith(b"X-Mailgun-Variables: {\"mailscope\": \"00-") and second.endswith(MESSAGE)


def test_tracking_off_or_another_host_sends_the_apps_bytes(monkeypatch, smtp_telemetry):  # noqa: F811
    with SMTPTestServer() as server:
        relay_for(monkeypatch, server, "sendgrid")
        with smtplib.SMTP(server.host, server.port) as client:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)  # tracking off (the default)
        reload_settings(delivery_tracking="on")
        try:
            monkeypatch.setattr(relay, "RELAY_HOSTS", [h for h in relay.RELAY_HOSTS if h[0] != server.host])
            with smtplib.SMTP(server.host, server.port) as client:
                client.sendmail(SENDER, [RECIPIENT], MESSAGE)  # on, but not a provider relay
        finally:
            reload_settings()
    assert [m.content for m in server.handler.messages] == [MESSAGE, MESSAGE]
    assert relay.relay_provider("email-smtp.eu-west-1.amazonaws.com") == "ses"
    assert relay.relay_provider("smtp.sendgrid.net.") == "sendgrid"
    assert relay.relay_provider("smtp.example.com") is None


def test_delivery_relays_names_more_relay_hosts(smtp_telemetry):  # noqa: F811
    with SMTPTestServer() as server:
        reload_settings(delivery_tracking="on", delivery_relays=f"{server.host}:{server.port}=postmark")
        try:
            with smtplib.SMTP(server.host, server.port) as client:
                client.sendmail(SENDER, [RECIPIENT], MESSAGE)
            reload_settings(delivery_tracking="on", delivery_relays=f"{server.host}:1=postmark")  # another port
            with smtplib.SMTP(server.host, server.port) as client:
                client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        finally:
            reload_settings()
    tracked, untouched = (m.content for m in server.handler.messages)
    assert tracked.startswith(b"X-PM-Metadata-mailscope: 00-") and tracked.endswith(MESSAGE)
    assert untouched == MESSAGE


def test_aiosmtplib_sends_carry_the_header_too(smtp_telemetry):  # noqa: F811
    import asyncio

    import aiosmtplib

    async def send(server):
        client = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False)
        await client.connect()
        try:
            await client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        finally:
            await client.quit()

    with SMTPTestServer() as server:
        reload_settings(delivery_tracking="on", delivery_relays=f"{server.host}=ses")
        try:
            asyncio.run(send(server))
        finally:
            reload_settings()
        asyncio.run(send(server))  # tracking off again: the app's bytes
    tracked, untouched = (m.content for m in server.handler.messages)
    name, _, value = tracked.partition(b"\r\n")[0].decode().partition(": ")
    assert name == "X-SES-MESSAGE-TAGS" and tracked.endswith(MESSAGE) and untouched == MESSAGE
    send_span = smtp_telemetry.spans(attr.SPAN_SEND)[0]
    assert tracking_of("ses", value).startswith(f"00-{send_span.context.trace_id:032x}-{send_span.context.span_id:016x}-")

"""aiosmtplib send instrumentation against a real aiosmtpd server on loopback.

The same cases as for smtplib, with aiosmtplib's API (SMTP.connect with STARTTLS
and login inside it, sendmail, send_message, the one-shot aiosmtplib.send) and
its exception classes.
"""

import asyncio
import hashlib
import ssl
import traceback
from email.message import EmailMessage

import aiosmtplib
import aiosmtplib.protocol
import aiosmtplib.smtp
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from tests.support.launcher import free_port
from tests.support.smtp_server import Behaviour, SMTPTestServer, TLSFiles
from tests.support.smtp_telemetry import assert_no_addresses as no_addresses_in
from tests.support.smtp_telemetry import refusal_events, smtp_telemetry  # noqa: F401

SENDER = "digest@news.example.com"
ERIN = "erin@readers.example.org"
FRANK = "frank.jones@bounce.example.net"
GRACE = "grace@readers.example.org"
HEIDI = "heidi@quota.example.io"
ADDRESSES = (SENDER, ERIN, FRANK, GRACE, HEIDI)
MESSAGE_ID = "<digest-2024-05@news.example.com>"

REFUSING = Behaviour(refuse={FRANK: "550 5.1.1 <frank.jones@bounce.example.net>: no mailbox here",
                             HEIDI: "452 4.2.2 <heidi@quota.example.io>: over quota"})


def make_message(to=(ERIN,), cc=(), message_id=MESSAGE_ID) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if message_id:
        msg["Message-ID"] = message_id
    msg["Subject"] = "Your weekly digest"
    msg.set_content("This week: three stories.\n")
    return msg


def run(coro):
    return asyncio.run(coro)


def assert_no_addresses(captured):
    no_addresses_in(captured, ADDRESSES)


async def send_over_one_connection(server, messages, **client_kwargs):
    client = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False, **client_kwargs)
    async with client:
        return [await client.send_message(m) for m in messages]


def test_send_message_makes_one_send_span_and_a_connect_span(smtp_telemetry):
    t = smtp_telemetry

    async def app():
        with t.tracer.start_as_current_span("app.digest"):
            return await send_over_one_connection(server, [make_message(to=(ERIN,), cc=(GRACE, FRANK))])

    with SMTPTestServer() as server:
        ((errors, reply),) = run(app())
        (received,) = server.handler.messages
    assert errors == {} and reply.startswith("2.0.0")
    app_span = t.one("app.digest")
    send = t.one(attr.SPAN_SEND)
    assert send.kind is SpanKind.CLIENT and send.parent.span_id == app_span.context.span_id
    assert send.status.status_code is StatusCode.UNSET
    a = send.attributes
    assert a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == "smtp"
    assert a[attr.SERVER_ADDRESS] == server.host and a[attr.SERVER_PORT] == server.port
    assert a[attr.RECIPIENTS_COUNT] == 3
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["bounce.example.net", "readers.example.org"]
    assert a[attr.RECIPIENTS_REFUSED] == 0
    assert a[attr.MESSAGE_BYTES] == len(received.content)
    assert a[attr.MESSAGE_ID_HASH] == hashlib.sha256(MESSAGE_ID.strip("<>").encode()).hexdigest()[:16]
    assert a[attr.SMTP_RESPONSE_CODE] == 250 and a[attr.SMTP_ENHANCED_STATUS] == "2.0.0"
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.kind is SpanKind.CLIENT and connect.parent.span_id == app_span.context.span_id
    c = connect.attributes
    assert c[attr.SERVER_ADDRESS] == server.host and c[attr.SERVER_PORT] == server.port
    assert c[attr.SMTP_TLS] is False and c[attr.SMTP_RESPONSE_CODE] == 250
    assert connect.end_time <= send.end_time
    assert t.recipients() == {"accepted": 3}
    assert_no_addresses(t)


def test_a_reused_connection_makes_no_new_connect_span(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer() as server:
        run(send_over_one_connection(server, [make_message() for _ in range(3)]))
        run(send_over_one_connection(server, [make_message()]))
        assert len(server.handler.messages) == 4
    assert len(t.spans(attr.SPAN_SEND)) == 4
    assert len(t.spans(attr.SPAN_SMTP_CONNECT)) == 2


def test_one_shot_send_covers_connecting(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer() as server:
        errors, _ = run(aiosmtplib.send(make_message(to=(ERIN, GRACE)), hostname=server.host, port=server.port,
                                        start_tls=False))
        assert errors == {} and len(server.handler.messages) == 1
    send = t.one(attr.SPAN_SEND)  # aiosmtplib.send -> send_message -> sendmail: one span
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.parent.span_id == send.context.span_id  # connecting is part of this send
    assert send.attributes[attr.RECIPIENTS_COUNT] == 2
    assert send.attributes[attr.SERVER_PORT] == server.port
    assert send.attributes[attr.MESSAGE_ID_HASH]
    assert t.recipients() == {"accepted": 2}


def test_one_shot_send_with_raw_text_and_a_single_string_recipient(smtp_telemetry):
    t = smtp_telemetry
    raw = f"From: {SENDER}\nMessage-ID: {MESSAGE_ID}\nSubject: raw\n\nline one\nline two\n"
    with SMTPTestServer() as server:
        run(aiosmtplib.send(raw, sender=SENDER, recipients=ERIN, hostname=server.host, port=server.port,
                            start_tls=False))
        content = server.handler.messages[0].content
    send = t.one(attr.SPAN_SEND)
    assert send.attributes[attr.RECIPIENTS_COUNT] == 1
    assert send.attributes[attr.MESSAGE_BYTES] == len(content)  # LF sent as CRLF
    assert send.attributes[attr.MESSAGE_ID_HASH] == hashlib.sha256(MESSAGE_ID.strip("<>").encode()).hexdigest()[:16]


def test_partial_refusal_keeps_the_span_ok_with_one_event_per_refused_recipient(smtp_telemetry):
    t = smtp_telemetry

    async def app():
        async with aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False) as client:
            return await client.sendmail(SENDER, [ERIN, FRANK, HEIDI], "Subject: hi\r\n\r\nbody\r\n")

    with SMTPTestServer(REFUSING) as server:
        errors, _ = run(app())
        assert server.handler.messages[0].rcpt_tos == [ERIN]
    assert set(errors) == {FRANK, HEIDI}
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.UNSET
    assert send.attributes[attr.RECIPIENTS_REFUSED] == 2
    events = sorted(refusal_events(send), key=lambda e: e[attr.RECIPIENT_DOMAIN])
    assert events == [
        {attr.SMTP_RESPONSE_CODE: 550, attr.SMTP_ENHANCED_STATUS: "5.1.1", attr.RECIPIENT_DOMAIN: "bounce.example.net"},
        {attr.SMTP_RESPONSE_CODE: 452, attr.SMTP_ENHANCED_STATUS: "4.2.2", attr.RECIPIENT_DOMAIN: "quota.example.io"},
    ]
    assert t.recipients() == {"accepted": 1, "refused": 2}
    assert_no_addresses(t)


def test_all_recipients_refused(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(REFUSING) as server:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            run(aiosmtplib.send(make_message(to=(FRANK, HEIDI)), hostname=server.host, port=server.port,
                                start_tls=False))
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPRecipientsRefused"
    assert send.attributes[attr.RECIPIENTS_REFUSED] == 2
    assert send.attributes[attr.SMTP_RESPONSE_CODE] == 452
    assert len(refusal_events(send)) == 2
    assert t.recipients() == {"refused": 2}
    assert_no_addresses(t)


@pytest.mark.parametrize(
    ("behaviour", "error", "code", "status"),
    [
        (Behaviour(data_reply="554 5.7.1 Message rejected as spam"), "SMTPDataError", 554, "5.7.1"),
        (Behaviour(sender_reply="550 5.7.1 <digest@news.example.com>: sender blocked"), "SMTPSenderRefused", 550, "5.7.1"),
    ],
    ids=["data-rejected", "sender-refused"],
)
def test_server_rejections_mark_the_send_failed(smtp_telemetry, behaviour, error, code, status):
    t = smtp_telemetry
    with SMTPTestServer(behaviour) as server:
        with pytest.raises(getattr(aiosmtplib, error)) as raised:
            run(send_over_one_connection(server, [make_message(to=(ERIN, GRACE))]))
        assert raised.value.code == code
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == f"aiosmtplib.errors.{error}"
    assert send.attributes[attr.SMTP_RESPONSE_CODE] == code
    assert send.attributes[attr.SMTP_ENHANCED_STATUS] == status
    assert attr.RECIPIENTS_REFUSED not in send.attributes
    assert t.recipients() == {}
    assert_no_addresses(t)


def test_login_inside_connect_is_part_of_the_connect_span(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(users={"mailer": "s3cret-pass"}) as server:
        run(send_over_one_connection(server, [make_message()], username="mailer", password="s3cret-pass"))
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.UNSET
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 235  # AUTH, not the greeting connect() returns
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "2.7.0"
    assert t.one(attr.SPAN_SEND).status.status_code is StatusCode.UNSET


def test_bad_password_marks_the_connect_span_failed(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(users={"mailer": "s3cret-pass"}) as server:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            run(send_over_one_connection(server, [make_message()], username="mailer", password="nope"))
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPAuthenticationError"
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 535
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "5.7.8"
    assert t.spans(attr.SPAN_SEND) == []


def test_starttls_on_connect_sets_smtp_tls(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)

    async def app():
        client = aiosmtplib.SMTP(hostname=server.host, port=server.port, tls_context=tls.client_context)
        async with client:  # STARTTLS because the server offers it
            await client.send_message(make_message())

    with SMTPTestServer(starttls=tls.server_context) as server:
        run(app())
        assert len(server.handler.messages) == 1
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.attributes[attr.SMTP_TLS] is True
    assert connect.status.status_code is StatusCode.UNSET
    # the EHLO after STARTTLS, sent implicitly by the first send, still belongs to the setup
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 250


def test_tls_verification_failure_marks_the_connect_span_failed(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)
    with SMTPTestServer(starttls=tls.server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            run(aiosmtplib.send(make_message(), hostname=server.host, port=server.port,
                                tls_context=ssl.create_default_context()))  # does not trust the test CA
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "ssl.SSLCertVerificationError"
    assert connect.attributes[attr.SMTP_TLS] is False
    send = t.one(attr.SPAN_SEND)  # the one-shot send failed with it
    assert send.attributes[attr.ERROR_TYPE] == "ssl.SSLCertVerificationError"


def test_implicit_tls(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)
    with SMTPTestServer(implicit_tls=tls.server_context) as server:
        run(aiosmtplib.send(make_message(), hostname=server.host, port=server.port, use_tls=True,
                            tls_context=tls.client_context))
        assert len(server.handler.messages) == 1
    assert t.one(attr.SPAN_SMTP_CONNECT).attributes[attr.SMTP_TLS] is True


def test_connection_dropped_mid_transaction(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(Behaviour(drop_at="DATA")) as server:
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            run(send_over_one_connection(server, [make_message()]))
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPServerDisconnected"
    assert t.recipients() == {}


def test_server_stalling_past_the_client_timeout(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(Behaviour(stall_at="RCPT")) as server:
        with pytest.raises(aiosmtplib.SMTPReadTimeoutError) as raised:
            run(send_over_one_connection(server, [make_message()], timeout=0.5))
    assert isinstance(raised.value, TimeoutError)
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPReadTimeoutError"


def test_greeting_stalling_past_the_client_timeout(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(greeting_delay=30) as server:
        with pytest.raises(aiosmtplib.SMTPConnectTimeoutError):
            run(send_over_one_connection(server, [make_message()], timeout=0.5))
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPConnectTimeoutError"
    assert t.spans(attr.SPAN_SEND) == []


def test_connection_refused_by_the_network(smtp_telemetry):
    t = smtp_telemetry
    port = free_port()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        run(aiosmtplib.send(make_message(), hostname="127.0.0.1", port=port, timeout=5))
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPConnectError"
    assert connect.attributes[attr.SERVER_PORT] == port
    assert t.one(attr.SPAN_SEND).status.status_code is StatusCode.ERROR


def test_greeting_refusal(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(greeting="554 5.3.2 not accepting mail now") as server:
        with pytest.raises(aiosmtplib.SMTPConnectResponseError):
            run(send_over_one_connection(server, [make_message()]))
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "aiosmtplib.errors.SMTPConnectResponseError"
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 554
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "5.3.2"


def test_concurrent_sends_on_one_client_keep_their_own_spans(smtp_telemetry):
    t = smtp_telemetry

    async def app():
        async with aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False) as client:
            return await asyncio.gather(*(
                client.sendmail(SENDER, [ERIN] * n, f"Subject: {n}\r\n\r\nbody\r\n") for n in (1, 2, 3, 4)
            ))

    with SMTPTestServer() as server:
        run(app())
        assert len(server.handler.messages) == 4
    sends = t.spans(attr.SPAN_SEND)
    assert sorted(s.attributes[attr.RECIPIENTS_COUNT] for s in sends) == [1, 2, 3, 4]
    assert all(s.attributes[attr.SMTP_RESPONSE_CODE] == 250 for s in sends)
    assert len(t.spans(attr.SPAN_SMTP_CONNECT)) == 1


@pytest.mark.parametrize(
    ("module", "name", "behaviour"),
    [
        (aiosmtplib.smtp, "SMTPRecipientsRefused", Behaviour(refuse={ERIN: "550 5.1.1 no such user"})),
        (aiosmtplib.protocol, "SMTPDataError", Behaviour(data_reply="554 5.7.1 rejected")),
        (aiosmtplib.smtp, "SMTPSenderRefused", Behaviour(sender_reply="553 5.7.1 sender rejected")),
    ],
    ids=["recipients-refused", "data-error", "sender-refused"],
)
def test_the_app_receives_the_original_exception_object(smtp_telemetry, monkeypatch, module, name, behaviour):
    created = []
    base = getattr(module, name)

    class Recording(base):
        def __init__(self, *args):
            super().__init__(*args)
            created.append(self)

    Recording.__name__ = Recording.__qualname__ = name
    monkeypatch.setattr(module, name, Recording)  # the module that raises it
    with SMTPTestServer(behaviour) as server:
        with pytest.raises(base) as raised:
            run(send_over_one_connection(server, [make_message()]))
    assert raised.value is created[-1]
    assert traceback.extract_tb(raised.value.__traceback__)[-1].filename == module.__file__
    assert smtp_telemetry.one(attr.SPAN_SEND).attributes[attr.ERROR_TYPE].endswith(name)

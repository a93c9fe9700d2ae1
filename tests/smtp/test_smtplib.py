"""smtplib send instrumentation against a real aiosmtpd server on loopback.

Every case asserts the spans (names, kinds, parents, status), their attributes
and events, and the `mailscope.recipients` metric, read back from the real SDK
after mailscope's enrichment pipeline ran on the spans.
"""

import hashlib
import smtplib
import socket
import ssl
import traceback
from email.message import EmailMessage

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from mailscope.config import reload_settings
from tests.support.launcher import free_port
from tests.support.smtp_server import Behaviour, SMTPTestServer, TLSFiles
from tests.support.smtp_telemetry import assert_no_addresses as no_addresses_in
from tests.support.smtp_telemetry import produced_text, refusal_events, smtp_telemetry  # noqa: F401

SENDER = "newsletter@shop.example.com"
ALICE = "alice@customers.example.org"
BOB = "bob.smith@mailbox.example.net"
CAROL = "carol@customers.example.org"
DAVE = "dave@full.example.io"
ADDRESSES = (SENDER, ALICE, BOB, CAROL, DAVE)
MESSAGE_ID = "<campaign-42.7@shop.example.com>"

REFUSING = Behaviour(refuse={BOB: "550 5.1.1 <bob.smith@mailbox.example.net>: user unknown",
                             DAVE: "452 4.2.2 <dave@full.example.io>: mailbox full"})


def make_message(to=(ALICE,), cc=(), bcc=(), message_id=MESSAGE_ID, **headers) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if bcc:
        msg["Bcc"] = ", ".join(bcc)
    if message_id:
        msg["Message-ID"] = message_id
    msg["Subject"] = "Spring sale"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello, the sale starts today.\n")
    return msg


def expected_id_hash(message_id: str) -> str:
    # the contract's definition, computed independently
    return hashlib.sha256(message_id.strip("<>").encode()).hexdigest()[:16]


def assert_no_addresses(captured):
    no_addresses_in(captured, ADDRESSES)


@pytest.fixture
def server():
    with SMTPTestServer() as srv:
        yield srv


@pytest.fixture
def header_mapping(monkeypatch):
    monkeypatch.setenv("MAILSCOPE_HEADER_ATTRIBUTES", "X-Campaign-ID=email.campaign.id,X-Owner=email.owner")
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


def test_send_message_makes_one_send_span_and_a_connect_span(smtp_telemetry, server, header_mapping):
    t = smtp_telemetry
    msg = make_message(to=(ALICE,), cc=(BOB,), bcc=(CAROL,), X_Campaign_ID="spring-2024",
                       X_Owner="Marketing <owner@shop.example.com>")
    with t.tracer.start_as_current_span("app.notify") as app_span:
        with smtplib.SMTP(server.host, server.port) as client:
            result = client.send_message(msg)
    assert result == {}
    (received,) = server.handler.messages
    assert sorted(received.rcpt_tos) == sorted([ALICE, BOB, CAROL])

    send = t.one(attr.SPAN_SEND)  # send_message calls sendmail: still one span
    assert send.kind is SpanKind.CLIENT
    assert send.parent.span_id == app_span.get_span_context().span_id
    assert send.status.status_code is StatusCode.UNSET
    a = send.attributes
    assert a[attr.OPERATION] == attr.OP_SEND
    assert a[attr.PROVIDER] == "smtp"
    assert a[attr.SERVER_ADDRESS] == server.host and a[attr.SERVER_PORT] == server.port
    assert a[attr.RECIPIENTS_COUNT] == 3
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["customers.example.org", "mailbox.example.net"]
    assert a[attr.RECIPIENTS_REFUSED] == 0
    assert a[attr.MESSAGE_BYTES] == len(received.content)  # Bcc stripped, as sent
    assert a[attr.MESSAGE_ID_HASH] == expected_id_hash(MESSAGE_ID)
    assert a[attr.SMTP_RESPONSE_CODE] == 250
    assert a[attr.SMTP_ENHANCED_STATUS] == "2.0.0"
    assert a["email.campaign.id"] == "spring-2024"
    # only the domain is kept; the display name goes with the address (a rule cannot tell a team from a person)
    assert a["email.owner"] == "<redacted> <<redacted>@shop.example.com>"
    assert attr.ERROR_TYPE not in a

    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.kind is SpanKind.CLIENT
    assert connect.parent.span_id == app_span.get_span_context().span_id
    c = connect.attributes
    assert c[attr.OPERATION] == attr.OP_SMTP_CONNECT and c[attr.PROVIDER] == "smtp"
    assert c[attr.SERVER_ADDRESS] == server.host and c[attr.SERVER_PORT] == server.port
    assert c[attr.SMTP_TLS] is False
    assert c[attr.SMTP_RESPONSE_CODE] == 250  # the implicit EHLO belongs to the connection setup
    assert connect.start_time < send.start_time and connect.end_time <= send.end_time

    assert t.recipients() == {"accepted": 3}
    assert_no_addresses(t)


def test_a_reused_connection_makes_no_new_connect_span(smtp_telemetry, server):
    t = smtp_telemetry
    with smtplib.SMTP(server.host, server.port) as client:
        for i in range(3):
            client.sendmail(SENDER, [ALICE], f"Subject: {i}\r\n\r\nbody {i}\r\n")
    assert len(t.spans(attr.SPAN_SEND)) == 3
    assert len(t.spans(attr.SPAN_SMTP_CONNECT)) == 1
    with smtplib.SMTP(server.host, server.port) as client:  # no reuse: a second setup
        client.sendmail(SENDER, [ALICE], "Subject: again\r\n\r\nbody\r\n")
    assert len(t.spans(attr.SPAN_SMTP_CONNECT)) == 2
    assert len(server.handler.messages) == 4
    assert t.recipients() == {"accepted": 4}
    for send in t.spans(attr.SPAN_SEND):
        assert send.attributes[attr.SERVER_PORT] == server.port


def test_sendmail_with_raw_bytes_and_a_single_string_recipient(smtp_telemetry, server, header_mapping):
    t = smtp_telemetry
    raw = (b"From: " + SENDER.encode() + b"\r\nMessage-ID: " + MESSAGE_ID.encode()
           + b"\r\nX-Campaign-ID:\r\n  folded-7\r\nSubject: raw\r\n\r\n.leading dot\r\nbody\r\n")
    with smtplib.SMTP(server.host, server.port) as client:
        assert client.sendmail(SENDER, ALICE, raw) == {}
    send = t.one(attr.SPAN_SEND)
    a = send.attributes
    assert a[attr.RECIPIENTS_COUNT] == 1
    assert list(a[attr.RECIPIENTS_DOMAINS]) == ["customers.example.org"]
    assert a[attr.MESSAGE_BYTES] == len(raw) == len(server.handler.messages[0].content)
    assert a[attr.MESSAGE_ID_HASH] == expected_id_hash(MESSAGE_ID)
    assert a["email.campaign.id"] == "folded-7"


def test_partial_refusal_keeps_the_span_ok_with_one_event_per_refused_recipient(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(REFUSING) as server, smtplib.SMTP(server.host, server.port) as client:
        result = client.sendmail(SENDER, [ALICE, BOB, DAVE], "Subject: hi\r\n\r\nbody\r\n")
        assert server.handler.messages[0].rcpt_tos == [ALICE]
    assert set(result) == {BOB, DAVE}  # the app's own result, untouched
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.UNSET
    assert send.attributes[attr.RECIPIENTS_COUNT] == 3
    assert send.attributes[attr.RECIPIENTS_REFUSED] == 2
    assert send.attributes[attr.SMTP_RESPONSE_CODE] == 250
    events = sorted(refusal_events(send), key=lambda e: e[attr.RECIPIENT_DOMAIN])
    assert events == [
        {attr.SMTP_RESPONSE_CODE: 452, attr.SMTP_ENHANCED_STATUS: "4.2.2", attr.RECIPIENT_DOMAIN: "full.example.io"},
        {attr.SMTP_RESPONSE_CODE: 550, attr.SMTP_ENHANCED_STATUS: "5.1.1", attr.RECIPIENT_DOMAIN: "mailbox.example.net"},
    ]
    assert t.recipients() == {"accepted": 1, "refused": 2}
    assert_no_addresses(t)


def test_all_recipients_refused(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(REFUSING) as server, smtplib.SMTP(server.host, server.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
            client.sendmail(SENDER, [BOB, DAVE], "Subject: hi\r\n\r\nbody\r\n")
    assert set(raised.value.recipients) == {BOB, DAVE}
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "smtplib.SMTPRecipientsRefused"
    assert send.attributes[attr.RECIPIENTS_REFUSED] == 2
    assert send.attributes[attr.SMTP_RESPONSE_CODE] == 452  # the last refusal
    assert send.attributes[attr.SMTP_ENHANCED_STATUS] == "4.2.2"
    assert len(refusal_events(send)) == 2
    assert [e.attributes[attr.EXCEPTION_TYPE] for e in send.events if e.name == attr.EXCEPTION_EVENT] == [
        "smtplib.SMTPRecipientsRefused"
    ]
    assert t.recipients() == {"refused": 2}
    assert_no_addresses(t)


@pytest.mark.parametrize(
    ("behaviour", "error", "code", "status"),
    [
        (Behaviour(data_reply="554 5.7.1 Message rejected as spam"), "SMTPDataError", 554, "5.7.1"),
        (Behaviour(sender_reply="550 5.7.1 <newsletter@shop.example.com>: sender blocked"), "SMTPSenderRefused", 550, "5.7.1"),
    ],
    ids=["data-rejected", "sender-refused"],
)
def test_server_rejections_mark_the_send_failed(smtp_telemetry, behaviour, error, code, status):
    t = smtp_telemetry
    with SMTPTestServer(behaviour) as server, smtplib.SMTP(server.host, server.port) as client:
        with pytest.raises(getattr(smtplib, error)) as raised:
            client.send_message(make_message(to=(ALICE, CAROL)))
        assert raised.value.smtp_code == code
        assert server.handler.messages == []
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    a = send.attributes
    assert a[attr.ERROR_TYPE] == f"smtplib.{error}"
    assert a[attr.SMTP_RESPONSE_CODE] == code and a[attr.SMTP_ENHANCED_STATUS] == status
    assert a[attr.RECIPIENTS_COUNT] == 2
    assert attr.RECIPIENTS_REFUSED not in a  # the server judged the message or sender, not recipients
    assert t.recipients() == {}
    assert t.one(attr.SPAN_SMTP_CONNECT).status.status_code is StatusCode.UNSET
    assert_no_addresses(t)


def test_auth_success_is_part_of_the_connect_span(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(users={"mailer": "s3cret-pass"}) as server:
        with smtplib.SMTP(server.host, server.port) as client:
            client.login("mailer", "s3cret-pass")
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.UNSET
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 235
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "2.7.0"
    assert t.one(attr.SPAN_SEND).status.status_code is StatusCode.UNSET
    assert connect.end_time <= t.one(attr.SPAN_SEND).start_time  # setup was over before the send


def test_auth_failure_marks_the_connect_span_failed(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(users={"mailer": "s3cret-pass"}) as server:
        with smtplib.SMTP(server.host, server.port) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
                client.login("mailer", "wrong-pass")
    assert raised.value.smtp_code == 535
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "smtplib.SMTPAuthenticationError"
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 535
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "5.7.8"
    assert t.spans(attr.SPAN_SEND) == []
    assert "wrong-pass" not in produced_text(connect)


def test_starttls_sets_smtp_tls(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)
    with SMTPTestServer(starttls=tls.server_context) as server:
        with smtplib.SMTP(server.host, server.port) as client:
            client.starttls(context=tls.client_context)
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        assert len(server.handler.messages) == 1
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.attributes[attr.SMTP_TLS] is True
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 250  # the EHLO after STARTTLS
    assert connect.status.status_code is StatusCode.UNSET


def test_tls_verification_failure_marks_the_connect_span_failed(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)
    with SMTPTestServer(starttls=tls.server_context) as server:
        client = smtplib.SMTP(server.host, server.port)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                client.starttls(context=ssl.create_default_context())  # does not trust the test CA
        finally:
            client.close()
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "ssl.SSLCertVerificationError"
    assert connect.attributes[attr.SMTP_TLS] is False


def test_implicit_tls_smtp_ssl(smtp_telemetry, tmp_path):
    t = smtp_telemetry
    tls = TLSFiles.create(tmp_path)
    with SMTPTestServer(implicit_tls=tls.server_context) as server:
        with smtplib.SMTP_SSL(server.host, server.port, context=tls.client_context) as client:
            client.send_message(make_message())
        assert len(server.handler.messages) == 1
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.attributes[attr.SMTP_TLS] is True
    assert connect.attributes[attr.SERVER_PORT] == server.port
    assert t.one(attr.SPAN_SEND).attributes[attr.RECIPIENTS_COUNT] == 1


def test_connection_dropped_mid_transaction(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(Behaviour(drop_at="RCPT")) as server:
        client = smtplib.SMTP(server.host, server.port)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        client.close()
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "smtplib.SMTPServerDisconnected"
    assert attr.SMTP_RESPONSE_CODE not in send.attributes
    assert t.recipients() == {}


def test_server_stalling_past_the_client_timeout(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(Behaviour(stall_at="DATA")) as server:
        client = smtplib.SMTP(server.host, server.port, timeout=0.5)
        with pytest.raises(smtplib.SMTPServerDisconnected) as raised:
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        client.close()
    # smtplib reports a read timeout as a disconnect, raised while handling the socket timeout
    assert isinstance(raised.value.__context__, socket.timeout)
    send = t.one(attr.SPAN_SEND)
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[attr.ERROR_TYPE] == "smtplib.SMTPServerDisconnected"
    (event,) = [e for e in send.events if e.name == attr.EXCEPTION_EVENT]
    assert "timed out" in event.attributes[attr.EXCEPTION_MESSAGE]
    assert "TimeoutError" in event.attributes[attr.EXCEPTION_STACKTRACE]  # the cause stays visible
    assert t.recipients() == {}


def test_greeting_stalling_past_the_client_timeout(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(greeting_delay=30) as server:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtplib.SMTP(server.host, server.port, timeout=0.5)
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "smtplib.SMTPServerDisconnected"
    assert t.spans(attr.SPAN_SEND) == []


def test_connection_refused_by_the_network(smtp_telemetry):
    t = smtp_telemetry
    port = free_port()  # nothing listens there
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "ConnectionRefusedError"
    assert connect.attributes[attr.SERVER_PORT] == port


def test_greeting_refusal_is_an_smtp_connect_error(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(greeting="554 5.3.2 not accepting mail now") as server:
        with pytest.raises(smtplib.SMTPConnectError) as raised:
            smtplib.SMTP(server.host, server.port)
    assert raised.value.smtp_code == 554
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes[attr.ERROR_TYPE] == "smtplib.SMTPConnectError"
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 554
    assert connect.attributes[attr.SMTP_ENHANCED_STATUS] == "5.3.2"


def test_lmtp_makes_one_connect_span(smtp_telemetry):
    t = smtp_telemetry
    with SMTPTestServer(lmtp=True) as server:
        with smtplib.LMTP(server.host, server.port) as client:
            client.sendmail(SENDER, [ALICE, CAROL], "Subject: hi\r\n\r\nbody\r\n")
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        assert len(server.handler.messages) == 2
    assert len(t.spans(attr.SPAN_SMTP_CONNECT)) == 1  # LMTP.connect defers to SMTP.connect: still one
    assert t.one(attr.SPAN_SMTP_CONNECT).attributes[attr.SMTP_RESPONSE_CODE] == 250  # LHLO
    assert [s.attributes[attr.RECIPIENTS_COUNT] for s in t.spans(attr.SPAN_SEND)] == [2, 1]


def test_connect_span_ends_when_the_client_closes_without_sending(smtp_telemetry, server):
    t = smtp_telemetry
    client = smtplib.SMTP(server.host, server.port)
    client.ehlo()
    assert t.spans(attr.SPAN_SMTP_CONNECT) == []  # setup may still go on (STARTTLS, AUTH)
    client.quit()
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 250
    assert connect.status.status_code is StatusCode.UNSET


class _Recorded:
    """Replace an smtplib exception class with a subclass that remembers its instances."""

    def __init__(self, monkeypatch, name):
        base = getattr(smtplib, name)
        created = self.created = []

        class Recording(base):
            def __init__(self, *args):
                super().__init__(*args)
                created.append(self)

        Recording.__name__ = Recording.__qualname__ = name
        monkeypatch.setattr(smtplib, name, Recording)


@pytest.mark.parametrize(
    ("name", "behaviour", "users"),
    [
        ("SMTPRecipientsRefused", Behaviour(refuse={ALICE: "550 5.1.1 no such user"}), None),
        ("SMTPDataError", Behaviour(data_reply="554 5.7.1 rejected"), None),
        ("SMTPSenderRefused", Behaviour(sender_reply="553 5.7.1 sender rejected"), None),
        ("SMTPServerDisconnected", Behaviour(drop_at="DATA"), None),
        ("SMTPAuthenticationError", None, {"mailer": "right"}),
    ],
)
def test_the_app_receives_the_original_exception_object(smtp_telemetry, monkeypatch, name, behaviour, users):
    recorded = _Recorded(monkeypatch, name)
    with SMTPTestServer(behaviour, users=users) as server:
        client = smtplib.SMTP(server.host, server.port)
        try:
            if users:
                client.login("mailer", "wrong")
            client.sendmail(SENDER, [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        except smtplib.SMTPException as exc:
            caught = exc
        else:
            pytest.fail("no exception")
        finally:
            client.close()
    assert caught is recorded.created[-1]  # the very object smtplib raised
    raise_site = traceback.extract_tb(caught.__traceback__)[-1]
    assert raise_site.filename == smtplib.__file__  # its traceback still ends where smtplib raised it
    failed = [s for s in smtp_telemetry.spans() if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes[attr.ERROR_TYPE].endswith(name)


def test_connect_span_of_a_client_dropped_without_close_is_still_exported(smtp_telemetry, server):
    import gc

    t = smtp_telemetry
    client = smtplib.SMTP(server.host, server.port)
    client.ehlo()
    client.sock.close()  # the app forgets the client without quit() or close()
    del client
    gc.collect()
    connect = t.one(attr.SPAN_SMTP_CONNECT)
    assert connect.attributes[attr.SMTP_RESPONSE_CODE] == 250
    assert connect.status.status_code is StatusCode.UNSET


def test_reconnecting_the_same_client_starts_a_new_connect_span(smtp_telemetry, server):
    t = smtp_telemetry
    client = smtplib.SMTP(server.host, server.port)
    client.sendmail(SENDER, [ALICE], "Subject: 1\r\n\r\nbody\r\n")
    client.quit()
    client.connect(server.host, server.port)
    client.sendmail(SENDER, [ALICE], "Subject: 2\r\n\r\nbody\r\n")
    client.quit()
    connects = t.spans(attr.SPAN_SMTP_CONNECT)
    sends = t.spans(attr.SPAN_SEND)
    assert len(connects) == 2 and len(sends) == 2
    assert connects[0].end_time <= sends[0].end_time  # setup of the first connection, with the implicit EHLO
    assert connects[1].start_time > sends[0].end_time

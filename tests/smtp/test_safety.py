"""The host app comes first: odd inputs and mailscope's own failures never change what a send does.

Odd inputs are run twice against the same kind of real server, uninstrumented and
instrumented, and the app-visible outcomes (result or exception type and text,
and what the server received) must be identical.
"""

import asyncio
import email.message
import logging
from email.headerregistry import Address

import aiosmtplib
import pytest
import smtplib
import wrapt
from opentelemetry import trace

from mailscope import attributes as attr
from mailscope.instrumentation.common import send as send_common
from mailscope.instrumentation.smtp import spans as smtp_spans
from tests.support.smtp_server import Behaviour, SMTPTestServer
from tests.support.smtp_telemetry import refusal_events, smtp_telemetry  # noqa: F401

SENDER = "ops@sender.example.com"
TO = "ivan@inbox.example.org"
REFUSED = "judy@gone.example.net"


def outcome(call, behaviour=None):
    """Run `call(server)` against a fresh server; what the app and the server saw."""
    with SMTPTestServer(behaviour or Behaviour()) as server:
        try:
            result = ("returned", repr(call(server)))
        except Exception as exc:  # the app-visible failure
            result = ("raised", type(exc), str(exc))
        received = [(m.mail_from, m.rcpt_tos, m.content) for m in server.handler.messages]
        commands = list(server.handler.commands)  # what the client got as far as saying
    return result, received, commands


def both_ways(t, call, behaviour=None):
    t.instrumentor.uninstrument()
    try:
        plain = outcome(call, behaviour)
    finally:
        t.instrumentor.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    t.exporter.clear()
    return plain, outcome(call, behaviour)


def smtplib_send(recipients=None, message="Subject: odd\r\n\r\nbody\r\n", use_send_message=False):
    def call(server):
        with smtplib.SMTP(server.host, server.port) as client:
            if use_send_message:
                return client.send_message(message)
            return client.sendmail(SENDER, recipients() if callable(recipients) else recipients, message)

    return call


def headerless():
    return email.message.Message()


def only_to():
    msg = email.message.Message()
    msg["To"] = TO
    return msg


ODD_SMTPLIB = {
    "bytes-addresses": smtplib_send([TO.encode(), b"x@bytes.example.com"]),
    "bytes-single-address": smtplib_send(TO.encode()),
    "single-string": smtplib_send(TO),
    "tuple": smtplib_send((TO, "y@tuple.example.com")),
    "generator": smtplib_send(lambda: (a for a in [TO])),  # a fresh one-shot iterator per run
    "headerregistry-address": smtplib_send([Address("Ivan", "ivan", "inbox.example.org")]),
    "none-recipients": smtplib_send(None),
    "empty-list": smtplib_send([]),
    "int-message": smtplib_send([TO], message=12345),
    "non-ascii-str-message": smtplib_send([TO], message="Subject: caf\u00e9\r\n\r\nna\u00efve\r\n"),
    "message-without-headers": smtplib_send(message=headerless(), use_send_message=True),
    "message-with-only-to": smtplib_send(message=only_to(), use_send_message=True),
    "not-a-message": smtplib_send(message="plain text", use_send_message=True),
}


@pytest.mark.parametrize("case", sorted(ODD_SMTPLIB))
def test_odd_smtplib_inputs_behave_exactly_as_uninstrumented(smtp_telemetry, case):
    plain, instrumented = both_ways(smtp_telemetry, ODD_SMTPLIB[case])
    assert instrumented == plain
    # and when the client got as far as sending, there is exactly one send span
    assert len(smtp_telemetry.spans(attr.SPAN_SEND)) == 1
    assert trace.get_current_span() is trace.INVALID_SPAN  # no span left attached


def aiosmtplib_send(recipients=None, message="Subject: odd\r\n\r\nbody\r\n", use_send_message=False, one_shot=False):
    def call(server):
        async def go():
            if one_shot:
                return await aiosmtplib.send(message, sender=SENDER if recipients else None, recipients=recipients,
                                             hostname=server.host, port=server.port, start_tls=False)
            async with aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False) as client:
                if use_send_message:
                    return await client.send_message(message)
                return await client.sendmail(SENDER, recipients, message)

        return asyncio.run(go())

    return call


ODD_AIOSMTPLIB = {
    "bytes-addresses": aiosmtplib_send([TO.encode()]),
    "single-string": aiosmtplib_send(TO),
    "tuple": aiosmtplib_send((TO, "y@tuple.example.com")),
    "none-recipients": aiosmtplib_send(None),
    "bytes-message": aiosmtplib_send([TO], message=b"Subject: b\r\n\r\nbody\r\n"),
    "message-without-headers": aiosmtplib_send(message=headerless(), use_send_message=True),
    "one-shot-without-headers": aiosmtplib_send(message=headerless(), one_shot=True),
    "one-shot-raw-without-recipients": aiosmtplib_send(message="Subject: x\r\n\r\nb", one_shot=True),
}


@pytest.mark.parametrize("case", sorted(ODD_AIOSMTPLIB))
def test_odd_aiosmtplib_inputs_behave_exactly_as_uninstrumented(smtp_telemetry, case):
    plain, instrumented = both_ways(smtp_telemetry, ODD_AIOSMTPLIB[case])
    assert instrumented == plain
    assert len(smtp_telemetry.spans(attr.SPAN_SEND)) == 1


def test_ten_thousand_recipients(smtp_telemetry):
    t = smtp_telemetry
    recipients = [f"subscriber{i}@list{i % 40:02d}.example.com" for i in range(10_000)]
    refused = recipients[::2]
    behaviour = Behaviour(refuse={r: "550 5.1.1 no such user" for r in refused}, keep_messages=False)
    with SMTPTestServer(behaviour) as server, smtplib.SMTP(server.host, server.port) as client:
        result = client.sendmail(SENDER, recipients, "Subject: big list\r\n\r\nhello\r\n")
        assert server.handler.accepted == 1
    assert len(result) == 5_000
    send = t.one(attr.SPAN_SEND)
    a = send.attributes
    assert a[attr.RECIPIENTS_COUNT] == 10_000
    assert a[attr.RECIPIENTS_REFUSED] == 5_000
    assert list(a[attr.RECIPIENTS_DOMAINS]) == sorted({r.split("@")[1] for r in recipients})[:10]
    assert len(refusal_events(send)) == send_common.MAX_REFUSAL_EVENTS  # bounded; the count stays exact
    assert t.recipients() == {"accepted": 5_000, "refused": 5_000}


def _raise(*args, **kwargs):
    raise RuntimeError("bug inside mailscope")


BROKEN = {
    "envelope": (send_common, "envelope_attributes"),
    "message-headers": (send_common, "headers_from_message"),
    "raw-headers": (send_common, "headers_from_raw"),
    "reply": (send_common, "reply_attributes"),
    "refusal-events": (send_common, "add_refusal_events"),
    "mark-error": (send_common, "mark_error"),
    "metric": (send_common.RecipientsMetric, "record"),
    "transaction": (smtp_spans, "Transaction"),
    "client-state": (smtp_spans, "ClientState"),
    "end-connect": (smtp_spans, "_end_connect"),
}


@pytest.mark.parametrize("part", sorted(BROKEN))
def test_a_failure_inside_mailscope_never_reaches_the_app(smtp_telemetry, monkeypatch, caplog, part):
    owner, name = BROKEN[part]
    monkeypatch.setattr(owner, name, _raise)
    behaviour = Behaviour(refuse={REFUSED: "550 5.1.1 no such user"})
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Message-ID"] = SENDER, f"{TO}, {REFUSED}", "<m1@sender.example.com>"
    msg.set_content("body")
    with caplog.at_level(logging.ERROR, logger="mailscope"):
        with SMTPTestServer(behaviour) as server:
            with smtplib.SMTP(server.host, server.port) as client:
                first = client.send_message(msg)
                second = client.sendmail(SENDER, [TO, REFUSED], "Subject: 2\r\n\r\nbody\r\n")
                with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
                    client.sendmail(SENDER, [REFUSED], "Subject: 3\r\n\r\nbody\r\n")
            assert len(server.handler.messages) == 2
            errors, _ = asyncio.run(aiosmtplib.send(msg, hostname=server.host, port=server.port, start_tls=False))
            assert len(server.handler.messages) == 3
    assert set(first) == set(second) == set(raised.value.recipients) == set(errors) == {REFUSED}
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert smtp_spans._current.get() is None
    internal = [r for r in caplog.records if r.name == "mailscope" and "internal error" in r.getMessage()]
    assert internal, "the failure is logged"
    assert len({r.getMessage() for r in internal}) == len(internal), "each place is logged once"


def test_uninstrument_restores_the_clients(smtp_telemetry):
    t = smtp_telemetry
    wrapped = [smtplib.SMTP.sendmail, smtplib.SMTP.connect, smtplib.LMTP.connect, aiosmtplib.SMTP.sendmail,
               aiosmtplib.send, aiosmtplib.api.send]
    assert all(isinstance(f, wrapt.BaseObjectProxy) for f in wrapped)
    t.instrumentor.uninstrument()
    try:
        restored = [smtplib.SMTP.sendmail, smtplib.SMTP.connect, smtplib.LMTP.connect, aiosmtplib.SMTP.sendmail,
                    aiosmtplib.send, aiosmtplib.api.send]
        assert not any(isinstance(f, wrapt.BaseObjectProxy) for f in restored)
        with SMTPTestServer() as server, smtplib.SMTP(server.host, server.port) as client:
            client.sendmail(SENDER, [TO], "Subject: x\r\n\r\nb\r\n")
        assert t.spans() == []
    finally:
        t.instrumentor.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)


def test_a_client_class_with_slots_still_sends_and_gets_send_spans(smtp_telemetry, caplog):
    class SlottedSMTP(smtplib.SMTP):
        __slots__ = ()  # smtplib.SMTP instances still have a __dict__: subclass of a dict-ful class

    class NoDict:
        __slots__ = ("x",)

    from mailscope.instrumentation.smtp.spans import state_of

    assert state_of(NoDict(), create=True) is None  # no place for state: no connect span, no error
    with caplog.at_level(logging.ERROR, logger="mailscope"):
        with SMTPTestServer() as server, SlottedSMTP(server.host, server.port) as client:
            assert client.sendmail(SENDER, [TO], "Subject: x\r\n\r\nb\r\n") == {}
    assert len(smtp_telemetry.spans(attr.SPAN_SEND)) == 1
    assert not [r for r in caplog.records if r.name == "mailscope"]


def test_reinstrumenting_with_the_same_meter_provider_keeps_counting(smtp_telemetry):
    # an observable instrument registered again on the same meter is the first one:
    # the recipients tally must be shared, or the second instrumentation's counts vanish
    t = smtp_telemetry
    with SMTPTestServer() as server:
        for _ in range(2):
            with smtplib.SMTP(server.host, server.port) as client:
                client.sendmail(SENDER, [TO, "second@inbox.example.org"], "Subject: x\r\n\r\nb\r\n")
            t.instrumentor.uninstrument()
            t.instrumentor.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    assert t.recipients() == {"accepted": 4}

"""Delivery tracking's rules at send time, in process against the local provider servers:
the value is the send span's context; the app's own keys and metadata are kept; a `mailscope`
key the app set wins; what cannot be rewritten safely is sent as it is."""

import json
from urllib.parse import parse_qsl

import httpx
import pytest
import requests

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.delivery import tracking
from tests.support.delivery_apps import RECIPIENT, SENDER, recording
from tests.support.provider_servers import MailgunServer, PostmarkServer
from tests.support.provider_telemetry import CapturedProviders

PM_HEADERS = {"X-Postmark-Server-Token": "pm-server-token"}
MG_AUTH = ("api", "key-test")


@pytest.fixture
def servers():
    with recording(MailgunServer)() as mailgun, recording(PostmarkServer)(sender_signatures=[SENDER]) as postmark:
        reload_settings(delivery_tracking="on", provider_endpoints=(
            f"mailgun=127.0.0.1:{mailgun.port}/v3/*/messages,postmark=127.0.0.1:{postmark.port}/email*"))
        captured = CapturedProviders()
        try:
            yield mailgun, postmark, captured
        finally:
            captured.close()
            reload_settings()


def message(**extra):
    return {"From": SENDER, "To": RECIPIENT, "Subject": "Your invoice", "TextBody": "Attached.", **extra}


def test_the_value_is_the_send_spans_context_and_the_apps_metadata_stays(servers):
    mailgun, postmark, captured = servers
    app_metadata = {"order": "A-1001"}
    sent = message(Metadata=app_metadata)
    requests.post(f"{postmark.url}/email", headers=PM_HEADERS, json=sent).raise_for_status()
    assert sent["Metadata"] == {"order": "A-1001"}  # the app's objects are never changed in place
    with httpx.Client() as client:
        client.post(f"{postmark.url}/email/batch", headers=PM_HEADERS, json=[message(), message()]).raise_for_status()
        client.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_AUTH,
                    data={"from": SENDER, "to": RECIPIENT, "subject": "s", "text": "t"}).raise_for_status()
    sends = captured.sends()
    assert len(sends) == 3

    single, batch = (json.loads(body) for _, body in postmark.bodies)
    assert single["Metadata"]["order"] == "A-1001"
    parent, sent_at = tracking.parse(single["Metadata"]["mailscope"])
    assert (parent.trace_id, parent.span_id) == (sends[0].context.trace_id, sends[0].context.span_id)
    assert sends[0].start_time / 1e9 - 1 <= sent_at <= sends[0].end_time / 1e9 + 1
    assert [m["Metadata"]["mailscope"] for m in batch] == [batch[0]["Metadata"]["mailscope"]] * 2
    assert tracking.parse(batch[0]["Metadata"]["mailscope"])[0].span_id == sends[1].context.span_id
    form = dict(parse_qsl(mailgun.bodies[0][1].decode()))
    assert tracking.parse(form["v:mailscope"])[0].span_id == sends[2].context.span_id
    assert all(s.attributes[attr.RECIPIENTS_COUNT] >= 1 for s in sends)


def test_a_key_the_app_set_wins_and_full_metadata_is_left_alone(servers):
    mailgun, postmark, _ = servers
    full = {f"k{i}": str(i) for i in range(10)}  # Postmark allows 10 metadata fields
    for sent in (message(Metadata={"mailscope": "the app's own"}), message(Metadata=full)):
        requests.post(f"{postmark.url}/email", headers=PM_HEADERS, json=sent).raise_for_status()
    requests.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_AUTH,
                  data={"from": SENDER, "to": RECIPIENT, "subject": "s", "text": "t", "v:mailscope": "mine"})
    own, untouched = (json.loads(body) for _, body in postmark.bodies)
    assert own["Metadata"] == {"mailscope": "the app's own"} and untouched["Metadata"] == full
    assert dict(parse_qsl(mailgun.bodies[0][1].decode()))["v:mailscope"] == "mine"


def test_multipart_httpx_bodies_are_sent_as_they_are(servers):
    mailgun, _, _ = servers
    with httpx.Client() as client:
        client.post(f"{mailgun.url}/v3/mg.example.com/messages", auth=MG_AUTH,
                    data={"from": SENDER, "to": RECIPIENT, "subject": "s", "text": "t"},
                    files={"attachment": ("a.txt", b"hello", "text/plain")}).raise_for_status()
    assert b"mailscope" not in mailgun.bodies[0][1]

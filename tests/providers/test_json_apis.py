"""SendGrid, Brevo, Mailjet, Resend, SparkPost and Mandrill by URL, over requests and httpx.

Local servers (tests/support/provider_servers) answer each API's send endpoint
with its documented success and error shapes. The app below never imports
mailscope and runs under the real `opentelemetry-instrument` launcher, with the
upstream requests and httpx instrumentations loaded too, the way
django-anymail or a hand-written client would call these APIs. Checked in the
exported OTLP JSON: one `email.send` span per call with the provider name, the
recipients counted from the request body, the answer's status and the error
the errors stage classified, the upstream HTTP span as its child, and not one
test address anywhere. The `sendgrid` package in the same process keeps its one
span per send, and a raw POST to SendGrid gets one too, never two.
"""

import json

from opentelemetry.trace import SpanKind

import requests

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.exporters.otlp_file import read_spans
from mailscope.instrumentation.providers.http import match_url
from tests.support.launcher import file_export_env, run_instrumented, write_script
from tests.support.provider_servers import (BrevoServer, MailjetServer, MandrillServer, ResendServer, SendGridServer,
                                            SparkPostServer)
from tests.support.provider_telemetry import CapturedProviders, refusal_domains

A = {
    "SENDER": "news@shop.example.com",
    "TO_1": "kim.lee@clients.example.org",
    "TO_2": "lou@clients.example.org",
    "GONE": "bounced.before@gone.example.io",
    "STRANGER": "someone@other.example.com",
}


def test_the_documented_send_urls_are_built_in():
    for url, provider in [("https://api.sendgrid.com/v3/mail/send", "sendgrid"),
                          ("https://api.eu.sendgrid.com/v3/mail/send", "sendgrid"),
                          ("https://api.brevo.com/v3/smtp/email", "brevo"),
                          ("https://api.mailjet.com/v3.1/send", "mailjet"),
                          ("https://api.resend.com/emails", "resend"),
                          ("https://api.resend.com/emails/batch", "resend"),
                          ("https://api.sparkpost.com/api/v1/transmissions", "sparkpost"),
                          ("https://api.eu.sparkpost.com/api/v1/transmissions?num_rcpt_errors=3", "sparkpost"),
                          ("https://mandrillapp.com/api/1.0/messages/send.json", "mandrill"),
                          ("https://mandrillapp.com/api/1.0/messages/send-template.json", "mandrill"),
                          ("https://mandrillapp.com/api/1.0/messages/send-raw.json", "mandrill")]:
        assert match_url("POST", url) == (provider, (url.split("/")[2], 443)), url
    for method, url in [("GET", "https://api.resend.com/emails"), ("POST", "https://api.resend.com/emails/abc/cancel"),
                        ("POST", "https://api.brevo.com/v3/contacts"), ("POST", "https://api.mailjet.com/v3/REST/contact"),
                        ("POST", "https://api.sparkpost.com/api/v1/templates"),
                        ("POST", "https://mandrillapp.com/api/1.0/users/ping.json"),
                        ("POST", "https://api.sendgrid.com/v3/marketing/contacts")]:
        assert match_url(method, url) is None, (method, url)


def test_a_post_inside_a_send_span_gets_no_second_one():
    """The sendgrid package's span (or a config-named send operation) is current: a POST to a
    send URL made inside it is part of that send."""
    with SendGridServer(verified_senders=[A["SENDER"]]) as server:
        reload_settings(provider_endpoints=f"sendgrid=127.0.0.1:{server.port}/v3/mail/send")
        captured = CapturedProviders()
        try:
            body = {"personalizations": [{"to": [{"email": A["TO_1"]}]}], "from": {"email": A["SENDER"]},
                    "subject": "x", "content": [{"type": "text/plain", "value": "y"}]}
            headers = {"Authorization": "Bearer SG.test-key"}
            with captured.tracer.start_as_current_span(attr.SPAN_SEND, kind=SpanKind.CLIENT,
                                                       attributes={attr.OPERATION: attr.OP_SEND}):
                assert requests.post(f"{server.url}/v3/mail/send", json=body, headers=headers).status_code == 202
            assert [s.name for s in captured.spans()] == [attr.SPAN_SEND]  # the outer one only
            assert requests.post(f"{server.url}/v3/mail/send", json=body, headers=headers).status_code == 202
            send = captured.sends()[-1]
            assert send.attributes[attr.PROVIDER] == "sendgrid" and send.attributes[attr.RECIPIENTS_COUNT] == 1
            assert len(captured.sends()) == 2
        finally:
            captured.close()
            reload_settings()


APP = r'''
import json, sys
import httpx, requests

cfg = json.load(open(sys.argv[1]))
A, u = cfg["addresses"], cfg["urls"]
seen = []


def call(label, fn):
    try:
        seen.append([label, fn().status_code])
    except Exception as exc:
        seen.append([label, type(exc).__name__])


S, T1, T2, GONE = A["SENDER"], A["TO_1"], A["TO_2"], A["GONE"]
brevo = {"api-key": "xkeysib-test"}
call("brevo-ok", lambda: requests.post(u["brevo"] + "/v3/smtp/email", headers=brevo, json={
    "sender": {"email": S}, "to": [{"email": T1, "name": "Kim"}], "cc": [{"email": T2}], "subject": "Hi",
    "htmlContent": "<p>Hi</p>", "headers": {"X-Campaign-ID": "brevo-run"}}))
call("brevo-versions", lambda: requests.post(u["brevo"] + "/v3/smtp/email", headers=brevo, json={
    "sender": {"email": S}, "subject": "Hi", "htmlContent": "<p>Hi</p>",
    "messageVersions": [{"to": [{"email": T1}]}, {"to": [{"email": T2}]}]}))
call("brevo-bad-key", lambda: requests.post(u["brevo"] + "/v3/smtp/email", headers={"api-key": "nope"}, json={
    "sender": {"email": S}, "to": [{"email": T1}]}))
call("brevo-invalid", lambda: requests.post(u["brevo"] + "/v3/smtp/email", headers=brevo, json={
    "sender": {"email": S}, "to": [{"email": T1.split("@")[0] + "@"}]}))
with httpx.Client(auth=("mj-key", "mj-secret")) as mailjet:
    call("mailjet-partial", lambda: mailjet.post(u["mailjet"] + "/v3.1/send", json={
        "Globals": {"From": {"Email": S}, "Subject": "Hi", "TextPart": "Hi"},
        "Messages": [{"To": [{"Email": T1}]}, {"To": [{"Email": T2}]}, {"To": [{"Email": T2.split("@")[0] + "@"}]}]}))
call("mailjet-bad-key", lambda: httpx.post(u["mailjet"] + "/v3.1/send", auth=("mj-key", "nope"), json={
    "Messages": [{"From": {"Email": S}, "To": [{"Email": T1}]}]}))
resend = {"Authorization": "Bearer re_test"}
call("resend-ok", lambda: requests.post(u["resend"] + "/emails", headers=resend, json={
    "from": f"Shop <{S}>", "to": [T1, T2], "subject": "Hi", "text": "Hi"}))
call("resend-batch", lambda: requests.post(u["resend"] + "/emails/batch", headers=resend, json=[
    {"from": S, "to": T1, "subject": "Hi"}, {"from": S, "to": T2, "subject": "Hi"}]))
call("resend-unverified", lambda: requests.post(u["resend"] + "/emails", headers=resend, json={
    "from": A["STRANGER"], "to": T1, "subject": "Hi", "text": "Hi"}))
sparkpost = {"Authorization": "sp-key"}
call("sparkpost-partial", lambda: httpx.post(u["sparkpost"] + "/api/v1/transmissions", headers=sparkpost, json={
    "recipients": [{"address": {"email": T1, "name": "Kim"}}, {"address": GONE}],
    "content": {"from": S, "subject": "Hi", "text": "Hi", "headers": {"X-Campaign-ID": "sp-run"}}}))
call("sparkpost-suppressed", lambda: httpx.post(u["sparkpost"] + "/api/v1/transmissions", headers=sparkpost, json={
    "recipients": [{"address": {"email": GONE}}], "content": {"from": S, "subject": "Hi", "text": "Hi"}}))
call("mandrill-ok", lambda: httpx.post(u["mandrill"] + "/api/1.0/messages/send.json", json={
    "key": "md-key", "message": {"from_email": S, "subject": "Hi", "text": "Hi",
                                 "to": [{"email": T1}, {"email": T2, "type": "cc"}]}}))
call("mandrill-rejected", lambda: httpx.post(u["mandrill"] + "/api/1.0/messages/send.json", json={
    "key": "md-key", "message": {"from_email": S, "to": [{"email": GONE}]}}))
call("mandrill-bad-key", lambda: httpx.post(u["mandrill"] + "/api/1.0/messages/send-raw.json", json={
    "key": "nope", "raw_message": f"From: {S}\r\nTo: {T1}\r\nSubject: Hi\r\n\r\nHi\r\n", "to": [T1]}))
sendgrid_body = {"personalizations": [{"to": [{"email": T1}]}, {"to": [{"email": T2}]}], "from": {"email": S},
                 "subject": "Hi", "content": [{"type": "text/plain", "value": "Hi"}]}
call("sendgrid-raw", lambda: requests.post(u["sendgrid"] + "/v3/mail/send", json=sendgrid_body,
                                           headers={"Authorization": "Bearer SG.test-key"}))
call("sendgrid-raw-unverified", lambda: requests.post(u["sendgrid"] + "/v3/mail/send", headers={
    "Authorization": "Bearer SG.test-key"}, json={**sendgrid_body, "from": {"email": A["STRANGER"]}}))
import sendgrid
call("sendgrid-sdk", lambda: sendgrid.SendGridAPIClient(api_key="SG.test-key", host=u["sendgrid"]).send(sendgrid_body))
print("SEEN " + json.dumps(seen))
'''

# label: (status the app saw, provider, recipients counted, refused, error.type, error category)
EXPECTED = {
    "brevo-ok": (201, "brevo", 2, 0, None, None),
    "brevo-versions": (201, "brevo", 2, 0, None, None),
    "brevo-bad-key": (401, "brevo", 1, None, "401", "authentication"),
    "brevo-invalid": (400, "brevo", 1, None, "400", "validation"),
    "mailjet-partial": (400, "mailjet", 3, 1, None, None),  # 2 of 3 messages went out
    "mailjet-bad-key": (401, "mailjet", 1, None, "401", "authentication"),
    "resend-ok": (200, "resend", 2, 0, None, None),
    "resend-batch": (200, "resend", 2, 0, None, None),
    "resend-unverified": (403, "resend", 1, None, "403", "validation"),
    "sparkpost-partial": (200, "sparkpost", 2, 1, None, None),
    # SparkPost 1902, "recipient address suppressed due to customer policy": the address is on the
    # account's suppression list, a fact about the recipient (issue 18's second wave made it
    # `recipient`; a suppression that names a complaint stays `reputation`)
    "sparkpost-suppressed": (400, "sparkpost", 1, None, "400", "recipient"),
    "mandrill-ok": (200, "mandrill", 2, 0, None, None),
    "mandrill-rejected": (200, "mandrill", 1, 1, "rejected", "recipient"),
    "mandrill-bad-key": (500, "mandrill", 1, None, "Invalid_Key", "authentication"),
    "sendgrid-raw": (202, "sendgrid", 2, 0, None, None),
    "sendgrid-raw-unverified": (403, "sendgrid", 2, None, "403", "validation"),
    "sendgrid-sdk": (202, "sendgrid", 2, 0, None, None),
}


def test_json_provider_apis_under_the_launcher(tmp_path):
    servers = {"brevo": BrevoServer(), "mailjet": MailjetServer(), "resend": ResendServer(),
               "sparkpost": SparkPostServer(suppressed=[A["GONE"]]), "mandrill": MandrillServer(rejected=[A["GONE"]]),
               "sendgrid": SendGridServer(verified_senders=[A["SENDER"]])}
    for server in servers.values():
        server.start()
    try:
        p = {name: server.port for name, server in servers.items()}
        endpoints = ",".join([
            f"brevo=127.0.0.1:{p['brevo']}/v3/smtp/email", f"mailjet=127.0.0.1:{p['mailjet']}/v3.1/send",
            f"resend=127.0.0.1:{p['resend']}/emails", f"resend=127.0.0.1:{p['resend']}/emails/batch",
            f"sparkpost=127.0.0.1:{p['sparkpost']}/api/v1/transmissions",
            f"mandrill=127.0.0.1:{p['mandrill']}/api/1.0/messages/send*",
            f"sendgrid=127.0.0.1:{p['sendgrid']}/v3/mail/send"])
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"addresses": A, "urls": {n: s.url for n, s in servers.items()}}))
        traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
        env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none", MAILSCOPE_PROVIDER_ENDPOINTS=endpoints,
                              MAILSCOPE_HEADER_ATTRIBUTES="X-Campaign-ID=email.campaign.id")
        result = run_instrumented(write_script(tmp_path, APP), env, config)
    finally:
        for server in servers.values():
            server.stop()
    assert result.returncode == 0, result.stderr
    seen = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("SEEN ")).removeprefix("SEEN "))
    assert seen == [[label, expected[0]] for label, expected in EXPECTED.items()]  # the app's results, unchanged

    for where, data in {"traces": traces.read_bytes(), "metrics": metrics.read_bytes(),
                        "output": (result.stdout + result.stderr).encode()}.items():
        for address in A.values():
            assert address.encode() not in data, (where, address)

    spans = read_spans(str(traces))
    sends = sorted((s for s in spans if s["name"] == attr.SPAN_SEND), key=lambda s: s["start_ns"])
    assert len(sends) == len(EXPECTED)  # one per call: the sendgrid package's call included, never two
    for span, (label, (status, provider, count, refused, error, category)) in zip(sends, EXPECTED.items()):
        a = span["attributes"]
        assert (a[attr.PROVIDER], a[attr.RECIPIENTS_COUNT], a[attr.HTTP_RESPONSE_STATUS_CODE]) == (provider, count, status), label
        assert a.get(attr.RECIPIENTS_REFUSED) == refused, (label, a)
        assert a.get(attr.ERROR_TYPE) == error, (label, a)
        assert (span["status_code"] == "ERROR") == (error is not None), label
        assert a.get(attr.ERROR_CATEGORY) == category, (label, a, span["status_message"])
        assert span["kind"] == "CLIENT" and a[attr.OPERATION] == attr.OP_SEND
    by_label = dict(zip(EXPECTED, sends))
    assert by_label["brevo-versions"]["attributes"][attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert by_label["resend-batch"]["attributes"][attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert by_label["mailjet-partial"]["attributes"][attr.MESSAGING_BATCH_MESSAGE_COUNT] == 3
    assert by_label["brevo-ok"]["attributes"]["email.campaign.id"] == "brevo-run"
    assert by_label["sparkpost-partial"]["attributes"]["email.campaign.id"] == "sp-run"
    for label in ("brevo-ok", "resend-ok", "sparkpost-partial"):
        assert attr.MESSAGE_ID_HASH in by_label[label]["attributes"], label
    refused_domains = sorted(e["attributes"].get(attr.RECIPIENT_DOMAIN) for e in by_label["mandrill-rejected"]["events"]
                             if e["name"] == attr.EVENT_RECIPIENT_REFUSED)
    assert refused_domains == ["gone.example.io"]

    # the upstream HTTP client span of every requests/httpx call is a child of its send span
    send_ids = {s["span_id"] for s in sends}
    clients = [s for s in spans if s["name"] == "POST"]
    assert len(clients) == len(EXPECTED) - 1  # the sendgrid package sends through urllib
    assert all(s["parent_span_id"] in send_ids for s in clients)

"""The delivery receiver behind real servers (wsgiref for WSGI, uvicorn for ASGI), in this process.

For each provider, events signed as the provider signs them become `email.delivery` spans:
a child of the send span when they carry mailscope's tracking value, a root span carrying
the message id hash when they do not. A bounce is classified exactly like the synchronous
refusal of the same reply by a real SMTP server (category, retryable, fingerprint). Every
unsigned, badly signed, stale, replayed, malformed, oversized or unconfigured request is
refused with 4xx, counted by reason, and makes no span. No address reaches a span.
"""

import smtplib
import time

import pytest

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.delivery import asgi_app, tracking, wsgi_app
from mailscope.delivery.receiver import MAX_BODY_BYTES
from tests.support import delivery_events as de
from tests.support.delivery_receiver import HOST, Served
from tests.support.smtp_server import Behaviour, SMTPTestServer
from tests.support.smtp_telemetry import smtp_telemetry  # noqa: F401 (fixture)
from tests.support.span_strings import exported_text

RECIPIENT = de.RECIPIENT
SENDER = "billing@shop.example.com"
BOUNCE = de.BOUNCE
PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses")


@pytest.fixture(scope="module")
def keys():
    found = de.WebhookKeys()
    yield found
    found.certs.stop()


@pytest.fixture(params=["wsgi", "asgi"])
def served(request, keys, smtp_telemetry):  # noqa: F811
    telemetry = smtp_telemetry
    make = wsgi_app if request.param == "wsgi" else asgi_app
    app = make(config=keys.config(), tracer_provider=telemetry.tracer_provider,
               meter_provider=telemetry.meter_provider)
    with Served(app, request.param) as server:
        server.telemetry = telemetry
        yield server


def metric_points(telemetry, name) -> list:
    data = telemetry.reader.get_metrics_data()
    points = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def rejected(telemetry) -> dict:
    return {(p.attributes[attr.PROVIDER], p.attributes[attr.LABEL_REASON]): p.value
            for p in metric_points(telemetry, attr.METRIC_DELIVERY_REJECTED)}


def send_span(telemetry):
    """A send span as the app's instrumentation makes one, and its tracking value sent 100 s ago."""
    span = telemetry.tracer.start_span(attr.SPAN_SEND, attributes={attr.OPERATION: attr.OP_SEND})
    span.end()
    return span, tracking.value_for(span, sent_at_s=int(time.time()) - 100)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_events_join_the_send_trace_classified(served, keys, provider):
    telemetry = served.telemetry
    # the synchronous refusal of the same reply, by a real SMTP server
    with SMTPTestServer(Behaviour(refuse={RECIPIENT: BOUNCE})) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            with smtplib.SMTP(smtp.host, smtp.port) as client:
                client.sendmail(SENDER, [RECIPIENT], b"Subject: hi\r\n\r\nbody\r\n")
    synchronous = [s for s in telemetry.spans(attr.SPAN_SEND) if s.status.is_ok is False][0]

    send, value = send_span(telemetry)
    event_at = int(time.time()) - 58  # 42 s after the send time the value carries
    for kind in ("delivered", "bounced", "deferred", "complained"):
        # a diagnostic naming the recipient, as many do: only its domain may be exported
        diagnostic = BOUNCE if kind != "deferred" else f"451 4.7.1 <{RECIPIENT}>: Greylisted, please try again later"
        body, headers = keys.request(provider, kind, f"msg-{provider}-{kind}", value, at=event_at,
                                     diagnostic=diagnostic)
        status, answer = de.post(served.url(provider), body, headers)
        assert status == 200, (kind, answer)

    spans = {s.attributes[attr.DELIVERY_STATUS]: s for s in telemetry.spans(attr.SPAN_DELIVERY)}
    assert set(spans) == {"delivered", "bounced", "deferred", "complained"}
    for status, span in spans.items():
        assert span.parent is not None and span.parent.span_id == send.context.span_id, status
        assert span.context.trace_id == send.context.trace_id
        assert span.attributes[attr.OPERATION] == attr.OP_DELIVERY
        assert span.attributes[attr.PROVIDER] == provider
        assert span.attributes[attr.RECIPIENTS_DOMAINS] == ("clients.example.org",)
        assert span.attributes[attr.DELIVERY_LATENCY] == pytest.approx(42, abs=1)
        assert span.attributes[attr.MESSAGE_ID_HASH]
        assert RECIPIENT not in exported_text(span) and "kim.lee" not in exported_text(span)
        assert span.status.is_ok is (status not in ("bounced", "deferred"))

    bounce = spans["bounced"]
    assert bounce.attributes[attr.SMTP_RESPONSE_CODE] == 550
    assert bounce.attributes[attr.SMTP_ENHANCED_STATUS] == "5.1.1"
    for key in (attr.ERROR_CATEGORY, attr.ERROR_RETRYABLE, attr.ERROR_FINGERPRINT, attr.ERROR_PATTERN):
        assert bounce.attributes[key] == synchronous.attributes[key], key
    assert bounce.attributes[attr.ERROR_CATEGORY] == "recipient"
    deferred = spans["deferred"]
    assert deferred.attributes[attr.SMTP_RESPONSE_CODE] == 451
    assert deferred.attributes[attr.ERROR_RETRYABLE] is True

    counted = {(p.attributes[attr.DELIVERY_STATUS], p.attributes.get(attr.ERROR_CATEGORY)): p.value
               for p in metric_points(telemetry, attr.METRIC_DELIVERY_EVENTS)}
    assert counted[("bounced", "recipient")] == 1 and counted[("delivered", None)] == 1
    latency = metric_points(telemetry, attr.METRIC_DELIVERY_LATENCY)
    # the histogram measures delivery (delivered, bounced, deferred), not the complaint
    assert latency and latency[0].count == 3 and latency[0].attributes == {attr.PROVIDER: provider}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_event_without_tracking_is_a_root_with_the_message_id_hash(served, keys, provider):
    from mailscope.instrumentation.common.send import message_id_hash

    body, headers = keys.request(provider, "delivered", "0100018c-untracked")
    assert de.post(served.url(provider), body, headers)[0] == 200
    (span,) = served.telemetry.spans(attr.SPAN_DELIVERY)
    assert span.parent is None
    assert attr.DELIVERY_LATENCY not in span.attributes
    assert span.attributes[attr.MESSAGE_ID_HASH] == message_id_hash("0100018c-untracked")


def forged(keys, provider, case):
    """(body, headers) of a request that must be refused, and the reason it is counted under."""
    old = time.time() - 600
    if case == "stale":
        if provider == "postmark":
            pytest.skip("Postmark signs no time: its basic auth and the replay guard are all there is")
        at = {"sendgrid": {"timestamp": old}, "mailgun": {"timestamp": old}, "ses": {"timestamp": old}}[provider]
        return keys.request(provider, "delivered", "m-stale", **at), "stale"
    body, headers = keys.request(provider, "delivered", "m-forged")
    if case == "unsigned":
        if provider == "sendgrid":
            headers = {}
        elif provider == "mailgun":
            import json

            document = json.loads(body)
            del document["signature"]
            body = json.dumps(document).encode()
        elif provider == "postmark":
            headers = {}
        else:
            import json

            document = json.loads(body)
            del document["Signature"]
            body = json.dumps(document).encode()
        return (body, headers), "unsigned"
    if case == "bad_signature":
        if provider == "sendgrid":
            other = de.SendGridSigner()
            return other.post_args(__import__("json").loads(body)), "bad_signature"
        if provider == "mailgun":
            return (de.MailgunSigner("not-the-key").body(__import__("json").loads(body)["event-data"]), {}), \
                "bad_signature"
        if provider == "postmark":
            return (body, de.postmark_auth(password="guess")), "bad_signature"
        # a certificate from an origin the receiver does not trust, then a tampered message
        import json

        document = json.loads(body)
        document["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.example.net/cert.pem"
        return (json.dumps(document).encode(), headers), "bad_signature"
    if case == "tampered":
        return (body.replace(b"delivered", b"Delivered").replace(b"Delivery", b"Bounce"), headers), "bad_signature"
    if case == "malformed":
        if provider == "sendgrid":
            return keys.sendgrid.post_args({"not": "an array"}), "malformed"
        if provider == "mailgun":
            return (b"{not json", {}), "malformed"
        if provider == "postmark":
            return (b"[1, 2", de.postmark_auth()), "malformed"
        return (b"<xml/>", {}), "malformed"
    raise ValueError(case)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_forged_stale_replayed_and_oversized_requests_are_refused(served, keys, provider):
    telemetry = served.telemetry
    url = served.url(provider)
    expected = {}
    for case in ("unsigned", "bad_signature", "tampered", "stale", "malformed"):
        if case == "tampered" and provider in ("postmark", "mailgun"):
            continue  # basic auth covers no content; Mailgun signs timestamp + token only (single use)
        if case == "stale" and provider == "postmark":
            continue
        (body, headers), reason = forged(keys, provider, case)
        status, answer = de.post(url, body, headers)
        assert status == (400 if reason == "malformed" else 401), (case, status, answer)
        assert answer.decode() == reason
        expected[reason] = expected.get(reason, 0) + 1

    body, headers = keys.request(provider, "delivered", "m-once")
    assert de.post(url, body, headers)[0] == 200
    assert de.post(url, body, headers) == (401, b"replayed")
    expected["replayed"] = 1

    assert de.post_oversized(url, MAX_BODY_BYTES + 1) == 413
    expected["too_large"] = 1

    assert rejected(telemetry) == {(provider, reason): n for reason, n in expected.items()}
    assert len(telemetry.spans(attr.SPAN_DELIVERY)) == 1  # the genuine event only


def test_providers_without_keys_are_refused(keys, smtp_telemetry):  # noqa: F811
    telemetry = smtp_telemetry
    app = wsgi_app(config=load_settings({}), tracer_provider=telemetry.tracer_provider,
                   meter_provider=telemetry.meter_provider)
    with Served(app, "wsgi") as server:
        for provider in PROVIDERS:
            body, headers = keys.request(provider, "delivered", "m-unconfigured")
            assert de.post(server.url(provider), body, headers) == (401, b"not_configured")
        assert de.post(server.url("nobody"), b"{}", {})[0] == 404
    assert rejected(telemetry) == {(p, "not_configured"): 1 for p in PROVIDERS}
    assert telemetry.spans(attr.SPAN_DELIVERY) == []


def test_sns_certificates_come_only_from_allowed_origins():
    from mailscope.delivery.verify import CertificateSource

    default = CertificateSource(load_settings({}).webhook_ses_cert_origins, fetch=lambda url: b"")
    assert default.allowed("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    assert default.allowed("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem")
    for url in ("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
                "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
                "https://sns.a.b.amazonaws.com/x.pem",
                "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
                "https://sns.eu-west-1.amazonaws.com@evil.example/x.pem",
                "https://sns.eu-west-1.amazonaws.com/x.pem?redirect=1",
                "https://sns.eu-west-1.amazonaws.com/x.txt"):
        assert not default.allowed(url), url


ODD_DOCUMENTS = [None, 0, "x", [], {}, [None], [[]], [{"event": ["bounce"], "email": {"a": 1}, "timestamp": "soon"}],
                 [{"event": "bounce", "email": "no-at-sign", "timestamp": 1e300, "reason": None, "status": 5}],
                 [{"event": "deferred", "mailscope": "00-" + "0" * 32 + "-" + "0" * 16 + "-01_1"}],
                 [{"event": "delivered", "mailscope": "00-" + "f" * 32 + "-" + "f" * 16 + "-01_" + "9" * 16}],
                 [{"event": "dropped", "sg_message_id": ["x"], "sg_event_id": {"y": 1}}] * 3]


def test_signed_but_odd_payloads_never_crash_the_receiver(served, keys):
    """Whatever a verified request holds, the answer is 200 or 400, never a 500."""
    url = served.url("sendgrid")
    for document in ODD_DOCUMENTS:
        body, headers = keys.sendgrid.post_args(document)
        status, answer = de.post(url, body, headers)
        assert status in (200, 400), (document, status, answer)
    for data in (None, [], {"event": "failed", "delivery-status": "x", "message": [], "user-variables": 3},
                 {"event": "failed", "severity": "temporary", "delivery-status": {"code": "550", "message": 7},
                  "recipient": 12, "timestamp": "2026-13-45"}):
        status, answer = de.post(served.url("mailgun"), keys.mailgun.body(data), {})
        assert status in (200, 400), (data, status, answer)
    for message in ("not json", "[]", '{"eventType": "Bounce", "bounce": {"bouncedRecipients": [1, null, {}]}}',
                    '{"notificationType": "Delivery", "mail": {"tags": {"mailscope": "bad"}}, "delivery": []}'):
        status, answer = de.post(served.url("ses"), keys.sns.body(message), {})
        assert status in (200, 400), (message, status, answer)


def test_an_sns_subscription_is_confirmed_at_an_allowed_origin_only(served, keys):
    path = "/?Action=ConfirmSubscription&TopicArn=ses-events&Token=2336412f37fb687f5d51e6e2425"
    keys.certs.files[path] = b"<ConfirmSubscriptionResponse/>"
    before = keys.certs.fetched.count(path)
    status, _ = de.post(served.url("ses"), keys.sns.confirmation(keys.certs.url + path), {})
    assert status == 200 and keys.certs.fetched.count(path) == before + 1  # the receiver confirmed it
    elsewhere = "https://sns.us-east-1.amazonaws.com.example.net" + path
    assert de.post(served.url("ses"), keys.sns.confirmation(elsewhere), {}) == (401, b"bad_signature")
    assert keys.certs.fetched.count(path) == before + 1


def test_the_replay_guard_is_bounded_and_claims_atomically():
    import threading

    from mailscope.delivery.receiver import ReplayGuard

    guard = ReplayGuard(limit=3)
    assert all(guard.claim([f"id-{n}"]) for n in range(5))
    assert len(guard) == 3 and guard.claim(["id-0"]) and not guard.claim(["id-4"])  # the oldest were forgotten
    guard.release(["id-4"])
    assert guard.claim(["id-4", "id-new"])
    wins = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        wins.append(guard.claim(["same-request"]))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_mounted_in_a_flask_app_next_to_its_own_routes(keys, smtp_telemetry):  # noqa: F811
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    shop = Flask("shop")

    @shop.get("/health")
    def health():
        return "ok"

    receiver = wsgi_app(config=keys.config(), tracer_provider=smtp_telemetry.tracer_provider,
                        meter_provider=smtp_telemetry.meter_provider)
    app = DispatcherMiddleware(shop.wsgi_app, {"/hooks": receiver})
    with Served(app, "wsgi", mount=False) as server:
        body, headers = keys.request("postmark", "delivered", "m-flask")
        assert de.post(server.url("postmark"), body, headers) == (200, b"ok 1")
        import urllib.request

        with urllib.request.urlopen(f"http://{HOST}:{server.port}/health", timeout=10) as answer:
            assert answer.read() == b"ok"
    assert len(smtp_telemetry.spans(attr.SPAN_DELIVERY)) == 1


def post_chunked(url, body, headers):
    """POST `body` in two chunks (Transfer-Encoding: chunked, no Content-Length); (status, body).

    The whole request goes out in one write: a server that answers without reading a body it
    cannot frame (wsgiref) then finds nothing unread at close. Sent chunk by chunk, the second
    write raced that close and failed with a broken pipe, or the answer was lost to the reset."""
    import socket
    from http.client import HTTPResponse
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:100], body[100:]) if c) + b"0\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + chunks)
        answer = HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read()


def test_under_gunicorn_a_chunked_request_is_read_and_wsgiref_does_not_wait_for_one(tmp_path, keys, served):
    import subprocess

    from tests.support.launcher import VENV_BIN, base_env, free_port

    port = free_port()
    gunicorn = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--bind", f"{HOST}:{port}", "--workers", "1",
                                 "mailscope.delivery:wsgi_app()"], env=base_env(**keys.env()), cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import socket

        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert gunicorn.poll() is None and time.monotonic() < deadline, gunicorn.stdout.read()
                time.sleep(0.1)
        body, headers = keys.request("mailgun", "delivered", "m-chunked")
        assert post_chunked(f"http://{HOST}:{port}/mailgun", body, headers) == (200, b"ok 1")
    finally:
        gunicorn.terminate()
        gunicorn.communicate(timeout=30)
    if served.kind == "wsgi":  # wsgiref passes no length and no terminated stream: nothing is read
        body, headers = keys.request("mailgun", "delivered", "m-chunked-2")
        assert post_chunked(served.url("mailgun"), body, headers) == (400, b"malformed")
    else:  # uvicorn reads chunked bodies for the ASGI app
        body, headers = keys.request("mailgun", "delivered", "m-chunked-2")
        assert post_chunked(served.url("mailgun"), body, headers) == (200, b"ok 1")

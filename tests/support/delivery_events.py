"""Provider event webhooks for tests: documented payloads, signed as each provider signs them.

- `SendGridSigner`: an ECDSA P-256 key pair; `post_args(events)` gives the JSON array body and
  the `X-Twilio-Email-Event-Webhook-Signature` / `-Timestamp` headers (signature over
  timestamp + body, base64 DER), `public_key` is what the dashboard shows (base64 DER).
- `MailgunSigner`: the webhook signing key; `body(event_data)` wraps the event in
  `{"signature": {timestamp, token, signature = hex HMAC-SHA256(timestamp + token)}, "event-data"}`.
- `postmark_auth(user, password)`: the basic-auth header Postmark sends for `https://user:pass@...`.
- `SNSSigner`: an RSA key and a self-signed certificate served by `CertificateServer` on
  loopback (real SNS certificates come from `https://sns.<region>.amazonaws.com`, which the
  receiver is told to trust here by `MAILSCOPE_WEBHOOK_SES_CERT_ORIGINS`); `body(message)` is
  an SNS Notification whose `Message` is the SES event, signed (SignatureVersion 1: SHA1withRSA,
  2: SHA256withRSA) over the canonical string.
- `sendgrid_event`, `mailgun_event`, `postmark_event`, `ses_event`: one event of a kind in the
  provider's documented shape, echoing the tracking value the send carried.
- `WebhookKeys`: all four at once, as env vars (`env()`) or Settings (`config()`), and
  `request(provider, kind, message_id, tracking)`: one signed delivered / bounced / deferred /
  complained event in that provider's shape.
- `post(url, body, headers)`: (status, body) of a POST with http.client.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import time
import uuid
from http.client import HTTPConnection
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.provider_servers import Answer, HTTPTestServer

TRACKING_KEY = "mailscope"
RECIPIENT = "kim.lee@clients.example.org"
BOUNCE = "550 5.1.1 The email account that you tried to reach does not exist"


def post(url: str, body: bytes, headers=None, timeout: float = 30.0) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path or "/", body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_oversized(url: str, length: int, timeout: float = 30.0) -> int:
    """The status a server answers to a POST announcing `length` body bytes, sending only a few:
    a receiver must refuse an oversized body from its Content-Length, without reading it."""
    import socket

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n[".encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- SendGrid --------------------------------------------------------------------------------
class SendGridSigner:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def post_args(self, events, timestamp=None) -> tuple[bytes, dict]:
        body = json.dumps(events).encode()
        stamp = str(int(time.time() if timestamp is None else timestamp))
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                      "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


def sendgrid_event(kind, email, message_id, tracking=None, at=None, **fields) -> dict:
    """`kind`: delivered, bounce, deferred, dropped, spamreport, open, click, unsubscribe, processed."""
    event = {"email": email, "timestamp": int(at or time.time()), "event": kind,
             "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
             "sg_message_id": f"{message_id}.filterdrecv-5645d9c87f-78xgx-1-5F3A2C3B-2.0",
             "smtp-id": f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>", "category": ["invoice"]}
    if kind == "bounce":
        event.update({"type": "bounce", "bounce_classification": "Invalid Address"})
    if tracking is not None:
        event[TRACKING_KEY] = tracking
    event.update(fields)
    return event


# --- Mailgun ---------------------------------------------------------------------------------
class MailgunSigner:
    def __init__(self, key="whsec-mailgun-test-signing-key"):
        self.key = key

    def signature(self, timestamp=None, token=None) -> dict:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        token = token or secrets.token_hex(25)
        digest = hmac.new(self.key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        return {"timestamp": stamp, "token": token, "signature": digest}

    def body(self, event_data, **signature) -> bytes:
        return json.dumps({"signature": self.signature(**signature), "event-data": event_data}).encode()


def mailgun_event(kind, recipient, message_id, tracking=None, at=None, severity=None, code=None, message="",
                  description="", reason=None) -> dict:
    """`kind`: delivered, failed (severity permanent/temporary), opened, clicked, unsubscribed, complained."""
    data = {"id": secrets.token_urlsafe(16), "timestamp": float(at or time.time()), "event": kind,
            "recipient": recipient, "recipient-domain": recipient.rpartition("@")[2], "tags": [],
            "envelope": {"sender": "billing@mg.example.com", "transport": "smtp", "targets": recipient},
            "message": {"headers": {"message-id": message_id.strip("<>"), "from": "billing@mg.example.com",
                                    "to": recipient, "subject": "Your invoice"}},
            "user-variables": {TRACKING_KEY: tracking} if tracking is not None else {}}
    if kind in ("delivered", "failed"):
        data["delivery-status"] = {"attempt-no": 1, "code": code or 250, "message": message,
                                   "description": description, "session-seconds": 0.4}
    if severity:
        data["severity"] = severity
    if reason:
        data["reason"] = reason
    return data


# --- Postmark --------------------------------------------------------------------------------
def postmark_auth(user="hooks", password="pm-webhook-secret") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def postmark_event(record_type, recipient, message_id, tracking=None, at=None, bounce_type="HardBounce",
                   details="") -> dict:
    moment = iso(at or time.time()).replace("Z", "0000Z")  # Postmark writes seven fraction digits
    metadata = {TRACKING_KEY: tracking} if tracking is not None else {}
    common = {"RecordType": record_type, "MessageStream": "outbound", "MessageID": message_id,
              "Metadata": metadata, "Tag": "", "ServerID": 23}
    if record_type == "Delivery":
        return {**common, "Recipient": recipient, "DeliveredAt": moment, "Details": "Test delivery webhook details"}
    if record_type in ("Bounce", "SpamComplaint"):
        kind = bounce_type if record_type == "Bounce" else "SpamComplaint"
        return {**common, "ID": int(time.time() * 1000) % 10**9, "Type": kind, "TypeCode": 1, "Name": kind,
                "Email": recipient, "From": "billing@shop.example.com", "BouncedAt": moment, "Details": details,
                "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
                "DumpAvailable": False, "Inactive": True, "CanActivate": True, "Subject": "Your invoice"}
    if record_type in ("Open", "Click"):
        return {**common, "Recipient": recipient, "ReceivedAt": moment, "FirstOpen": True, "Platform": "Desktop"}
    raise ValueError(record_type)


# --- Amazon SES through SNS ------------------------------------------------------------------
class CertificateServer(HTTPTestServer):
    """Serves PEM certificates at their paths (the SigningCertURL of test SNS messages)."""

    def __init__(self):
        super().__init__()
        self.files: dict = {}
        self.fetched: list = []  # paths served, in order

    def handle(self, method, path, headers, body):
        if method == "GET" and path in self.files:
            with self.lock:
                self.fetched.append(path)
            return Answer(200, self.files[path], {"Content-Type": "application/x-x509-ca-cert"})
        return Answer(404, b"not found")


class SNSSigner:
    def __init__(self, server: CertificateServer, topic="arn:aws:sns:us-east-1:123456789012:ses-events"):
        self.topic = topic
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(now + datetime.timedelta(days=30)).sign(self.key, hashes.SHA256()))
        path = f"/SimpleNotificationService-{uuid.uuid4().hex}.pem"
        server.files[path] = certificate.public_bytes(serialization.Encoding.PEM)
        self.cert_url = server.url + path

    def message(self, ses_event, version: int = 2, timestamp=None, message_id=None, cert_url=None) -> dict:
        """A signed Notification; `ses_event` is the SES event (a dict), or a str sent as it is."""
        message = {"Type": "Notification", "MessageId": message_id or str(uuid.uuid4()), "TopicArn": self.topic,
                   "Message": ses_event if isinstance(ses_event, str) else json.dumps(ses_event), "Timestamp": iso(time.time() if timestamp is None else timestamp),
                   "SignatureVersion": str(version), "SigningCertURL": cert_url or self.cert_url,
                   "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}
        fields = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        canonical = "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode()
        algorithm = hashes.SHA1() if version == 1 else hashes.SHA256()
        message["Signature"] = base64.b64encode(self.key.sign(canonical, padding.PKCS1v15(), algorithm)).decode()
        return message

    def body(self, ses_event, **options) -> bytes:
        return json.dumps(self.message(ses_event, **options)).encode()

    def confirmation(self, subscribe_url: str) -> bytes:
        """A signed SubscriptionConfirmation (what SNS sends when an HTTPS endpoint subscribes)."""
        message = {"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "Token": "2336412f37fb687f5d51e6e2425",
                   "TopicArn": self.topic, "Message": f"You have chosen to subscribe to the topic {self.topic}.",
                   "SubscribeURL": subscribe_url, "Timestamp": iso(time.time()), "SignatureVersion": "2",
                   "SigningCertURL": self.cert_url}
        fields = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        canonical = "".join(f"{k}\n{message[k]}\n" for k in fields).encode()
        message["Signature"] = base64.b64encode(self.key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())).decode()
        return json.dumps(message).encode()


def ses_event(kind, recipient, message_id, tracking=None, at=None, diagnostic=None, status="5.1.1") -> dict:
    """`kind`: Delivery, Bounce, DeliveryDelay, Complaint, Open, Click (SES event publishing)."""
    moment = iso(at or time.time())
    tags = {"ses:configuration-set": ["events"], "ses:source-ip": ["192.0.2.1"]}
    if tracking is not None:
        tags[TRACKING_KEY] = [tracking]
    event = {"eventType": kind, "mail": {"timestamp": moment, "source": "billing@shop.example.com",
                                         "messageId": message_id, "destination": [recipient],
                                         "headersTruncated": False, "tags": tags}}
    if kind == "Delivery":
        event["delivery"] = {"timestamp": moment, "processingTimeMillis": 1200, "recipients": [recipient],
                             "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-70.smtp-out.amazonses.com"}
    elif kind == "Bounce":
        event["bounce"] = {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": moment,
                           "feedbackId": str(uuid.uuid4()), "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
                           "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": status,
                                                  "diagnosticCode": diagnostic or "smtp; 550 5.1.1 user unknown"}]}
    elif kind == "DeliveryDelay":
        event["deliveryDelay"] = {"timestamp": moment, "delayType": "TransientCommunicationFailure",
                                  "expirationTime": iso(time.time() + 86400),
                                  "delayedRecipients": [{"emailAddress": recipient, "status": status,
                                                         "diagnosticCode": diagnostic or "smtp; 421 4.4.2 timeout"}]}
    elif kind == "Complaint":
        event["complaint"] = {"timestamp": moment, "feedbackId": str(uuid.uuid4()), "complaintFeedbackType": "abuse",
                              "complainedRecipients": [{"emailAddress": recipient}]}
    elif kind in ("Open", "Click"):
        event[kind.lower()] = {"timestamp": moment, "ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"}
    else:
        raise ValueError(kind)
    return event


class WebhookKeys:
    """Keys of the four providers (SNS: a certificate served on loopback), as env vars or Settings,
    and `request()`: one signed event of a kind in each provider's shape."""

    def __init__(self):
        self.sendgrid = SendGridSigner()
        self.mailgun = MailgunSigner()
        self.certs = CertificateServer().start()
        self.sns = SNSSigner(self.certs)

    def env(self) -> dict:
        return {
            "MAILSCOPE_WEBHOOK_SENDGRID_PUBLIC_KEY": self.sendgrid.public_key,
            "MAILSCOPE_WEBHOOK_MAILGUN_SIGNING_KEY": self.mailgun.key,
            "MAILSCOPE_WEBHOOK_POSTMARK_CREDENTIALS": "hooks:pm-webhook-secret",
            "MAILSCOPE_WEBHOOK_SES_TOPIC_ARNS": "arn:aws:sns:*:123456789012:ses-events",
            # real SNS certificates come from https://sns.<region>.amazonaws.com; only loopback here
            "MAILSCOPE_WEBHOOK_SES_CERT_ORIGINS": self.certs.url,
        }

    def config(self):
        from mailscope.config import load_settings

        return load_settings(self.env())

    def request(self, provider, kind, message_id, tracking_value=None, at=None, **options):
        """(body, headers) of one signed event: `kind` is delivered, bounced, deferred or complained."""
        diagnostic = options.pop("diagnostic", BOUNCE)
        if provider == "sendgrid":
            name = {"delivered": "delivered", "bounced": "bounce", "deferred": "deferred",
                    "complained": "spamreport"}[kind]
            fields = {"reason": diagnostic, "status": diagnostic.split()[1]} if kind == "bounced" else {}
            if kind == "deferred":
                fields = {"response": diagnostic, "attempt": "1"}
            event = sendgrid_event(name, RECIPIENT, message_id, tracking_value, at=at, **fields)
            return self.sendgrid.post_args([event], **options)
        if provider == "mailgun":
            code, _, rest = diagnostic.partition(" ")
            name = {"delivered": "delivered", "complained": "complained"}.get(kind, "failed")
            severity = {"bounced": "permanent", "deferred": "temporary"}.get(kind)
            data = mailgun_event(name, RECIPIENT, message_id, tracking_value, at=at, severity=severity,
                                    code=int(code) if kind in ("bounced", "deferred") else 250,
                                    message=rest if kind in ("bounced", "deferred") else "OK")
            return self.mailgun.body(data, **options), {}
        if provider == "postmark":
            record = {"delivered": "Delivery", "complained": "SpamComplaint"}.get(kind, "Bounce")
            bounce_type = "SoftBounce" if kind == "deferred" else "HardBounce"
            body = postmark_event(record, RECIPIENT, message_id, tracking_value, at=at, bounce_type=bounce_type,
                                     details=f"smtp;{diagnostic}")
            return json.dumps(body).encode(), options.get("auth", postmark_auth())
        name = {"delivered": "Delivery", "bounced": "Bounce", "deferred": "DeliveryDelay",
                "complained": "Complaint"}[kind]
        status = diagnostic.split()[1]
        event = ses_event(name, RECIPIENT, message_id, tracking_value, at=at, diagnostic=f"smtp; {diagnostic}",
                             status=status)
        return self.sns.body(event, **options), {"x-amz-sns-message-type": "Notification"}

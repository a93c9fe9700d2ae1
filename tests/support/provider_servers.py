"""Local stand-ins for HTTP email providers, and moto's SES server, for tests.

Nothing in the test-suite can reach the real providers, so each server below
implements the request and response shapes of the provider's public API
documentation (paths, authentication, status codes, JSON error bodies) on a
loopback port, and the real SDKs and HTTP clients talk to it unmodified:

- `SendGridServer`: `POST /v3/mail/send` (v3 Mail Send). Bearer API key; 202
  with an `X-Message-Id` header; 400/401/403/413/429 with `{"errors":
  [{"message", "field", "help"}]}`.
- `MailgunServer`: `POST /v3/<domain>/messages` (form fields, URL-encoded or
  multipart) and `/v3/<domain>/messages.mime`; HTTP basic auth `api:<key>`;
  200 `{"id": "<message-id>", "message": "Queued. Thank you."}`; 400/404
  `{"message": ...}`, 401 plain `Forbidden`, 429.
- `PostmarkServer`: `POST /email`, `/email/withTemplate`, `/email/batch`,
  `/email/batchWithTemplates`; `X-Postmark-Server-Token`; 200 `{"To",
  "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"}`, 401/422
  `{"ErrorCode", "Message"}` (300 invalid address, 400 sender signature, 406
  inactive recipient, 10 bad token), batches answered 200 per message.
- `BrevoServer`, `MailjetServer` (v3.1), `ResendServer`, `SparkPostServer`,
  `MandrillServer`: the send endpoints of those APIs with their documented
  authentication, success answers and error bodies (see each class).
- `MotoServer`: moto's standalone `moto_server` (a real HTTP server implementing
  SES and SES v2) in a subprocess on a free port.
- `SESProxy`: a pass-through HTTP proxy in front of moto that can inject the
  error answers real SES gives and moto cannot produce (throttling, paused
  sending, MAIL FROM not verified: the query-protocol XML error document of SES
  v1, the `x-amzn-ErrorType` + JSON body of SES v2) and answers SES v2
  `SendBulkEmail`, which moto does not implement, in the documented shape.

Every server records what it accepted (`accepted`: the parsed request and the
id it returned), so tests can check that the SDK really sent what the app asked
and that the span's id hash belongs to the id the provider returned.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.utils import getaddresses
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tests.support.launcher import free_port

HOST = "127.0.0.1"
# close enough to what the providers accept for tests: one @, a dotted domain, no blanks
VALID_ADDRESS = re.compile(r"^[^@\s<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document, **headers) -> "Answer":
        return cls(status, json.dumps(document).encode(), {"Content-Type": "application/json", **headers})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out as separate writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms) on every keep-alive request
    disable_nagle_algorithm = True

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.server.app.handle(self.command, self.path, self.headers, body)
        except Exception as exc:  # a bug in a test server must show up, not hang the client
            answer = Answer(500, f"test server error: {exc!r}".encode(), {"Content-Type": "text/plain"})
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_POST = do_GET = do_PUT = do_DELETE = _serve

    def log_message(self, *args):  # quiet
        pass


class HTTPTestServer:
    """A threaded HTTP server on a free loopback port, answering with `self.handle`."""

    def __init__(self):
        self.port = None
        self._server = None
        self._thread = None
        self.lock = threading.Lock()
        self.accepted: list = []  # (request document, returned id)
        self.keep_accepted = True  # benchmarks serving many requests turn it off
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self):
        self._server = ThreadingHTTPServer((HOST, 0), _Handler)
        self._server.daemon_threads = True
        self._server.app = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def handle(self, method, path, headers, body) -> Answer:
        raise NotImplementedError

    def _count(self) -> int:
        with self.lock:
            self.requests += 1
            return self.requests

    def _record(self, document, message_id) -> None:
        if self.keep_accepted:
            with self.lock:
                self.accepted.append((document, message_id))


# --- SendGrid --------------------------------------------------------------------
SENDGRID_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


def sendgrid_error(status: int, message: str, field_name=None, help_url=None, **headers) -> Answer:
    return Answer.json(status, {"errors": [{"message": message, "field": field_name, "help": help_url}]}, **headers)


class SendGridServer(HTTPTestServer):
    """v3 Mail Send. `verified_senders`: from addresses with a verified Sender Identity;
    `throttle_after`: requests served before every further one is answered 429."""

    def __init__(self, api_key="SG.test-key", verified_senders=(), throttle_after=None, max_bytes=30 * 1024 * 1024):
        super().__init__()
        self.api_key = api_key
        self.verified_senders = {s.lower() for s in verified_senders}
        self.throttle_after = throttle_after
        self.max_bytes = max_bytes

    def handle(self, method, path, headers, body):
        if method != "POST" or urlsplit(path).path != "/v3/mail/send":
            return sendgrid_error(404, "not found")
        count = self._count()
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
        if self.throttle_after is not None and count > self.throttle_after:
            return sendgrid_error(429, "too many requests", None, None, **{
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 60)})
        if len(body) > self.max_bytes:
            return sendgrid_error(413, "The JSON payload you have included in your request is too large.")
        try:
            document = json.loads(body)
        except ValueError:
            return sendgrid_error(400, "Bad Request")
        personalizations = document.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            return sendgrid_error(400, "The personalizations field is required and must have at least one personalization.",
                                  "personalizations", SENDGRID_HELP + "#-Personalizations-Errors")
        for i, item in enumerate(personalizations):
            for kind in ("to", "cc", "bcc"):
                for j, recipient in enumerate(item.get(kind) or ()):
                    if not VALID_ADDRESS.match(str(recipient.get("email", ""))):
                        return sendgrid_error(400, "Does not contain a valid address.", f"personalizations.{i}.{kind}.{j}.email",
                                              SENDGRID_HELP + "#message.personalizations.to")
        sender = (document.get("from") or {}).get("email", "")
        if sender.lower() not in self.verified_senders:
            return sendgrid_error(
                403,
                "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is "
                "resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the "
                "Sender Identity requirements", "from")
        message_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[:22]
        self._record(document, message_id)
        return Answer(202, b"", {"X-Message-Id": message_id})


# --- Mailgun ---------------------------------------------------------------------
def parse_form(body: bytes, content_type: str) -> list:
    """(name, value) pairs of a form body, parsed with the standard library's parsers."""
    if content_type.lower().startswith("multipart/"):
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields.append((name, part.get_payload(decode=True)))
        return fields
    return parse_qsl(body.decode(), keep_blank_values=True)


def mailgun_error(status: int, message: str) -> Answer:
    return Answer.json(status, {"message": message})


class MailgunServer(HTTPTestServer):
    """Messages API. `domains`: sending domains of the account; `throttle_after` as for SendGrid."""

    PATH = re.compile(r"^/v3/(?P<domain>[^/]+)/(?P<kind>messages|messages\.mime)$")

    def __init__(self, api_key="key-test", domains=("mg.example.com",), throttle_after=None):
        super().__init__()
        self.api_key = api_key
        self.domains = set(domains)
        self.throttle_after = throttle_after

    def handle(self, method, path, headers, body):
        match = self.PATH.match(urlsplit(path).path)
        if method != "POST" or match is None:
            return mailgun_error(404, "Not Found")
        count = self._count()
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if headers.get("Authorization") != expected:
            return Answer(401, b"Forbidden", {"Content-Type": "text/plain"})
        domain = match.group("domain")
        if domain not in self.domains:
            return mailgun_error(404, f"Domain not found: {domain}")
        if self.throttle_after is not None and count > self.throttle_after:
            return mailgun_error(429, "Too many requests")
        fields = parse_form(body, headers.get("Content-Type", ""))
        values: dict = {}
        for name, value in fields:
            text = isinstance(value, bytes) and name not in ("message", "attachment", "inline")
            values.setdefault(name, []).append(value.decode() if text else value)
        mime = match.group("kind") == "messages.mime"
        for required in ("to",) + (("message",) if mime else ("from", "subject")):
            if not values.get(required):
                return mailgun_error(400, f"{required} parameter is missing")
        recipients = [address for _, address in getaddresses(values["to"] + values.get("cc", []) + values.get("bcc", []))]
        if not all(VALID_ADDRESS.match(a) for a in recipients):
            return mailgun_error(400, "to parameter is not a valid address. please check documentation")
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@{domain}>"
        self._record(values, message_id)
        return Answer.json(200, {"id": message_id, "message": "Queued. Thank you."})


# --- Postmark --------------------------------------------------------------------
def postmark_error(status: int, code: int, message: str) -> Answer:
    return Answer.json(status, {"ErrorCode": code, "Message": message})


class PostmarkServer(HTTPTestServer):
    """Email API. `sender_signatures`: confirmed From addresses; `inactive`: recipients marked inactive."""

    def __init__(self, token="pm-server-token", sender_signatures=(), inactive=()):
        super().__init__()
        self.token = token
        self.sender_signatures = {s.lower() for s in sender_signatures}
        self.inactive = {s.lower() for s in inactive}

    def _check(self, message) -> tuple[int, str] | None:
        """(ErrorCode, Message) when Postmark would reject this message."""
        sender = getaddresses([str(message.get("From") or "")])
        sender = sender[0][1].lower() if sender else ""
        if sender not in self.sender_signatures:
            return 400, (f"The 'From' address you supplied ({message.get('From')}) is not a Sender Signature on your "
                         "account. Please add and confirm this address in order to be able to use it in the 'From' "
                         "field of your messages.")
        recipients = []
        for name in ("To", "Cc", "Bcc"):
            if message.get(name):
                for _, address in getaddresses([str(message[name])]):
                    if not VALID_ADDRESS.match(address):
                        return 300, f"Invalid '{name}' address: '{address}'."
                    recipients.append(address)
        if not recipients:
            return 300, "Zero recipients specified"
        inactive = [a for a in recipients if a.lower() in self.inactive]
        if inactive:
            return 406, ("You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                         f"addresses: {', '.join(inactive)}. Inactive recipients are ones that have generated a hard "
                         "bounce, a spam complaint, or a manual suppression.")
        return None

    def _accept(self, message) -> dict:
        message_id = str(uuid.uuid4())
        self._record(message, message_id)
        return {"To": message.get("To"), "SubmittedAt": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                "MessageID": message_id, "ErrorCode": 0, "Message": "OK"}

    def handle(self, method, path, headers, body):
        route = urlsplit(path).path
        if method != "POST" or route not in ("/email", "/email/withTemplate", "/email/batch", "/email/batchWithTemplates"):
            return postmark_error(404, 404, "Not found")
        self._count()
        token = headers.get("X-Postmark-Server-Token")
        if not token:
            return postmark_error(401, 10, "No Account or Server API tokens were supplied in the HTTP headers. Please "
                                           "add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.")
        if token != self.token:
            return postmark_error(401, 10, "Request does not contain a valid Server token.")
        if "application/json" not in (headers.get("Content-Type") or ""):
            return postmark_error(415, 415, "Unsupported Media Type")
        try:
            document = json.loads(body)
        except ValueError:
            return postmark_error(422, 402, "Received invalid JSON input.")
        if route in ("/email", "/email/withTemplate"):
            problem = self._check(document)
            if problem is not None:
                return postmark_error(422, *problem)
            return Answer.json(200, self._accept(document))
        messages = document.get("Messages") if route == "/email/batchWithTemplates" else document
        answers = []
        for message in messages:
            problem = self._check(message)
            answers.append(self._accept(message) if problem is None else {"ErrorCode": problem[0], "Message": problem[1]})
        return Answer.json(200, answers)


# --- the JSON send APIs: Brevo, Mailjet, Resend, SparkPost, Mandrill ---------------------
def _json_body(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _emails(value, key="email") -> list:
    """Addresses of a recipient field: a string, {key: ...}, or a list of them."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        item = item.get(key) if isinstance(item, dict) else item
        found.extend(a for _, a in getaddresses([str(item)]))
    return found


class BrevoServer(HTTPTestServer):
    """`POST /v3/smtp/email`, `api-key` header; 201 `{"messageId"}` (`{"messageIds"}` for
    messageVersions); 4xx `{"code", "message"}`."""

    def __init__(self, api_key="xkeysib-test"):
        super().__init__()
        self.api_key = api_key

    def handle(self, method, path, headers, body):
        if method != "POST" or urlsplit(path).path != "/v3/smtp/email":
            return Answer.json(404, {"code": "not_found", "message": "Invalid route"})
        self._count()
        if headers.get("api-key") != self.api_key:
            return Answer.json(401, {"code": "unauthorized", "message": "Key not found"})
        message = _json_body(body)
        if not isinstance(message, dict):
            return Answer.json(400, {"code": "bad_request", "message": "Input must be a valid JSON object"})
        if not message.get("sender") and not message.get("templateId"):
            return Answer.json(400, {"code": "missing_parameter", "message": "sender is missing"})
        versions = message.get("messageVersions") or [message]
        ids = []
        for version in versions:
            if not version.get("to"):
                return Answer.json(400, {"code": "missing_parameter", "message": "to is missing"})
            for field_name in ("to", "cc", "bcc"):
                for address in _emails(version.get(field_name)):
                    if not VALID_ADDRESS.match(address):
                        return Answer.json(400, {"code": "invalid_parameter", "message": f"email is not valid in {field_name}"})
            ids.append(f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@smtp-relay.mailin.fr>")
        for version, message_id in zip(versions, ids):
            self._record(version, message_id)
        if message.get("messageVersions"):
            return Answer.json(201, {"messageIds": ids})
        return Answer.json(201, {"messageId": ids[0]})


MAILJET_AUTH_FAILURE = ("API key authentication/authorization failure. You may be unauthorized to access the API or "
                        "your API key may be expired. Visit API keys management section to check your keys.")


class MailjetServer(HTTPTestServer):
    """Send API v3.1: `POST /v3.1/send`, basic auth; per-message results, 400 when any message failed."""

    def __init__(self, api_key="mj-key", secret="mj-secret", sender_domains=("shop.example.com",)):
        super().__init__()
        self.auth = "Basic " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()
        self.sender_domains = set(sender_domains)

    @staticmethod
    def _error(code, status, text, related):
        return {"ErrorIdentifier": str(uuid.uuid4()), "ErrorCode": code, "StatusCode": status,
                "ErrorMessage": text, "ErrorRelatedTo": related}

    def _check(self, message, shared) -> list:
        errors = []
        sender = (message.get("From") or shared.get("From") or {}).get("Email", "")
        if sender.rpartition("@")[2] not in self.sender_domains:
            errors.append(self._error("mj-0018", 403, f"The sender \"{sender}\" is not authorized", ["From"]))
        for field_name in ("To", "Cc", "Bcc"):
            for i, item in enumerate(message.get(field_name) or shared.get(field_name) or ()):
                address = item.get("Email", "") if isinstance(item, dict) else ""
                if not VALID_ADDRESS.match(address):
                    errors.append(self._error("mj-0013", 400, f"\"{address}\" is an invalid email address.",
                                              [f"{field_name}[{i}].Email"]))
        return errors

    def handle(self, method, path, headers, body):
        if method != "POST" or urlsplit(path).path != "/v3.1/send":
            return Answer.json(404, {"ErrorIdentifier": str(uuid.uuid4()), "StatusCode": 404, "ErrorMessage": "Not found"})
        self._count()
        if headers.get("Authorization") != self.auth:
            return Answer.json(401, {"ErrorIdentifier": str(uuid.uuid4()), "StatusCode": 401,
                                     "ErrorMessage": MAILJET_AUTH_FAILURE})
        payload = _json_body(body)
        messages = payload.get("Messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list) or not messages:
            return Answer.json(400, {"ErrorIdentifier": str(uuid.uuid4()), "StatusCode": 400,
                                     "ErrorMessage": "Missing mandatory property: Messages"})
        shared = payload.get("Globals") or {}
        results, failed = [], False
        for message in messages:
            errors = self._check(message, shared)
            if errors:
                failed = True
                results.append({"Status": "error", "Errors": errors})
                continue
            to = []
            for item in message.get("To") or shared.get("To") or ():
                message_id = uuid.uuid4().int % 10**17
                self._record(message, message_id)
                to.append({"Email": item["Email"], "MessageUUID": str(uuid.uuid4()), "MessageID": message_id,
                           "MessageHref": f"https://api.mailjet.com/v3/REST/message/{message_id}"})
            results.append({"Status": "success", "CustomID": "", "To": to, "Cc": [], "Bcc": []})
        return Answer.json(400 if failed else 200, {"Messages": results})


class ResendServer(HTTPTestServer):
    """`POST /emails` and `/emails/batch`, Bearer key; 200 `{"id"}` / `{"data": [{"id"}]}`;
    errors `{"statusCode", "message", "name"}`."""

    def __init__(self, api_key="re_test", domains=("shop.example.com",)):
        super().__init__()
        self.api_key = api_key
        self.domains = set(domains)

    @staticmethod
    def _error(status, name, message):
        return Answer.json(status, {"statusCode": status, "message": message, "name": name})

    def _check(self, message):
        sender = _emails(message.get("from"))
        if not sender or not message.get("subject"):
            return self._error(422, "missing_required_field", "Missing `from` or `subject` field.")
        domain = sender[0].rpartition("@")[2]
        if domain not in self.domains:
            return self._error(403, "validation_error",
                               f"The {domain} domain is not verified. Please, add and verify your domain on "
                               "https://resend.com/domains")
        recipients = [a for name in ("to", "cc", "bcc") for a in _emails(message.get(name))]
        if not recipients or not all(VALID_ADDRESS.match(a) for a in recipients):
            return self._error(422, "validation_error",
                               "Invalid `to` field. The email address needs to follow the `email@example.com` or "
                               "`Name <email@example.com>` format.")
        return None

    def handle(self, method, path, headers, body):
        route = urlsplit(path).path
        if method != "POST" or route not in ("/emails", "/emails/batch"):
            return self._error(404, "not_found", "The requested endpoint does not exist.")
        self._count()
        auth = headers.get("Authorization")
        if not auth:
            return self._error(401, "missing_api_key", "Missing API key in the authorization header.")
        if auth != f"Bearer {self.api_key}":
            return self._error(403, "invalid_api_key", "API key is invalid")
        payload = _json_body(body)
        messages = payload if route == "/emails/batch" else [payload]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return self._error(422, "validation_error", "Invalid JSON body.")
        for message in messages:
            problem = self._check(message)
            if problem is not None:
                return problem
        ids = [str(uuid.uuid4()) for _ in messages]
        for message, message_id in zip(messages, ids):
            self._record(message, message_id)
        if route == "/emails/batch":
            return Answer.json(200, {"data": [{"id": i} for i in ids]})
        return Answer.json(200, {"id": ids[0]})


class SparkPostServer(HTTPTestServer):
    """`POST /api/v1/transmissions`, API key in Authorization; 200 `{"results": {...}}`;
    errors `{"errors": [{"message", "description", "code"}]}`. `suppressed`: recipients on
    the account's suppression list (rejected; all of them rejected is error 1902)."""

    def __init__(self, api_key="sp-key", suppressed=()):
        super().__init__()
        self.api_key = api_key
        self.suppressed = {s.lower() for s in suppressed}

    @staticmethod
    def _error(status, message, description=None, code=None):
        error = {"message": message}
        if description:
            error["description"] = description
        if code:
            error["code"] = code
        return Answer.json(status, {"errors": [error]})

    def handle(self, method, path, headers, body):
        if method != "POST" or urlsplit(path).path != "/api/v1/transmissions":
            return self._error(404, "resource not found")
        self._count()
        if headers.get("Authorization") != self.api_key:
            return self._error(401, "Unauthorized.")
        payload = _json_body(body)
        recipients = payload.get("recipients") if isinstance(payload, dict) else None
        if not isinstance(recipients, list) or not recipients:
            return self._error(422, "required field is missing", "recipients is a required field", "1400")
        addresses = []
        for item in recipients:
            address = item.get("address") if isinstance(item, dict) else None
            found = _emails(address)
            if len(found) != 1 or not VALID_ADDRESS.match(found[0]):
                return self._error(422, "invalid data format/type", "Error while validating recipients", "1300")
            addresses.extend(found)
        rejected = sum(1 for a in addresses if a.lower() in self.suppressed)
        if rejected == len(addresses):
            return self._error(400, "Message generation rejected",
                               "recipient address suppressed due to customer policy", "1902")
        transmission_id = str(uuid.uuid4().int % 10**17)
        self._record(payload, transmission_id)
        return Answer.json(200, {"results": {"total_rejected_recipients": rejected,
                                             "total_accepted_recipients": len(addresses) - rejected,
                                             "id": transmission_id}})


class MandrillServer(HTTPTestServer):
    """`POST /api/1.0/messages/send.json`, `send-template.json`, `send-raw.json`; the key is in
    the body; one result per recipient; errors are HTTP 500 `{"status": "error", "code", "name",
    "message"}`. `rejected`: recipients on the rejection blacklist (hard bounces)."""

    ROUTES = ("/api/1.0/messages/send.json", "/api/1.0/messages/send-template.json", "/api/1.0/messages/send-raw.json")

    def __init__(self, api_key="md-key", rejected=()):
        super().__init__()
        self.api_key = api_key
        self.rejected = {s.lower() for s in rejected}

    @staticmethod
    def _error(code, name, message):
        return Answer.json(500, {"status": "error", "code": code, "name": name, "message": message})

    def handle(self, method, path, headers, body):
        route = urlsplit(path).path
        if method != "POST" or route not in self.ROUTES:
            return self._error(-1, "Unknown_Method", "Unknown method")
        self._count()
        payload = _json_body(body)
        if not isinstance(payload, dict) or payload.get("key") != self.api_key:
            return self._error(-1, "Invalid_Key", "Invalid API key")
        if route.endswith("send-raw.json"):
            if not isinstance(payload.get("raw_message"), str):
                return self._error(-2, "ValidationError", "Validation error: {\"raw_message\":\"Sorry, this field can't be left blank.\"}")
            addresses = [str(a) for a in payload.get("to") or ()]
        else:
            message = payload.get("message")
            if not isinstance(message, dict) or not message.get("to"):
                return self._error(-2, "ValidationError", "Validation error: {\"message\":{\"to\":\"Sorry, this field can't be left blank.\"}}")
            addresses = _emails(message.get("to"))
        results = []
        for address in addresses:
            message_id = uuid.uuid4().hex
            if not VALID_ADDRESS.match(address):
                results.append({"email": address, "status": "invalid", "reject_reason": None, "_id": message_id})
            elif address.lower() in self.rejected:
                results.append({"email": address, "status": "rejected", "reject_reason": "hard-bounce", "_id": message_id})
            else:
                self._record(payload, message_id)
                results.append({"email": address, "status": "sent", "reject_reason": None, "_id": message_id})
        return Answer.json(200, results)


# --- SES: moto, and a proxy in front of it -----------------------------------------------
class MotoServer:
    """moto's standalone server (`moto_server`) on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0):
        executable = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen([str(executable), "-H", HOST, "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.05)

    def reset(self):
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


SES_V1_XMLNS = "http://ses.amazonaws.com/doc/2010-12-01/"
SES_V2_PATHS = {"/v2/email/outbound-emails": "SendEmail", "/v2/email/outbound-bulk-emails": "SendBulkEmail"}


@dataclass
class Fault:
    version: str  # "ses" or "sesv2"
    operation: str  # "SendEmail", "SendRawEmail", ...
    code: str
    message: str
    status: int = 400
    times: int | None = None  # None: every matching request


class SESProxy(HTTPTestServer):
    """Forwards to moto unless a Fault matches; answers SES v2 SendBulkEmail itself.

    `suppressed`: addresses whose SendBulkEmail entries get MESSAGE_REJECTED, as the
    account-level suppression list makes SES do."""

    def __init__(self, upstream: str, suppressed=()):
        super().__init__()
        self.upstream = urlsplit(upstream)
        self.faults: list = []
        self.suppressed = {s.lower() for s in suppressed}
        self.seen: list = []  # (version, operation) of every request

    def fail(self, version, operation, code, message, status=400, times=None) -> None:
        with self.lock:
            self.faults.append(Fault(version, operation, code, message, status, times))

    @staticmethod
    def operation_of(method, path, body) -> tuple[str | None, str | None]:
        route = urlsplit(path).path
        if route in SES_V2_PATHS:
            return "sesv2", SES_V2_PATHS[route]
        if method == "POST" and route == "/":
            action = dict(parse_qsl(body.decode("utf-8", "replace"))).get("Action")
            return "ses", action
        return None, None

    def _fault_for(self, version, operation) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.version == version and fault.operation == operation:
                    if fault.times is not None:
                        if fault.times <= 0:
                            continue
                        fault.times -= 1
                    return fault
        return None

    @staticmethod
    def error_answer(fault: Fault) -> Answer:
        request_id = str(uuid.uuid4())
        if fault.version == "ses":  # query protocol: XML error document
            body = (f'<ErrorResponse xmlns="{SES_V1_XMLNS}"><Error><Type>Sender</Type><Code>{fault.code}</Code>'
                    f"<Message>{fault.message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
            return Answer(fault.status, body.encode(), {"Content-Type": "text/xml", "x-amzn-RequestId": request_id})
        return Answer.json(fault.status, {"message": fault.message},
                           **{"x-amzn-ErrorType": fault.code, "x-amzn-RequestId": request_id})

    def _bulk_v2(self, body) -> Answer:
        document = json.loads(body)
        results = []
        for entry in document.get("BulkEmailEntries", []):
            destination = entry.get("Destination", {})
            addresses = [a.lower() for k in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(k, [])]
            if any(a in self.suppressed for a in addresses):
                results.append({"Status": "MESSAGE_REJECTED", "Error": "Email address is on the account suppression list."})
            else:
                message_id = f"0100{uuid.uuid4().hex}-000000"
                self._record(entry, message_id)
                results.append({"Status": "SUCCESS", "MessageId": message_id})
        return Answer.json(200, {"BulkEmailEntryResults": results}, **{"x-amzn-RequestId": str(uuid.uuid4())})

    def handle(self, method, path, headers, body):
        version, operation = self.operation_of(method, path, body)
        with self.lock:
            self.seen.append((version, operation))
        fault = self._fault_for(version, operation) if operation else None
        if fault is not None:
            return self.error_answer(fault)
        if (version, operation) == ("sesv2", "SendBulkEmail"):
            return self._bulk_v2(body)
        connection = HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length")}
            connection.request(method, path, body=body, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            keep = {k: v for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date")}
            return Answer(response.status, data, keep)
        finally:
            connection.close()


def _serve_until_stdin_closes(kind: str) -> None:
    """`python -m tests.support.provider_servers sendgrid|mailgun|postmark`: serve in this process,
    print `ready <port>`, stop when stdin closes (benchmarks keep the server off the client's GIL)."""
    servers = {
        "sendgrid": lambda: SendGridServer(verified_senders=["bench@sender.example.com"]),
        "mailgun": lambda: MailgunServer(),
        "postmark": lambda: PostmarkServer(sender_signatures=["bench@sender.example.com"]),
    }
    server = servers[kind]()
    server.keep_accepted = False
    server.start()
    print(f"ready {server.port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    _serve_until_stdin_closes(sys.argv[1])

"""The sending side of delivery tests: an app that never imports mailscope, and servers that keep
the bytes it sent.

`SEND_APP` sends one message through each provider's usual client (the sendgrid SDK, requests
for Mailgun, httpx for Postmark, boto3 for SES against moto_server behind the SES proxy) and
prints `IDS {provider: message id}`, the ids the providers answered. `recording(cls)` makes a
provider test server that also keeps `(path, body bytes)` of every request (`bodies`), so
tests can compare what left the app byte for byte and read the tracking value a send carried.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from tests.support import provider_servers as ps
from tests.support.delivery_events import RECIPIENT

SENDER = "billing@shop.example.com"

SEND_APP = r'''
import json, sys

cfg = json.load(open(sys.argv[1]))
urls, sender, to = cfg["urls"], cfg["sender"], cfg["recipient"]
ids = {}

import sendgrid
from sendgrid.helpers.mail import Mail
sg = sendgrid.SendGridAPIClient(api_key="SG.test-key", host=urls["sendgrid"])
mail = Mail(from_email=sender, to_emails=to, subject="Your invoice", plain_text_content="Attached.")
ids["sendgrid"] = sg.send(mail).headers["X-Message-Id"]

import requests
answer = requests.post(f"{urls['mailgun']}/v3/mg.example.com/messages", auth=("api", "key-test"),
                       data={"from": sender, "to": to, "subject": "Your invoice", "text": "Attached.",
                             "v:order": "A-1001"})
ids["mailgun"] = answer.json()["id"]

import httpx
with httpx.Client(headers={"X-Postmark-Server-Token": "pm-server-token"}) as client:
    answer = client.post(f"{urls['postmark']}/email", json={"From": sender, "To": to, "Subject": "Your invoice",
                                                           "TextBody": "Attached.", "Metadata": {"order": "A-1001"}})
ids["postmark"] = answer.json()["MessageID"]

import boto3, botocore.config
ses = boto3.client("ses", region_name="us-east-1", endpoint_url=urls["ses"], aws_access_key_id="testing",
                   aws_secret_access_key="testing",
                   config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))
ses.verify_email_identity(EmailAddress=sender)
ids["ses"] = ses.send_email(Source=sender, Destination={"ToAddresses": [to]},
                            Message={"Subject": {"Data": "Your invoice"}, "Body": {"Text": {"Data": "Attached."}}},
                            Tags=[{"Name": "campaign", "Value": "invoices"}])["MessageId"]
print("IDS " + json.dumps(ids))
'''


def recording(cls):
    """A subclass of test server `cls` that keeps (path, body) of every request in `bodies`."""

    class Recording(cls):
        def handle(self, method, path, headers, body):
            with self.lock:
                self.__dict__.setdefault("bodies", []).append((path, bytes(body)))
            return super().handle(method, path, headers, body)

    Recording.__name__ = f"Recording{cls.__name__}"
    return Recording


def send_bodies(server) -> list:
    """Bodies of the sends a recording server received (SES: only SendEmail calls)."""
    out = []
    for path, body in getattr(server, "bodies", []):
        if isinstance(server, ps.SESProxy) and b"Action=SendEmail" not in body:
            continue
        out.append(body)
    return out


def tracking_value(provider: str, body: bytes) -> str | None:
    """The `mailscope` value a send request carried, read the way the provider reads it."""
    if provider == "sendgrid":
        return (json.loads(body).get("custom_args") or {}).get("mailscope")
    if provider == "postmark":
        return (json.loads(body).get("Metadata") or {}).get("mailscope")
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    if provider == "mailgun":
        return fields.get("v:mailscope")
    names = {k: v for k, v in fields.items() if k.startswith("Tags.member.")}
    for key, value in names.items():
        if key.endswith(".Name") and value == "mailscope":
            return names.get(key[: -len(".Name")] + ".Value")
    return None

"""The sink's delivery events: what a provider like Mailgun reports after it accepted a message.

For each recipient of an accepted message the sink decides, from the address (as it decides
which mailboxes are unknown or full), what the "receiving server" did later: delivered, or a
late bounce (550 5.1.1); a share of delivered recipients also complain (spam button). Each
outcome is posted as a Mailgun event webhook, `{"signature": {timestamp, token, signature},
"event-data": {...}}`, signed with HMAC-SHA256 over timestamp + token with the webhook key,
echoing the message's `X-Mailgun-Variables` as `user-variables` as Mailgun does. A background
thread posts them; `flush()` waits until every queued event was posted.

Part of the demo service: it knows nothing of mailscope, only of the provider's documented
webhook shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
import urllib.request
from email.parser import BytesHeaderParser
from email.policy import compat32

LATE_BOUNCE = "The email account that you tried to reach does not exist. Please try double-checking the " \
              "recipient's email address for typos or unnecessary spaces."
MAX_PENDING = 10_000


def _message_details(content: bytes) -> tuple[dict, str | None]:
    """(user variables, Message-ID without brackets) of a message as the sink received it."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(content[:65536])
    variables = {}
    raw = headers.get("X-Mailgun-Variables")
    if raw:
        try:
            found = json.loads(str(raw))
            variables = found if isinstance(found, dict) else {}
        except ValueError:
            pass
    message_id = headers.get("Message-ID")
    return variables, str(message_id).strip().strip("<>") if message_id else None


class EventPoster:
    def __init__(self, url: str, key: str, late_bounce_share: float, complaint_share: float, fraction):
        self.url, self.key = url, key
        self.late_bounce_share, self.complaint_share = late_bounce_share, complaint_share
        self.fraction = fraction  # address -> stable number in [0, 1)
        self.pending: queue.Queue = queue.Queue(MAX_PENDING)
        self.posted: dict = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="sink-events", daemon=True)
        self.thread.start()

    def accepted(self, mail_from: str, recipients: list, content: bytes) -> None:
        """A message was accepted for `recipients`: queue what happens to it next."""
        variables, message_id = _message_details(content)
        for recipient in recipients:
            f = self.fraction("late:" + recipient)
            if f < self.late_bounce_share:
                self._queue("failed", recipient, message_id, variables, severity="permanent",
                            status={"code": 550, "message": f"5.1.1 {LATE_BOUNCE}", "description": ""})
                continue
            self._queue("delivered", recipient, message_id, variables,
                        status={"code": 250, "message": "OK", "description": ""})
            if f < self.late_bounce_share + self.complaint_share:
                self._queue("complained", recipient, message_id, variables)

    def _queue(self, kind, recipient, message_id, variables, severity=None, status=None) -> None:
        data = {"id": secrets.token_urlsafe(16), "timestamp": time.time(), "event": kind, "recipient": recipient,
                "recipient-domain": recipient.rpartition("@")[2], "user-variables": variables,
                "message": {"headers": {"message-id": message_id}}}
        if severity:
            data["severity"] = severity
        if status:
            data["delivery-status"] = status
        try:
            self.pending.put_nowait(data)
        except queue.Full:
            self._count("dropped")

    def _count(self, key: str) -> None:
        with self.lock:
            self.posted[key] = self.posted.get(key, 0) + 1

    def _sign(self) -> dict:
        stamp, token = str(int(time.time())), secrets.token_hex(25)
        digest = hmac.new(self.key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        return {"timestamp": stamp, "token": token, "signature": digest}

    def _run(self) -> None:
        while True:
            data = self.pending.get()
            try:
                body = json.dumps({"signature": self._sign(), "event-data": data}).encode()
                request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                self._count(data["event"])
            except OSError:
                self._count("post_failed")
            finally:
                self.pending.task_done()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event was posted (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

"""The send worker: BRPOP a message, build the email, send it over SMTP.

    python -m examples.newsletter.worker

Transient failures (4xx) go back on the queue until NEWSLETTER_MAX_ATTEMPTS;
then the message moves to the dead-letter list `{queue}:dlq`. Permanent
failures (5xx) are bounces. When the server throttles (4.7.x), the worker backs
off before it sends again. One line per message goes to stdout as
`event: {json}`; no addresses are printed.
"""

from __future__ import annotations

import json
import signal
import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import redis

from examples.newsletter import settings as settings_mod

BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 4.0


def emit(event: str, **fields) -> None:
    print("event: " + json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


def build_message(job: dict, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Shop newsletter <{sender}>"
    msg["To"] = job["to"]
    msg["Subject"] = job["subject"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=job["message_id"][:12], domain=sender.rpartition("@")[2])
    msg["List-Unsubscribe"] = "<https://shop.example/unsubscribe>"
    msg["X-Campaign-ID"] = str(job["campaign_id"])
    msg.set_content(job["text"])
    msg.add_alternative(job["html"], subtype="html")
    return msg


class Worker:
    def __init__(self, settings: settings_mod.Settings):
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.smtp: smtplib.SMTP | None = None
        self.stopping = False
        self.backoff = 0.0
        # "Sent" copies kept for de-duplication and never evicted: the leak NEWSLETTER_LEAK_KB turns on.
        self.sent_copies: dict[str, bytes] = {}

    def connection(self) -> smtplib.SMTP:
        if self.smtp is None:
            smtp = smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=30)
            smtp.ehlo("worker.shop.example")
            self.smtp = smtp
        return self.smtp

    def drop_connection(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def send(self, job: dict) -> tuple[str, int | None, str]:
        """Returns (outcome, smtp code, enhanced status or '')."""
        msg = build_message(job, self.settings.sender)
        try:
            self.connection().send_message(msg, from_addr=self.settings.sender, to_addrs=[job["to"]])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return self.failed(job, code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code == 421:
                self.drop_connection()
            return self.failed(job, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            self.drop_connection()
            return self.failed(job, None, str(exc).encode())
        self.backoff = 0.0
        if self.settings.leak_kb:
            self.sent_copies[job["message_id"]] = msg.as_bytes() + b"x" * (self.settings.leak_kb * 1024)
        return "delivered", 250, ""

    def failed(self, job: dict, code: int | None, text) -> tuple[str, int | None, str]:
        reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        enhanced = reply.split(" ", 1)[0] if reply[:1].isdigit() and reply.count(".") >= 2 else ""
        transient = code is None or 400 <= code < 500
        if enhanced.startswith("4.7"):  # throttled: slow down before the next message
            self.backoff = min(BACKOFF_MAX_S, max(BACKOFF_START_S, self.backoff * 2))
        if not transient:
            return "bounced", code, enhanced
        if job.get("attempt", 1) < self.settings.max_attempts:
            job = {**job, "attempt": job.get("attempt", 1) + 1}
            self.redis.lpush(self.settings.queue, json.dumps(job))
            return "retry", code, enhanced
        self.redis.lpush(self.settings.dead_letter_queue, json.dumps(job))
        return "gave_up", code, enhanced

    def handle(self, raw: bytes) -> None:
        job = json.loads(raw)
        outcome, code, enhanced = self.send(job)
        emit("message", outcome=outcome, code=code, status=enhanced, attempt=job.get("attempt", 1))
        if self.backoff:
            time.sleep(self.backoff)

    def run(self) -> None:
        emit("ready", queue=self.settings.queue)
        while not self.stopping:
            item = self.redis.brpop([self.settings.queue], timeout=1)
            if item is None:
                continue
            self.handle(item[1])
        self.drop_connection()


def main(argv=None) -> int:
    worker = Worker(settings_mod.load())

    def stop(signum, frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

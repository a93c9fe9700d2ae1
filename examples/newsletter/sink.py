"""The demo's SMTP server: a real aiosmtpd server that answers like a busy mail relay.

    python -m examples.newsletter.sink --host 127.0.0.1 --port 1025 [--relay mailpit:1025]

It accepts mail and, as the NEWSLETTER_* knobs ask (see settings.py), refuses
unknown recipients (550 5.1.1), full mailboxes (452 4.2.2 at RCPT, 552 5.2.2
after DATA), throttles (451 4.7.1, then 421 4.7.0 and a dropped connection for
a client that keeps pushing), and takes its time over a share of messages. Which
recipients are unknown or full is a deterministic function of the address, so
every campaign meets the same ones. Accepted messages can be relayed to another
SMTP server (Mailpit in the docker stack, for its web UI). With NEWSLETTER_WEBHOOK_URL set it
also plays the provider's event webhooks (examples/newsletter/events.py): delivered, late
bounces and complaints, posted signed as Mailgun signs them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import smtplib
import sys
import threading
import time
from collections import Counter, deque

from aiosmtpd.controller import Controller

from examples.newsletter import settings as settings_mod

THROTTLE_WINDOW_S = 1.0
REJECTS_BEFORE_DISCONNECT = 2


def address_fraction(address: str) -> float:
    """A stable number in [0, 1) for an address: decides which mailboxes are unknown or full."""
    digest = hashlib.sha256(address.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class RelayHandler:
    """aiosmtpd handler: the knobs' replies, counters for progress, optional relay."""

    def __init__(self, settings: settings_mod.Settings, relay: tuple[str, int] | None = None):
        self.settings = settings
        self.relay = relay
        self.stats: Counter = Counter()
        self.lock = threading.Lock()
        self._accepted_mail: deque = deque()  # times of accepted MAIL commands in the window
        self._rejects: deque = deque()  # times of throttled ones
        self._slow_credit = 0.0
        self.events = None  # the provider's delivery events, when a webhook receiver is configured
        if settings.webhook_url and settings.webhook_key:
            from examples.newsletter.events import EventPoster

            self.events = EventPoster(settings.webhook_url, settings.webhook_key, settings.late_bounce_share,
                                      settings.complaint_share, address_fraction)

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] += 1

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.stats)

    # -- the three hooks -------------------------------------------------------
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        limit = self.settings.throttle_per_second
        if limit:
            now = time.monotonic()
            window, rejects = self._accepted_mail, self._rejects
            for times in (window, rejects):
                while times and now - times[0] > THROTTLE_WINDOW_S:
                    times.popleft()
            if len(window) >= limit:
                rejects.append(now)
                if len(rejects) > REJECTS_BEFORE_DISCONNECT:
                    self.count("421 4.7.0")
                    asyncio.get_running_loop().call_soon(session_close, server)
                    return "421 4.7.0 Too many messages in too short a time, closing connection"
                self.count("451 4.7.1")
                return "451 4.7.1 Rate limited: too many messages, try again later"
            window.append(now)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        s = self.settings
        f = address_fraction(address)
        if f < s.invalid_share:
            self.count("550 5.1.1")
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        if f < s.invalid_share + s.full_share / 2:
            self.count("452 4.2.2")
            return f"452 4.2.2 <{address}>: Recipient address rejected: Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.settings
        low, high = s.invalid_share + s.full_share / 2, s.invalid_share + s.full_share
        if any(low <= address_fraction(rcpt) < high for rcpt in envelope.rcpt_tos):
            self.count("552 5.2.2")
            return "552 5.2.2 Requested mail action aborted: exceeded storage allocation"
        if s.slow_share and s.slow_ms:
            self._slow_credit += s.slow_share
            if self._slow_credit >= 1.0:
                self._slow_credit -= 1.0
                self.count("slow")
                await asyncio.sleep(s.slow_ms / 1000.0)
        if self.relay:
            await asyncio.get_running_loop().run_in_executor(None, self._relay, envelope)
        self.count("delivered")
        if self.events is not None:
            self.events.accepted(envelope.mail_from, list(envelope.rcpt_tos),
                                 envelope.original_content or envelope.content)
        return "250 2.0.0 Ok: queued"

    def _relay(self, envelope) -> None:
        try:
            with smtplib.SMTP(*self.relay, timeout=10) as relay:
                relay.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content)
        except (OSError, smtplib.SMTPException) as exc:
            self.count("relay_failed")
            print(f"sink: relay failed: {type(exc).__name__}", file=sys.stderr)


def session_close(server) -> None:
    transport = getattr(server, "transport", None)
    if transport is not None:
        transport.close()


def start(settings: settings_mod.Settings, host: str = "127.0.0.1", port: int = 1025, relay=None):
    """Start the sink in a background thread; returns (controller, handler). Call controller.stop()."""
    handler = RelayHandler(settings, relay)
    controller = Controller(handler, hostname=host, port=port, server_hostname="mx.sink.example", ready_timeout=10)
    controller.start()
    return controller, handler


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--relay", help="host:port of an SMTP server that gets the accepted mail")
    args = parser.parse_args(argv)
    relay = None
    if args.relay:
        host, _, port = args.relay.rpartition(":")
        relay = (host, int(port))
    controller, handler = start(settings_mod.load(), args.host, args.port, relay)
    print(f"sink: listening on {args.host}:{args.port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(60):
        print(f"sink: {handler.snapshot()}", flush=True)
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

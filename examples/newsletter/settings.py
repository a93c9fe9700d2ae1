"""The newsletter service's configuration, from its own environment variables.

Connection settings:
    DATABASE_URL           SQLAlchemy URL; default SQLite file newsletter.db in NEWSLETTER_DATA_DIR
    NEWSLETTER_DATA_DIR    where the SQLite file lives (default: the working directory)
    REDIS_URL              default redis://127.0.0.1:6379/0
    NEWSLETTER_QUEUE       Redis list the producer pushes to (default newsletter:email-queue)
    SMTP_HOST, SMTP_PORT   the relay the worker sends through (default 127.0.0.1:1025)
    NEWSLETTER_SENDER      envelope and From address (default news@shop.example)

Failure knobs (all off by default; `make demo` turns them on):
    NEWSLETTER_INVALID_SHARE     share of recipients the SMTP server does not know (550 5.1.1)
    NEWSLETTER_FULL_SHARE        share of recipients with a full mailbox (452 4.2.2 at RCPT,
                                 552 5.2.2 after DATA, half each)
    NEWSLETTER_THROTTLE_PER_SECOND
                                 messages per second the SMTP server accepts before it answers
                                 451 4.7.1 (over twice that: 421 4.7.0 and it drops the connection)
    NEWSLETTER_SLOW_SHARE, NEWSLETTER_SLOW_MS
                                 share of messages the SMTP server takes NEWSLETTER_SLOW_MS extra
                                 milliseconds to accept
    NEWSLETTER_MISSING_VARIABLE  1: the campaign template refers to a variable the producer never
                                 supplies (premium subscribers' referral block)
    NEWSLETTER_STRICT_TEMPLATES  1: render with StrictUndefined, so that missing variable fails the
                                 render instead of leaving a hole in the email
    NEWSLETTER_LEAK_KB           the worker keeps this many KiB per sent message in a cache that
                                 never evicts (a memory leak)
    NEWSLETTER_MAX_ATTEMPTS      send attempts for transient (4xx) failures before giving up (3)

Delivery events (the sink plays a provider that reports what happened after it accepted a message):
    NEWSLETTER_WEBHOOK_URL       where the sink posts Mailgun-style event webhooks (unset: none)
    NEWSLETTER_WEBHOOK_KEY       the signing key of those webhooks (HMAC-SHA256, as Mailgun signs)
    NEWSLETTER_LATE_BOUNCE_SHARE share of accepted recipients the "receiving server" bounces later
                                 (550 5.1.1, reported by a `failed` event instead of `delivered`)
    NEWSLETTER_COMPLAINT_SHARE   share of delivered recipients who mark the email as spam
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _share(env, name: str) -> float:
    try:
        value = float(env.get(name, "0") or 0)
    except ValueError:
        return 0.0
    return min(max(value, 0.0), 1.0)


def _int(env, name: str, default: int) -> int:
    try:
        return int(env.get(name, "") or default)
    except ValueError:
        return default


def _flag(env, name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    queue: str
    smtp_host: str
    smtp_port: int
    sender: str
    invalid_share: float
    full_share: float
    throttle_per_second: int
    slow_share: float
    slow_ms: int
    missing_variable: bool
    strict_templates: bool
    leak_kb: int
    max_attempts: int
    webhook_url: str = ""
    webhook_key: str = ""
    late_bounce_share: float = 0.0
    complaint_share: float = 0.0

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}:dlq"


def load(environ=None) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("NEWSLETTER_DATA_DIR") or ".")
    return Settings(
        database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'newsletter.db'}",
        redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        queue=env.get("NEWSLETTER_QUEUE") or "newsletter:email-queue",
        smtp_host=env.get("SMTP_HOST") or "127.0.0.1",
        smtp_port=_int(env, "SMTP_PORT", 1025),
        sender=env.get("NEWSLETTER_SENDER") or "news@shop.example",
        invalid_share=_share(env, "NEWSLETTER_INVALID_SHARE"),
        full_share=_share(env, "NEWSLETTER_FULL_SHARE"),
        throttle_per_second=max(0, _int(env, "NEWSLETTER_THROTTLE_PER_SECOND", 0)),
        slow_share=_share(env, "NEWSLETTER_SLOW_SHARE"),
        slow_ms=max(0, _int(env, "NEWSLETTER_SLOW_MS", 0)),
        missing_variable=_flag(env, "NEWSLETTER_MISSING_VARIABLE"),
        strict_templates=_flag(env, "NEWSLETTER_STRICT_TEMPLATES"),
        leak_kb=max(0, _int(env, "NEWSLETTER_LEAK_KB", 0)),
        max_attempts=max(1, _int(env, "NEWSLETTER_MAX_ATTEMPTS", 3)),
        webhook_url=env.get("NEWSLETTER_WEBHOOK_URL") or "",
        webhook_key=env.get("NEWSLETTER_WEBHOOK_KEY") or "",
        late_bounce_share=_share(env, "NEWSLETTER_LATE_BOUNCE_SHARE"),
        complaint_share=_share(env, "NEWSLETTER_COMPLAINT_SHARE"),
    )

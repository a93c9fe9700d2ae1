"""The campaign producer: trigger -> segment query -> per-recipient personalization -> Redis queue.

    python -m examples.newsletter.producer --seed 200 --campaigns 1
    python -m examples.newsletter.producer --seed 200 --campaigns 0 --every 60   # a campaign a minute
    python -m examples.newsletter.producer --stdin                               # one campaign per input line

Each recipient's email is rendered from Jinja2 templates on disk, with a
profile and product lookup in the database (examples/newsletter/content.py),
and pushed (LPUSH) as one JSON payload onto the queue the worker pops from
(BRPOP), oldest first. Progress goes
to stdout as `event: {json}` lines.

Like many services, it marks its own two units of work with the OpenTelemetry
API (a no-op unless an SDK is configured, and skipped if the API is absent): a
`newsletter.campaign` span around the trigger and segment query, and one
`newsletter.prepare_email` root span per recipient, linked to the campaign, so
each email is one trace from personalization to the worker's send. Everything
email-specific in those traces comes from instrumentation, not from this code.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import nullcontext

import redis
from sqlalchemy import select

from examples.newsletter import settings as settings_mod
from examples.newsletter.content import Personalizer
from examples.newsletter.models import Campaign, Subscriber, seed, session_factory

try:  # the service's own spans; optional
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
except ImportError:  # pragma: no cover - the demo installs it
    otel_trace = None

SEGMENT = "active-opted-in"


def span(name: str, *, root: bool = False, link_to=None, **attributes):
    """A span of the service's own, or nothing when the OpenTelemetry API is not installed."""
    if otel_trace is None:
        return nullcontext()
    tracer = otel_trace.get_tracer("examples.newsletter")
    links = [otel_trace.Link(link_to.get_span_context())] if link_to is not None else None
    return tracer.start_as_current_span(
        name, context=otel_context.Context() if root else None, links=links, attributes=attributes
    )


def emit(event: str, **fields) -> None:
    print("event: " + json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


class Producer:
    def __init__(self, settings: settings_mod.Settings):
        self.settings = settings
        self.sessions = session_factory(settings.database_url)
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.content = Personalizer(settings)

    def segment(self, session):
        """The campaign's audience: active subscribers who opted in."""
        query = (
            select(Subscriber.id, Subscriber.email, Subscriber.first_name, Subscriber.city, Subscriber.plan)
            .where(Subscriber.active.is_(True), Subscriber.opted_in.is_(True))
            .order_by(Subscriber.id)
        )
        return session.execute(query).all()

    def run_campaign(self, number: int) -> dict:
        started = time.monotonic()
        with self.sessions() as session, span("newsletter.campaign", campaign_number=number) as campaign_span:
            campaign = Campaign(
                name=f"Weekly digest #{number}", template=self.content.campaign_template, segment=SEGMENT,
                status="sending",
            )
            session.add(campaign)
            session.commit()
            recipients = self.segment(session)
            emit("campaign_started", campaign=campaign.id, recipients=len(recipients))
            queued = failed = 0
            for recipient in recipients:
                with span("newsletter.prepare_email", root=True, link_to=campaign_span, campaign_id=campaign.id):
                    try:
                        payload = self.content.personalize(session, campaign, recipient)
                    except Exception as exc:  # a broken template must not stop the campaign
                        failed += 1
                        print(f"producer: cannot render for subscriber {recipient.id}: {type(exc).__name__}", file=sys.stderr)
                        continue
                    self.redis.lpush(self.settings.queue, json.dumps(payload))
                queued += 1
            campaign.status, campaign.queued = "queued", queued
            session.commit()
            result = {
                "campaign": campaign.id,
                "recipients": len(recipients),
                "queued": queued,
                "render_failed": failed,
                "seconds": round(time.monotonic() - started, 3),
            }
        emit("campaign_queued", **result)
        return result


def _stop(signum, frame):
    raise SystemExit(0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="make sure this many subscribers exist first")
    parser.add_argument("--campaigns", type=int, default=1, help="campaigns to run; 0 runs forever")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between campaigns")
    parser.add_argument("--stdin", action="store_true", help="run one campaign per line read from stdin")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)

    producer = Producer(settings_mod.load())
    if args.seed:
        with producer.sessions() as session:
            emit("seeded", subscribers=seed(session, args.seed))
    emit("ready", queue=producer.settings.queue)
    try:
        if args.stdin:
            number = 0
            for line in sys.stdin:
                if line.strip() in ("quit", "exit"):
                    break
                number += 1
                producer.run_campaign(number)
            return 0
        number = 0
        while args.campaigns == 0 or number < args.campaigns:
            if number:
                time.sleep(args.every)
            number += 1
            producer.run_campaign(number)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An app that puts known addresses everywhere an app plausibly can; run under `opentelemetry-instrument`.

    python tests/privacy/privacy_app.py REDIS_URL SMTP_PORT

Each place gets its own address (`ADDRESSES`), so a test can tell which place
leaked. The app does its work, prints `ready`, and stays alive (for Prometheus
scrapes) until its stdin closes; the SDK flushes every signal at exit. The
resource address comes from OTEL_RESOURCE_ATTRIBUTES, set by the test.
"""

from __future__ import annotations

import http.server
import json
import logging
import smtplib
import sys
import threading
from email.message import EmailMessage

DOMAIN = "example.org"
PLACES = (
    "queue.key", "queue.second", "header.value", "log.message", "log.arg", "log.extra", "exception.text", "smtp.refused",
    "sql.literal", "url.path", "url.query", "template.name", "baggage.value", "resource.attr", "app.metric",
    "span.link", "span.event",
)
ADDRESSES = {place: f"{place}@{DOMAIN}" for place in PLACES}
# people's names that come with an address (RFC 5322 display names), each a name no other byte holds
NAMES = {"log.message": "Zephyrine Quillfeather", "exception.text": "Ottoline Brackwater",
         "header.value": "Marisol Fenwright"}
HEADER_ATTRIBUTES = "X-Customer=app.customer"
RESOURCE_ATTRIBUTES = f"deployment.owner={ADDRESSES['resource.attr']}"


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _copy_baggage_to_spans():
    """What a BaggageSpanProcessor does: every baggage entry becomes a span attribute."""
    from opentelemetry import baggage, trace
    from opentelemetry.sdk.trace import SpanProcessor

    class BaggageToSpan(SpanProcessor):
        def on_start(self, span, parent_context=None):
            for key, value in baggage.get_all(parent_context).items():
                span.set_attribute(f"baggage.{key}", str(value))

    trace.get_tracer_provider().add_span_processor(BaggageToSpan())


def main(redis_url: str, smtp_port: int) -> None:
    import httpx
    import jinja2
    import redis
    import requests
    import sqlalchemy
    from opentelemetry import baggage, context, metrics, trace
    from opentelemetry.trace import Link, Status, StatusCode

    a = ADDRESSES
    log = logging.getLogger("privacy.app")
    logging.getLogger().setLevel(logging.INFO)
    tracer = trace.get_tracer("privacy.app")
    _copy_baggage_to_spans()
    token = context.attach(baggage.set_baggage("user.email", a["baggage.value"]))

    with tracer.start_as_current_span("job") as job:
        # logs: message, args, extra=
        log.warning(f"bounce from {a['log.message']} (\"{NAMES['log.message']}\" <{a['log.message']}>)")
        log.info("sending to %s", a["log.arg"])
        log.info("queued", extra={"recipient": a["log.extra"]})

        # the app's own metric, labelled by recipient
        meter = metrics.get_meter("privacy.app")
        meter.create_counter("app.sends").add(1, {"recipient": a["app.metric"]})

        # per-recipient queues (Redis lists) of one domain, with one message left in each
        client = redis.Redis.from_url(redis_url)
        for place in ("queue.key", "queue.second"):
            key = f"email_queue:{a[place]}"
            client.delete(key)
            client.lpush(key, json.dumps({"n": 1}), json.dumps({"n": 2}))
            client.rpop(key)

        # SQL with an address literal (upstream sqlalchemy instrumentation)
        engine = sqlalchemy.create_engine("sqlite://")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"SELECT '{a['sql.literal']}' AS email")).fetchall()

        # HTTP client calls: an address in the path (requests) and in the query (httpx)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        requests.get(f"{base}/users/{a['url.path']}/profile", timeout=10)
        httpx.get(f"{base}/search", params={"email": a["url.query"]}, timeout=10)
        server.shutdown()

        # a per-recipient template name
        name = f"welcome-{a['template.name']}.html"
        env = jinja2.Environment(loader=jinja2.DictLoader({name: "Hello {{ first }}"}), autoescape=True)
        env.get_template(name).render(first="Ann")

        # SMTP: a header copied onto the send span, and a refusal that quotes the recipient
        message = EmailMessage()
        message["From"] = "news@example.net"
        message["To"] = a["smtp.refused"]
        message["Subject"] = "hello"
        message["X-Customer"] = f"{NAMES['header.value']} <{a['header.value']}>"
        message.set_content("hi")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused:
                log.exception("send failed")

        # an exception text, on a span and in a log record
        try:
            raise ValueError(f"cannot deliver to {NAMES['exception.text']} <{a['exception.text']}>")
        except ValueError as exc:
            job.record_exception(exc)
            job.set_status(Status(StatusCode.ERROR, "delivery failed"))
            log.exception("delivery failed")

        # a link and an event carrying addresses
        with tracer.start_as_current_span(
            "batch", links=[Link(job.get_span_context(), {"customer": a["span.link"]})]
        ) as batch:
            batch.add_event("picked", {"recipient": a["span.event"]})

    context.detach(token)
    print("ready", flush=True)
    sys.stdin.read()  # stay alive for scrapes until the test closes stdin


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""One run of the realistic email job, in its own process (started by bench_email_job).

    python -m benchmarks.email_job MODE REDIS_URL SMTP_PORT EMAILS

Per email: a Jinja2 render of an HTML newsletter (12 variables, a loop over 6
products), an LPUSH of a JSON payload carrying the rendered HTML to a real
redis-server, a BRPOP of it, and an `EmailMessage` (text plus an HTML
alternative) sent with smtplib over one kept-open connection.

MODE is how telemetry is set up before the job starts:
- `none`: no telemetry at all;
- `upstream`: the SDK the way opentelemetry-distro's configurator sets it up
  (TracerProvider + BatchSpanProcessor, MeterProvider + PeriodicExportingMetricReader,
  both exporting OTLP JSON to /dev/null) plus the upstream jinja2 and redis
  instrumentors, done here in code;
- `mailscope`: nothing here; the parent runs this module under
  `opentelemetry-instrument` with mailscope, exporting the same way;
- `upstream_spans` (a reference): `upstream`, and the job itself wraps its steps in
  the four spans mailscope adds to upstream's per email (`send {queue}`,
  `receive {queue}`, `process {queue}`, `email.send`, with their names, kinds and
  attributes), bare SDK spans: what that many spans cost without mailscope.

After a warm-up (template compiled, connections open, first spans exported) the
timed part runs EMAILS emails and then flushes traces and metrics, so the work
the export threads do for these emails is counted too. It prints one JSON line:
process CPU time (all threads), the job thread's own CPU time and wall time, per email.
"""

from __future__ import annotations

import json
import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import make_msgid

TEMPLATE = """<!doctype html>
<html><head><title>{{ subject }}</title></head>
<body style="font-family: sans-serif">
  <h1>Hello {{ first_name }} {{ last_name }},</h1>
  <p>Here is what is new at {{ company }} this {{ weekday }}, picked for you in {{ city }}.</p>
  <table>
  {% for product in products %}
    <tr>
      <td><img src="{{ product.image }}" alt="{{ product.name }}" width="120"></td>
      <td><a href="{{ product.url }}?utm_campaign={{ campaign }}">{{ product.name }}</a></td>
      <td>{{ "%.2f"|format(product.price) }} {{ currency }}</td>
    </tr>
  {% endfor %}
  </table>
  <p>You have {{ points }} loyalty points. Your code: <b>{{ discount_code }}</b></p>
  <p><a href="{{ unsubscribe_url }}">Unsubscribe</a> ({{ email }})</p>
</body></html>
"""

PRODUCTS = [
    {"name": f"Product {n}", "url": f"https://shop.example.com/p/{n}", "image": f"https://cdn.example.com/{n}.png",
     "price": 9.99 + n}
    for n in range(6)
]
SENDER = "news@shop.example.com"


def setup_upstream() -> None:
    """What opentelemetry-distro's configurator does, with OTLP JSON files on /dev/null."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.json.file import FileMetricExporter, FileSpanExporter
    from opentelemetry.instrumentation.jinja2 import Jinja2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(path="/dev/null")))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(FileMetricExporter(path="/dev/null"))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    Jinja2Instrumentor().instrument()
    RedisInstrumentor().instrument()


def flush() -> None:
    from opentelemetry import metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush()


class Job:
    def __init__(self, redis_url: str, smtp_port: int, queue: str, spans: bool = False):
        import jinja2
        import redis

        self.spans = spans
        if spans:
            from opentelemetry import trace

            self.tracer = trace.get_tracer("bench.reference")
        self.env = jinja2.Environment(loader=jinja2.DictLoader({"newsletter.html": TEMPLATE}), autoescape=True)
        self.redis = redis.Redis.from_url(redis_url)
        self.queue = queue
        self.smtp = smtplib.SMTP("127.0.0.1", smtp_port)

    def close(self) -> None:
        self.smtp.quit()
        self.redis.close()

    def email(self, n: int) -> None:
        to = f"reader{n}@inbox.example.org"
        context = {
            "subject": "Your weekly picks", "first_name": "Alex", "last_name": f"Reader{n}",
            "company": "Example Shop", "weekday": "Monday", "city": "Lyon", "products": PRODUCTS,
            "campaign": "weekly-42", "currency": "EUR", "points": 100 + n, "discount_code": f"SAVE{n:05d}",
            "unsubscribe_url": f"https://shop.example.com/unsubscribe/{n}", "email": to,
        }
        html = self.env.get_template("newsletter.html").render(**context)
        text = f"Hello Alex Reader{n}, here are your weekly picks: https://shop.example.com/weekly"
        payload = json.dumps({"to": to, "subject": context["subject"], "html": html, "text": text})
        if self.spans:
            self._with_reference_spans(payload)
            return
        self.redis.lpush(self.queue, payload)
        _, raw = self.redis.brpop(self.queue, timeout=10)
        self.send(json.loads(raw))

    def send(self, job: dict) -> None:
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = job["to"]
        message["Subject"] = job["subject"]
        message["Message-ID"] = make_msgid(domain="shop.example.com")
        message.set_content(job["text"])
        message.add_alternative(job["html"], subtype="html")
        self.smtp.send_message(message)

    def _with_reference_spans(self, payload: str) -> None:
        from opentelemetry.trace import SpanKind

        queue = {"messaging.system": "redis", "messaging.destination.name": self.queue}
        start = self.tracer.start_as_current_span
        with start(f"send {self.queue}", kind=SpanKind.PRODUCER, attributes={
            "mailscope.operation": "queue.publish", "messaging.operation.type": "send", **queue,
        }):
            self.redis.lpush(self.queue, payload)
        _, raw = self.redis.brpop(self.queue, timeout=10)
        with start(f"receive {self.queue}", kind=SpanKind.CONSUMER, attributes={
            "mailscope.operation": "queue.receive", "messaging.operation.type": "receive", **queue,
        }):
            pass
        with start(f"process {self.queue}", kind=SpanKind.CONSUMER, attributes={
            "mailscope.operation": "queue.process", "messaging.operation.type": "process", **queue,
        }):
            job = json.loads(raw)
            with start("email.send", kind=SpanKind.CLIENT, attributes={
                "mailscope.operation": "send", "server.address": "127.0.0.1", "server.port": self.smtp.sock.getpeername()[1],
                "email.provider": "smtp", "email.recipients.count": 1, "email.recipients.domains": ("inbox.example.org",),
                "email.message.id_hash": "0123456789abcdef",
            }) as span:
                self.send(job)
                span.set_attributes({
                    "email.message.bytes": 2612, "smtp.response.code": 250, "smtp.response.enhanced_status": "2.0.0",
                    "email.recipients.refused": 0,
                })


def main(argv: list[str]) -> int:
    mode, redis_url, smtp_port, emails = argv[0], argv[1], int(argv[2]), int(argv[3])
    if mode in ("upstream", "upstream_spans"):
        setup_upstream()
    import os

    job = Job(redis_url, smtp_port, f"email:queue:{mode}:{os.getpid()}", spans=mode == "upstream_spans")
    for n in range(max(20, emails // 10)):  # warm-up
        job.email(n)
    flush()
    cpu, wall, main_cpu = time.process_time(), time.perf_counter(), time.thread_time()
    for n in range(emails):
        job.email(n)
    flush()
    main_cpu = time.thread_time() - main_cpu  # the job's own thread; the rest is the export threads
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    job.close()
    print(json.dumps({
        "mode": mode, "emails": emails, "cpu_per_email": cpu / emails, "wall_per_email": wall / emails,
        "main_thread_cpu_per_email": main_cpu / emails,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Per-message cost of queue instrumentation: a push, and a pop + process, against a real redis-server.

Cases run interleaved in one process on the same Redis, as ratios to the
uninstrumented client:
- uninstrumented: nothing wrapped;
- instrumented: the queue instrumentor on the real SDK, BatchSpanProcessor and a
  no-op exporter (the instrumentation's own cost: spans, envelope, wait metric);
- + pipeline: the same with mailscope's enrichment chain in front of the batch
  processor, as `opentelemetry-instrument` sets it up.

push: `r.lpush(queue, payload)`. pop+process: `r.brpop(queue)` followed by
`handle(msg)` (a json.loads), which is what the implicit process span covers;
the queue is filled before each timed batch with one LPUSH of all messages
(the same for every case, and small next to the per-message round trips).
"""

from __future__ import annotations

import json

from benchmarks.harness import Ratio, Section, interleaved, sdk_providers

QUEUE = "email_queue"
PAYLOAD = json.dumps(
    {"template": "weekly-digest", "recipient_id": 48213, "locale": "de-DE", "vars": {"first_name": "Ann", "n": 3}}
).encode()


def run(quick: bool) -> Section:
    import redis

    from mailscope.config import reload_settings
    from mailscope.instrumentation.queue import envelope as queue_envelope
    from mailscope.instrumentation.queue import process as queue_process
    from mailscope.instrumentation.queue import QueueInstrumentor
    from tests.support.redis_server import RedisServer

    ops, repeats = (300, 3) if quick else (2000, 7)
    reload_settings(queue_envelope="json", queues="email_*")
    plain_sdk = sdk_providers(with_pipeline=False)
    full_sdk = sdk_providers(with_pipeline=True)
    instrumentor = QueueInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    # what an instrumented producer leaves in Redis
    carried = queue_envelope.inject(
        PAYLOAD,
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "",
         "enqueued_at": 1.0},
    )

    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    raw = redis.Redis.from_url(server.url)

    def instrumented(providers, body):
        def case(n):
            instrumentor.instrument(tracer_provider=providers[0], meter_provider=providers[1])
            try:
                body(n)
            finally:
                queue_process.end_current()
                instrumentor.uninstrument()

        return case

    def push(n):
        client.delete(QUEUE)
        for _ in range(n):
            client.lpush(QUEUE, PAYLOAD)

    def fill(n, payload):
        raw.delete(QUEUE)
        raw.execute_command("LPUSH", QUEUE, *([payload] * n))

    def pop_process(payload):
        def body(n):
            fill(n, payload)
            for _ in range(n):
                _, message = client.brpop(QUEUE, timeout=1)
                json.loads(message)  # handle(msg)

        return body

    tracer = plain_sdk[0].get_tracer("bench")

    def sdk_span(n):  # reference: what the SDK itself charges for one span in this run
        for _ in range(n):
            tracer.start_span("reference", attributes={"a": 1, "b": "x", "c": "y", "d": "z"}).end()

    try:
        push_times = interleaved(
            {
                "push, uninstrumented": push,
                "push, instrumented (envelope json)": instrumented(plain_sdk, push),
                "push, instrumented + mailscope pipeline": instrumented(full_sdk, push),
            },
            ops, repeats,
        )
        reload_settings(queue_envelope="off", queues="email_*")
        push_off = interleaved(
            {"push, uninstrumented ": push, "push, instrumented (envelope off)": instrumented(plain_sdk, push)},
            ops, repeats,
        )
        reload_settings(queue_envelope="json", queues="email_*")
        pop_times = interleaved(
            {
                "pop+process, uninstrumented": pop_process(PAYLOAD),
                "pop+process, instrumented (envelope json)": instrumented(plain_sdk, pop_process(carried)),
                "pop+process, instrumented + mailscope pipeline": instrumented(full_sdk, pop_process(carried)),
                "reference: one SDK span (start+end, 4 attributes), no Redis": sdk_span,
            },
            ops, repeats,
        )
    finally:
        client.close()
        raw.close()
        server.close()
        for providers in (plain_sdk, full_sdk):
            providers[0].shutdown()
            providers[1].shutdown()
        reload_settings()

    section = Section("queue: per-message overhead (real redis-server, SDK + BatchSpanProcessor + no-op exporter)")
    section.rows = list(push_times.items()) + list(push_off.items()) + list(pop_times.items())
    base_push, base_off, base_pop = (
        push_times["push, uninstrumented"], push_off["push, uninstrumented "], pop_times["pop+process, uninstrumented"]
    )
    section.ratios = [
        Ratio("push instrumented / uninstrumented (envelope off)", push_off["push, instrumented (envelope off)"] / base_off),
        Ratio("push instrumented / uninstrumented (envelope json)",
              push_times["push, instrumented (envelope json)"] / base_push),
        Ratio("push + mailscope pipeline / uninstrumented",
              push_times["push, instrumented + mailscope pipeline"] / base_push),
        Ratio("pop+process instrumented / uninstrumented (envelope json)",
              pop_times["pop+process, instrumented (envelope json)"] / base_pop),
        Ratio("pop+process + mailscope pipeline / uninstrumented",
              pop_times["pop+process, instrumented + mailscope pipeline"] / base_pop),
    ]
    section.notes = [
        f"{ops} messages per case, {repeats} interleaved repeats, medians",
        "absolute overhead per message = instrumented minus uninstrumented row (same run, same Redis)",
        "pop+process records a receive and a process span per message; push one send span",
        "the reference row is the SDK's own price of one span here; overhead beyond it is mailscope's",
    ]
    return section

"""Queue spans, envelope and process boundaries in-process, against a real redis-server."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import queue as stdlib_queue
import threading
import time
import weakref

import pytest
import redis
import redis.asyncio

from mailscope import attributes as attr
from mailscope.instrumentation.queue import process as queue_process
from mailscope.instrumentation.queue import processing, strip_envelope
from mailscope.instrumentation.queue.wrappers import PENDING
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from tests.support.queue_harness import QueueHarness, reset_process_state
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

Q = "email_queue"
Q2 = "bulk_queue"
DEST = "email_queue:processing"
JSON_MSG = b'{"template": "welcome", "to": "ann@example.com",  "vars": {"name": "Ann"}}\n'
TEXT_MSG = b"not json at all"


@pytest.fixture(scope="module")
def server():
    with RedisServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def harness(server):
    h = QueueHarness(queue_envelope="json", queues="email_*,bulk_*")
    yield h
    h.close()


@pytest.fixture
def env(harness, server):
    client = redis.Redis.from_url(server.url)
    client.flushall()
    harness.clear()
    yield harness, client
    reset_process_state()
    client.close()


def send_spans(h, queue=Q):
    return [s for s in h.spans(attr.queue_span_name(attr.OP_QUEUE_PUBLISH, queue))]


def by_kind(h, op, queue=Q):
    return h.spans(attr.queue_span_name(op, queue))


def compact(obj) -> str:
    """JSON the way mailscope appends its envelope (only that exact form is stripped)."""
    return json.dumps(obj, separators=(",", ":"))


def stored(client, key):
    return client.lrange(key, 0, -1)


# --- every consumer command ----------------------------------------------------------
CONSUMERS = {
    "brpop": lambda r: [r.brpop(Q, timeout=1)[1], r.brpop([Q], timeout=1)[1]],
    "blpop": lambda r: [r.blpop([Q], timeout=1)[1], r.blpop(Q, timeout=1)[1]],
    "rpop": lambda r: [r.rpop(Q), r.rpop(Q)],
    "lpop": lambda r: [r.lpop(Q), r.lpop(name=Q)],
    "rpop_count": lambda r: r.rpop(Q, 2),
    "lpop_count": lambda r: r.lpop(Q, count=2),
    "rpoplpush": lambda r: [r.rpoplpush(Q, DEST), r.rpoplpush(Q, DEST)],
    "brpoplpush": lambda r: [r.brpoplpush(Q, DEST, timeout=1), r.brpoplpush(Q, DEST, 1)],
    "lmove": lambda r: [r.lmove(Q, DEST, "RIGHT", "LEFT"), r.lmove(Q, DEST)],
    "blmove": lambda r: [r.blmove(Q, DEST, 1, "RIGHT", "LEFT"), r.blmove(Q, DEST, 1)],
    "blmpop": lambda r: r.blmpop(1, 1, Q, direction="RIGHT", count=2)[1],
    "lmpop": lambda r: r.lmpop(2, "nothing_here", Q, direction="LEFT", count=5)[1],
}
BATCH = {"rpop_count", "lpop_count", "blmpop", "lmpop"}


@pytest.mark.parametrize("command", sorted(CONSUMERS))
def test_every_consumer_command_hands_back_exactly_what_was_pushed(env, command):
    h, r = env
    r.lpush(Q, JSON_MSG)
    r.lpush(Q, TEXT_MSG)
    raw = stored(r, Q)
    assert TEXT_MSG in raw and JSON_MSG not in raw  # the JSON object travels with its envelope
    carried = next(m for m in raw if m != TEXT_MSG)
    assert json.loads(carried)["_mailscope"]["traceparent"]

    got = CONSUMERS[command](r)

    assert sorted(got) == sorted([JSON_MSG, TEXT_MSG])
    sends = {s.context.span_id: s for s in send_spans(h)}
    assert len(sends) == 2
    json_send = next(
        s for s in sends.values()
        if json.loads(carried)["_mailscope"]["traceparent"].split("-")[2] == format(s.context.span_id, "016x")
    )
    receives = by_kind(h, attr.OP_QUEUE_RECEIVE)
    if command in BATCH:
        (receive,) = receives
        assert receive.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    else:
        assert len(receives) == 2
        assert all(attr.MESSAGING_BATCH_MESSAGE_COUNT not in s.attributes for s in receives)
    for span in receives:
        assert span.kind == SpanKind.CONSUMER
        assert span.attributes[attr.MESSAGING_SYSTEM] == "redis"
        assert span.attributes[attr.MESSAGING_OPERATION_TYPE] == "receive"
        assert span.attributes[attr.MESSAGING_DESTINATION_NAME] == Q
        assert span.attributes[attr.OPERATION] == attr.OP_QUEUE_RECEIVE
    linked = [s for s in receives if s.links]
    assert len(linked) == 1 and linked[0].links[0].context.span_id == json_send.context.span_id
    assert linked[0].attributes[attr.QUEUE_WAIT] >= 0

    reset_process_state()  # end the last implicit process span
    processes = by_kind(h, attr.OP_QUEUE_PROCESS)
    if command in BATCH:
        (batch,) = processes
        assert batch.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
        assert [link.context.span_id for link in batch.links] == [json_send.context.span_id]
    else:
        child = [p for p in processes if p.parent is not None and p.parent.is_remote]
        assert len(processes) == 2 and len(child) == 1
        assert child[0].parent.span_id == json_send.context.span_id
        assert child[0].context.trace_id == json_send.context.trace_id
        assert [link.context.span_id for link in child[0].links] == [json_send.context.span_id]

    if command in ("rpoplpush", "brpoplpush", "lmove", "blmove"):
        # reliable-queue acknowledgement: removing what the app was given works,
        # although Redis holds the enveloped bytes
        assert len(stored(r, DEST)) == 2
        assert r.lrem(DEST, 1, JSON_MSG) == 1
        assert r.lrem(DEST, 1, TEXT_MSG) == 1
        assert stored(r, DEST) == []


def test_send_span_attributes_batch_count_and_parentage(env):
    h, r = env
    with h.tracer.start_as_current_span("campaign") as root:
        assert r.rpush(Q, b'{"a":1}', b'{"a":2}', b"x") == 3
        assert r.lpushx(Q, b'{"a":0}') == 4
        assert r.rpushx("email_absent", b'{"a":1}') == 0
    spans = send_spans(h)
    assert len(spans) == 2
    batch = next(s for s in spans if attr.MESSAGING_BATCH_MESSAGE_COUNT in s.attributes)
    assert batch.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 3
    single = next(s for s in spans if s is not batch)
    assert attr.MESSAGING_BATCH_MESSAGE_COUNT not in single.attributes
    for span in spans:
        assert span.kind == SpanKind.PRODUCER
        assert span.parent.span_id == root.get_span_context().span_id
        assert span.attributes[attr.MESSAGING_OPERATION_TYPE] == "send"
        assert span.attributes[attr.OPERATION] == attr.OP_QUEUE_PUBLISH
    assert len(send_spans(h, "email_absent")) == 1
    # keys that are not queues: no spans, no envelope
    r.lpush("sessions", b'{"a":1}')
    assert r.lrange("sessions", 0, -1) == [b'{"a":1}']
    assert len(h.spans(prefix="send ")) == 3


def test_str_payloads_and_decode_responses(env, server):
    h, _ = env
    r = redis.Redis.from_url(server.url, decode_responses=True)
    message = '{"subject": "Grüße", "n": [1, 2]}'
    r.lpush(Q, message)
    assert "_mailscope" in r.lindex(Q, 0)
    key, got = r.brpop(Q, timeout=1)
    assert (key, got) == (Q, message) and isinstance(got, str)
    r.close()


def test_empty_blocking_pop_records_nothing_and_ends_the_process_span(env):
    h, r = env
    assert r.brpop(Q, timeout=0.05) is None
    assert r.rpop(Q) is None
    assert r.blmpop(0.05, 1, Q, direction="LEFT") is None
    assert h.spans() == []

    r.lpush(Q, JSON_MSG)
    assert r.brpop(Q, timeout=1)[1] == JSON_MSG
    assert by_kind(h, attr.OP_QUEUE_PROCESS) == []  # still open: the app is handling the message
    assert r.brpop(Q, timeout=0.05) is None
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    assert len(by_kind(h, attr.OP_QUEUE_RECEIVE)) == 1


def test_process_span_covers_handle_and_ends_at_the_next_consumer_command(env):
    h, r = env
    for n in range(3):
        r.lpush(Q, json.dumps({"n": n}).encode())

    handled = []
    while True:
        reply = r.brpop(Q, timeout=0.05)
        if reply is None:
            break
        with h.tracer.start_as_current_span("handle") as span:
            n = json.loads(reply[1])["n"]
            span.set_attribute("n", n)
            r.lpush("bulk_retry", reply[1])  # a send made while processing
            handled.append(n)
    assert handled == [0, 1, 2]

    processes = sorted(by_kind(h, attr.OP_QUEUE_PROCESS), key=lambda s: s.start_time)
    receives = sorted(by_kind(h, attr.OP_QUEUE_RECEIVE), key=lambda s: s.start_time)
    handles = sorted(h.spans("handle"), key=lambda s: s.attributes["n"])
    retries = send_spans(h, "bulk_retry")
    assert len(processes) == len(receives) == len(handles) == len(retries) == 3
    sends = sorted(send_spans(h), key=lambda s: s.start_time)
    for n in range(3):
        process, handle = processes[n], handles[n]
        assert process.kind == SpanKind.CONSUMER
        assert process.parent.span_id == sends[n].context.span_id  # the producer's trace
        assert handle.parent.span_id == process.context.span_id
        retry = next(s for s in retries if s.parent.span_id == handle.context.span_id)
        assert retry.context.trace_id == process.context.trace_id
        assert process.start_time >= receives[n].end_time
        if n < 2:
            assert process.end_time <= receives[n + 1].start_time
    # the final empty pop ended the last one; nothing stays current afterwards
    with h.tracer.start_as_current_span("after") as after:
        pass
    assert h.spans("after")[0].parent is None
    assert queue_process.open_count() == 0


def test_process_span_ends_when_the_thread_exits(env):
    h, r = env
    r.lpush(Q, JSON_MSG)

    def worker():
        r.brpop(Q, timeout=1)
        with h.tracer.start_as_current_span("handle"):
            pass

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    del thread
    gc.collect()
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    assert h.spans("handle")[0].parent.span_id == process.context.span_id
    assert queue_process.open_count() == 0


def test_open_process_spans_are_capped(env, monkeypatch):
    h, r = env
    monkeypatch.setattr(queue_process, "MAX_OPEN", 3)
    for n in range(6):
        r.lpush(Q, json.dumps({"n": n}).encode())
    release = threading.Event()

    def worker():
        r.brpop(Q, timeout=1)
        release.wait(10)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(by_kind(h, attr.OP_QUEUE_RECEIVE)) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue_process.open_count() == 3
    assert len(by_kind(h, attr.OP_QUEUE_PROCESS)) == 3  # the oldest three were ended
    release.set()
    for t in threads:
        t.join()
    gc.collect()
    assert len(by_kind(h, attr.OP_QUEUE_PROCESS)) == 6


def test_asyncio_tasks_each_get_their_own_process_spans(env, server):
    h, r = env
    for n in range(6):
        r.rpush(Q, json.dumps({"n": n}).encode())

    async def consumer(client, name):
        seen = []
        while True:
            reply = await client.blpop([Q], timeout=0.05)
            if reply is None:
                return seen
            n = json.loads(reply[1])["n"]
            await asyncio.sleep(0.001)  # let the other task run while this one holds a message
            with h.tracer.start_as_current_span("handle", attributes={"n": n, "task": name}):
                await client.lpush("bulk_done", reply[1])
            seen.append(n)

    async def main():
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            return await asyncio.gather(consumer(client, "a"), consumer(client, "b"))
        finally:
            await client.aclose()

    a, b = asyncio.run(main())
    assert sorted(a + b) == list(range(6)) and a and b
    processes = {s.context.span_id: s for s in by_kind(h, attr.OP_QUEUE_PROCESS)}
    assert len(processes) == 6  # all ended: by the next blpop or when the task finished
    sends = {s.context.span_id: s for s in send_spans(h)}
    for handle in h.spans("handle"):
        process = processes[handle.parent.span_id]
        producer = sends[process.parent.span_id]
        assert producer.context.trace_id == handle.context.trace_id
    done = send_spans(h, "bulk_done")
    assert len(done) == 6 and all(s.parent.span_id in {x.context.span_id for x in h.spans("handle")} for s in done)
    assert queue_process.open_count() == 0


def test_a_long_lived_task_gets_one_done_callback(env, server, monkeypatch):
    h, r = env
    done_calls = []
    real_done = queue_process._task_done
    monkeypatch.setattr(queue_process, "_task_done", lambda task: done_calls.append(task) or real_done(task))
    for n in range(5):
        r.rpush(Q, b"%d" % n)

    async def worker():
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            while await client.lpop(Q) is not None:
                pass
        finally:
            await client.aclose()

    asyncio.run(worker())
    assert len(by_kind(h, attr.OP_QUEUE_PROCESS)) == 5
    assert len(done_calls) == 1  # not one per message
    assert queue_process._tasks == {}


def test_pipelines_sync(env):
    h, r = env
    with h.tracer.start_as_current_span("fan-out"):
        pipe = r.pipeline()
        pipe.lpush(Q, b'{"a":1}', b'{"a":2}').rpush(Q2, b'{"b":1}').llen(Q)
        assert pipe.execute() == [2, 1, 2]
    sends = {s.attributes[attr.MESSAGING_DESTINATION_NAME]: s for s in h.spans(prefix="send ")}
    assert sends[Q].attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert attr.MESSAGING_BATCH_MESSAGE_COUNT not in sends[Q2].attributes
    assert all("_mailscope" in json.loads(m) for m in stored(r, Q) + stored(r, Q2))

    # a discarded command is never reported
    pipe = r.pipeline(transaction=False)
    pipe.lpush(Q, b'{"discarded":1}')
    pipe.reset()
    pipe.set("unrelated", 1)
    assert pipe.execute() == [True]
    assert len(h.spans(prefix="send ")) == 2
    for n in range(50):  # a pipeline reused and reset many times keeps no backlog
        pipe.lpush(Q, b"%d" % n)
        pipe.reset()
    pipe.lpush(Q, b'{"kept": 1}')
    assert len(pipe.__dict__[PENDING]) == 1
    pipe.reset()

    pipe = r.pipeline()
    pipe.rpop(Q).rpop(Q2).get("unrelated").rpop("email_empty")
    replies = pipe.execute()
    assert replies == [b'{"a":1}', b'{"b":1}', b"1", None]
    receives = h.spans(prefix="receive ")
    assert sorted(s.attributes[attr.MESSAGING_DESTINATION_NAME] for s in receives) == [Q2, Q]
    reset_process_state()
    (process,) = h.spans(prefix="process ")
    assert process.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert {link.context.span_id for link in process.links} == {
        sends[Q].context.span_id, sends[Q2].context.span_id
    }


def test_pipelines_asyncio(env, server):
    h, r = env

    async def main():
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.rpush(Q, b'{"x": "one"}', b'{"x": "two"}').llen(Q)
                pushed = await pipe.execute()
            async with client.pipeline(transaction=False) as pipe:
                pipe.lpop(Q, 2).lpop(Q)
                popped = await pipe.execute()
            return pushed, popped
        finally:
            await client.aclose()

    pushed, popped = asyncio.run(main())
    assert pushed == [2, 2]
    assert popped == [[b'{"x": "one"}', b'{"x": "two"}'], None]
    (send,) = send_spans(h)
    (receive,) = by_kind(h, attr.OP_QUEUE_RECEIVE)
    assert receive.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2
    assert [link.context.span_id for link in receive.links] == [send.context.span_id] * 2
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)  # ended when the asyncio.run task finished
    assert process.attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] == 2


def test_asyncio_commands_send_and_receive(env, server):
    h, r = env

    async def main():
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            with h.tracer.start_as_current_span("request"):
                await client.lpush(Q, JSON_MSG)
            got = await client.brpop(Q, timeout=1)
            with h.tracer.start_as_current_span("handle"):
                pass
            empty = await client.brpop(Q, timeout=0.05)
            return got, empty
        finally:
            await client.aclose()

    got, empty = asyncio.run(main())
    assert got == (Q.encode(), JSON_MSG) and empty is None
    (send,) = send_spans(h)
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    assert send.parent.span_id == h.spans("request")[0].context.span_id
    assert process.parent.span_id == send.context.span_id
    assert h.spans("handle")[0].parent.span_id == process.context.span_id


# --- explicit boundaries ----------------------------------------------------------------
def test_processing_adopts_the_implicit_span_and_records_the_failure(env):
    h, r = env
    r.lpush(Q, JSON_MSG)
    reply = r.brpop(Q, timeout=1)
    boom = ValueError("template missing")
    with pytest.raises(ValueError) as raised:
        with processing(Q, reply) as payload:
            assert payload == reply and payload[1] == JSON_MSG
            with h.tracer.start_as_current_span("render"):
                pass
            raise boom
    assert raised.value is boom
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)  # ended with the block, not at the next pop
    assert process.status.status_code == StatusCode.ERROR
    assert process.attributes[attr.ERROR_TYPE] == "ValueError"
    assert h.spans("render")[0].parent.span_id == process.context.span_id
    assert process.parent.span_id == send_spans(h)[0].context.span_id
    with h.tracer.start_as_current_span("after"):
        pass
    assert h.spans("after")[0].parent is None  # the context is back to what it was
    assert r.brpop(Q, timeout=0.05) is None
    assert len(by_kind(h, attr.OP_QUEUE_PROCESS)) == 1  # no second process span


@pytest.mark.parametrize("fetcher_moves_on_first", [False, True])
def test_processing_in_a_worker_thread(env, fetcher_moves_on_first):
    h, r = env
    r.lpush(Q, JSON_MSG)
    handoff = stdlib_queue.Queue()
    adopted, fetched_again = threading.Event(), threading.Event()

    def fetcher():
        handoff.put(r.brpop(Q, timeout=1)[1])
        if not fetcher_moves_on_first:
            adopted.wait(10)
        r.brpop(Q, timeout=0.05)  # the fetcher's next pop ends its implicit span unless adopted
        fetched_again.set()

    def worker():
        message = handoff.get(timeout=10)
        if fetcher_moves_on_first:
            fetched_again.wait(10)
        with processing(Q, message) as payload:
            adopted.set()
            assert payload == JSON_MSG
            with h.tracer.start_as_current_span("work"):
                pass

    threads = [threading.Thread(target=fetcher), threading.Thread(target=worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    work = h.spans("work")[0]
    processes = by_kind(h, attr.OP_QUEUE_PROCESS)
    (send,) = send_spans(h)
    assert all(p.parent.span_id == send.context.span_id for p in processes)
    (owner,) = [p for p in processes if p.context.span_id == work.parent.span_id]
    assert owner.end_time >= work.end_time
    # adopted while still open: one span for the message; after the fetcher moved on,
    # its implicit span covered only the hand-off and the worker's block has its own
    assert len(processes) == (2 if fetcher_moves_on_first else 1)


def test_processing_a_message_read_without_instrumentation(env):
    h, r = env
    r.lpush(Q, JSON_MSG)
    raw = r.execute_command("RPOP", Q)  # not a wrapped method: the envelope is still on
    assert raw != JSON_MSG and strip_envelope(raw) == JSON_MSG
    with processing(Q, raw) as payload:
        assert payload == JSON_MSG
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    assert process.parent.span_id == send_spans(h)[0].context.span_id


def test_ended_process_spans_are_not_kept_alive_but_their_producer_context_is(env):
    h, r = env
    r.lpush(Q, JSON_MSG)
    r.brpop(Q, timeout=1)
    ended = weakref.ref(trace.get_current_span())  # the implicit process span
    assert r.brpop(Q, timeout=0.05) is None  # ends it
    (send,) = send_spans(h)
    h.clear()
    gc.collect()
    assert ended() is None  # the recent-message map no longer holds the span, its context and attributes
    remembered = queue_process.recent(Q, JSON_MSG)
    assert remembered.closed and remembered.creation.span_id == send.context.span_id
    with processing(Q, JSON_MSG):  # a late processing() still parents to the producer
        pass
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    assert process.parent.span_id == send.context.span_id


def test_an_ended_scope_without_producer_context_is_forgotten(env):
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    scope = queue_process.Scope(span, trace.set_span_in_context(span), Q, [TEXT_MSG])
    queue_process._registry.add(scope)
    assert queue_process.recent(Q, TEXT_MSG) is scope
    scope.end()
    assert queue_process.recent(Q, TEXT_MSG) is None  # nothing left that processing() could use


# --- wait time ----------------------------------------------------------------------------
def test_wait_is_plausible_clamped_and_future_times_are_flagged(env, caplog):
    h, r = env
    counted = wait_count(h)
    before_push = time.time()
    r.lpush(Q, JSON_MSG)
    time.sleep(0.05)
    r.brpop(Q, timeout=1)
    after_pop = time.time()
    (receive,) = by_kind(h, attr.OP_QUEUE_RECEIVE)
    wait = receive.attributes[attr.QUEUE_WAIT]
    assert 0 < wait <= after_pop - before_push

    now = time.time()
    for a, ahead in ((1, 30), (2, 3600), (3, 7200)):  # as a producer with a skewed clock would push them
        r.execute_command("LPUSH", Q, compact({"a": a, "_mailscope": {"enqueued_at": now + ahead}}))
    h.clear()
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        got = [json.loads(r.brpop(Q, timeout=1)[1]) for _ in range(3)]
    assert got == [{"a": 1}, {"a": 2}, {"a": 3}]
    skewed, *unusable = sorted(by_kind(h, attr.OP_QUEUE_RECEIVE), key=lambda s: s.start_time)
    assert skewed.attributes[attr.QUEUE_WAIT] == 0.0  # slightly in the future: clamped
    assert not skewed.events
    for span in unusable:
        assert attr.QUEUE_WAIT not in span.attributes
        assert [e.name for e in span.events] == [attr.EVENT_QUEUE_WAIT_UNUSABLE]
    assert len([rec for rec in caplog.records if "future" in rec.getMessage()]) == 1
    # the histogram got the first message and the clamped one, not the unusable ones
    assert wait_count(h) == counted + 2


def wait_count(h) -> int:
    """Messages of Q in the (cumulative) wait histogram so far."""
    return sum(p.count for a, p in h.points(attr.METRIC_QUEUE_WAIT) if a == {attr.MESSAGING_DESTINATION_NAME: Q})


# --- coexistence and failures ------------------------------------------------------------------
def test_upstream_redis_spans_are_children_and_not_duplicated(env):
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    h, r = env
    upstream = RedisInstrumentor()
    upstream.instrument(tracer_provider=h.tracer_provider)
    try:
        r.lpush(Q, JSON_MSG)
        r.brpop(Q, timeout=1)
        r.brpop(Q, timeout=0.05)
    finally:
        upstream.uninstrument()
    (send,) = send_spans(h)
    (lpush,) = [s for s in h.spans() if s.name == "LPUSH"]
    assert lpush.kind == SpanKind.CLIENT and lpush.parent.span_id == send.context.span_id
    brpops = [s for s in h.spans() if s.name == "BRPOP"]
    assert len(brpops) == 2  # one per command, the empty one included
    (process,) = by_kind(h, attr.OP_QUEUE_PROCESS)
    # the next BRPOP is not part of processing the previous message
    assert all(s.parent is None or s.parent.span_id != process.context.span_id for s in brpops)


def test_redis_down_errors_reach_the_app_unchanged_and_mark_spans(env, redis_server):  # noqa: F811
    h, _ = env
    r = redis.Redis.from_url(redis_server.url, socket_timeout=0.3)
    r.lpush(Q, JSON_MSG)
    # a socket timeout shorter than the blocking pop
    with pytest.raises(redis.TimeoutError):
        r.brpop("email_idle", timeout=5)
    redis_server.stop()
    with pytest.raises(redis.ConnectionError) as sent:
        r.lpush(Q, JSON_MSG)
    with pytest.raises(redis.ConnectionError):
        r.brpop(Q, timeout=1)
    pipe = r.pipeline()
    pipe.rpush(Q, b'{"p":1}').rpop(Q)
    with pytest.raises(redis.ConnectionError):
        pipe.execute()
    # the app's exception object comes from redis-py's own code
    frames = []
    tb = sent.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert "redis" in frames[-1]
    failed = [s for s in h.spans() if s.status.status_code == StatusCode.ERROR]
    names = sorted(s.name for s in failed)
    assert names == ["receive email_idle", "receive email_queue", "receive email_queue",
                     "send email_queue", "send email_queue"]
    assert {s.attributes[attr.ERROR_TYPE] for s in failed} == {
        "redis.exceptions.TimeoutError", "redis.exceptions.ConnectionError"
    }
    assert all(s.events and s.events[0].name == "exception" for s in failed)
    r.close()


def test_suppressed_instrumentation_sends_plainly_but_still_strips(env):
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    h, r = env
    r.lpush(Q, JSON_MSG)
    with suppress_instrumentation():
        r.lpush(Q, b'{"plain": true}')
        assert r.rpop(Q) == JSON_MSG
    assert stored(r, Q) == [b'{"plain": true}']
    assert [s.name for s in h.spans()] == ["send email_queue"]


class _BrokenTracer:
    def start_span(self, *args, **kwargs):
        raise RuntimeError("mailscope bug")

    start_as_current_span = start_span


class _BrokenProvider:
    def get_tracer(self, *args, **kwargs):
        return _BrokenTracer()


def test_wrapper_failures_never_change_what_the_app_gets(env, caplog):
    h, r = env
    h.instrument(_BrokenProvider())
    try:
        with caplog.at_level(logging.ERROR, logger="mailscope"):
            assert r.lpush(Q, JSON_MSG, TEXT_MSG) == 2
            assert stored(r, Q) == [TEXT_MSG, JSON_MSG]  # no envelope without a send span
            r.execute_command("LPUSH", Q, compact({"z": 1, "_mailscope": {"enqueued_at": time.time()}}))
            assert r.brpop(Q, timeout=1) == (Q.encode(), JSON_MSG)
            assert r.brpop(Q, timeout=1) == (Q.encode(), TEXT_MSG)
            # stripping does not depend on tracing: the app still gets its payload
            assert json.loads(r.rpop(Q)) == {"z": 1}
            pipe = r.pipeline()
            assert pipe.rpush(Q, b"1").rpop(Q).execute() == [1, b"1"]
            for n in range(3):
                r.lpush(Q, b"%d" % n)
                assert r.brpop(Q, timeout=1)[1] == b"%d" % n
    finally:
        h.instrument()
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors, "the failure is logged"
    # logged once per place, however often it happens
    assert len(errors) == len({rec.getMessage() for rec in errors}) <= 4


def test_creation_context_from_an_envelope():
    from mailscope.instrumentation.queue.telemetry import _creation

    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ctx = _creation({"traceparent": tp, "tracestate": "vendor=a", "enqueued_at": 1.0})
    assert (ctx.trace_id, ctx.span_id, ctx.trace_flags, ctx.is_remote) == (
        0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 1, True
    )
    assert ctx.trace_state.to_header() == "vendor=a"
    # a later traceparent version still parses by the W3C rules; invalid ids do not
    assert _creation({"traceparent": "cc-" + tp[3:] + "-future"}).span_id == 0xB7AD6B7169203331
    assert _creation({"traceparent": "00-" + "0" * 32 + tp[35:]}) is None
    assert _creation({"traceparent": "not-a-traceparent"}) is None
    assert _creation({"enqueued_at": 1.0}) is None

"""Queue depth and oldest-age gauges in-process, read from a real redis-server."""

from __future__ import annotations

import json
import logging
import time

import pytest
import redis

from mailscope import attributes as attr
from mailscope.instrumentation.queue import gauges as queue_gauges
from mailscope.metrics import DESTINATION_LABELS_MAX
from tests.support.queue_harness import QueueHarness
from tests.support.redis_server import RedisServer

Q = "email_queue"
DEPTH, AGE = attr.METRIC_QUEUE_DEPTH, attr.METRIC_QUEUE_OLDEST_AGE


@pytest.fixture
def server():
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def make_harness():
    made = []

    def make(**settings):
        harness = QueueHarness(queue_envelope="json", **settings)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def raw_push(server, key, *values):
    """Push without instrumentation (another service, a CLI, a test fixture)."""
    sock = redis.Redis.from_url(server.url)
    try:
        sock.execute_command("RPUSH", key, *values)
    finally:
        sock.close()


def test_depth_and_oldest_age_while_backed_up(server, make_harness, monkeypatch):
    # dead-letter lists do not match the globs: they are found as {queue}_dlq / {queue}:dlq
    h = make_harness(queues="email_queue,bulk_*")
    monkeypatch.setattr(queue_gauges, "SAMPLE_REUSE_S", 0.0)
    r = redis.Redis.from_url(server.url)  # the app's client: the gauges reuse its settings
    before_first = time.time()
    r.lpush(Q, json.dumps({"n": 0}))
    after_first = time.time()
    for n in range(1, 5):
        r.lpush(Q, json.dumps({"n": n}))
    r.lpush(Q, b"plain text")  # newest; the oldest end still carries an envelope
    raw_push(server, "email_queue_dlq", b"dead-1", b"dead-2")  # dead letters written by someone else
    raw_push(server, "email_queue:dlq", json.dumps({"dead": 1}))
    raw_push(server, "bulk_newsletter", b"a", b"b", b"c")  # never touched by this app: found by SCAN
    raw_push(server, "sessions", b"x")  # not a queue
    raw_push(server, "sessions_dlq", b"x")  # not the dead letters of a queue
    r.hset("bulk_settings", "a", 1)  # matches, but is not a list

    read_from = time.time()
    depth = h.gauge(DEPTH)
    age = h.gauge(AGE)
    read_to = time.time()
    assert depth == {Q: 6, "email_queue_dlq": 2, "email_queue:dlq": 1, "bulk_newsletter": 3}
    assert read_from - after_first <= age[Q] <= read_to - before_first
    assert "bulk_newsletter" not in age  # no envelope on either end: no age
    assert set(age) <= {Q, "email_queue_dlq", "email_queue:dlq"}

    # the worker drains three; then everything
    for _ in range(3):
        r.brpop(Q, timeout=1)
    assert h.gauge(DEPTH)[Q] == 3
    while r.rpop(Q) is not None:
        pass
    r.delete("email_queue_dlq")
    depth, age = h.gauge(DEPTH), h.gauge(AGE)
    # known queues that emptied report 0 instead of vanishing from dashboards
    assert depth[Q] == 0 and depth["email_queue_dlq"] == 0
    assert age[Q] == 0.0
    r.close()


def test_gauge_reads_add_no_spans_even_with_upstream_redis_instrumentation(server, make_harness):
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    h = make_harness(queues="email_*")
    r = redis.Redis.from_url(server.url)
    r.lpush(Q, b'{"a":1}')
    upstream = RedisInstrumentor()
    upstream.instrument(tracer_provider=h.tracer_provider)
    try:
        h.clear()
        assert h.gauge(DEPTH) == {Q: 1}
        assert h.spans() == []
        r.llen(Q)  # the app's own commands are still traced
        assert [s.name for s in h.spans()] == ["LLEN"]
    finally:
        upstream.uninstrument()
    r.close()


def test_redis_url_setting_without_any_app_client(server, make_harness):
    raw_push(server, "email_digest", json.dumps({"a": 1}))
    h = make_harness(queues="email_*", queue_redis_url=server.url)
    assert h.gauge(DEPTH) == {"email_digest": 1}


def test_redis_down_one_warning_no_values_then_back(server, make_harness, monkeypatch, caplog):
    monkeypatch.setattr(queue_gauges, "BACKOFF_S", 0.0)
    monkeypatch.setattr(queue_gauges, "SAMPLE_REUSE_S", 0.0)
    h = make_harness(queues="email_*")
    r = redis.Redis.from_url(server.url)
    r.lpush(Q, b'{"a":1}', b'{"a":2}')
    assert h.gauge(DEPTH) == {Q: 2}
    server.stop()
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        for _ in range(4):
            # no zeros that would read as a drained queue, no repeats of the last value
            assert h.gauge(DEPTH) == {}
            assert h.gauge(AGE) == {}
    warnings = [rec for rec in caplog.records if "cannot read Redis" in rec.getMessage()]
    assert len(warnings) == 1
    server.start()  # same port, empty (no persistence)
    assert h.gauge(DEPTH) == {Q: 0}
    r.lpush(Q, b'{"a":3}')
    assert h.gauge(DEPTH) == {Q: 1}
    r.close()


def test_blackholed_redis_backs_off(server, make_harness, monkeypatch):
    """A failed read is not retried at every collection: the backoff keeps collections short."""
    monkeypatch.setattr(queue_gauges, "SAMPLE_REUSE_S", 0.0)
    h = make_harness(queues="email_*")
    r = redis.Redis.from_url(server.url)
    r.lpush(Q, b"1")
    assert h.gauge(DEPTH) == {Q: 1}
    gauges = next(iter(g for _, _, g in _all_gauges() if g.active and g._client is not None))
    attempts = []
    real_collect = gauges._collect
    monkeypatch.setattr(gauges, "_collect", lambda: attempts.append(1) or real_collect())
    server.stop()
    for _ in range(5):
        h.gauge(DEPTH)
    assert len(attempts) == 1  # then BACKOFF_S of silence
    r.close()


def _all_gauges():
    from mailscope.instrumentation import queue as queue_module

    return list(queue_module._gauges.values())


def test_destination_labels_are_capped(server, make_harness):
    h = make_harness(queues="email_*")
    r = redis.Redis.from_url(server.url)
    total = DESTINATION_LABELS_MAX + 5
    pipe = r.pipeline()
    for n in range(total):
        pipe.rpush(f"email_q{n:03d}", b"x")
    pipe.execute()
    depth = h.gauge(DEPTH)
    assert len(depth) == DESTINATION_LABELS_MAX + 1
    assert depth[attr.LABEL_OVERFLOW] == total - DESTINATION_LABELS_MAX
    assert sum(depth.values()) == total
    r.close()


def test_unit_helpers():
    assert queue_gauges.redis_pattern("email_[!x]*") == "email_[^x]*"
    assert queue_gauges.age_of(None, 10.0) is None
    assert queue_gauges.age_of(4.0, 10.0) == 6.0
    assert queue_gauges.age_of(12.0, 10.0) == 0.0
    assert queue_gauges.age_of(10.0 + 301, 10.0) is None

"""Observable gauges `mailscope.queue.depth` and `mailscope.queue.oldest_age`.

Which Redis: `MAILSCOPE_QUEUE_REDIS_URL` when set; otherwise the connection
settings of the client the app used for a queue command, or else of the first
client the app created. mailscope opens its own small connection with those
settings (short socket timeouts, no retries) instead of borrowing the app's: a
collection then never blocks longer than `TIMEOUT_S` per round trip and never
takes a connection out of the app's pool. Its commands run with instrumentation
suppressed, so collections add no spans.

Which queues: every key the app used as a queue, plus list keys matching
`MAILSCOPE_QUEUES` found by an incremental SCAN (a bounded number of steps per
collection, repeated every `SCAN_INTERVAL_S`), plus their dead-letter lists
`{queue}_dlq` and `{queue}:dlq` once present. A known queue that empties keeps
reporting depth 0 (Redis deletes empty lists; a drained queue must not vanish
from dashboards). At most `MAX_TRACKED` keys are tracked; labels beyond
`DESTINATION_LABELS_MAX` are reported as `other` (depths summed, oldest age max).

Oldest age: from `enqueued_at` in the envelope of the message at either end of
the list (a FIFO list's oldest message is at one end), now minus the older one,
clamped at 0; timestamps more than 5 minutes in the future are unusable and
skipped. 0 for an empty queue; absent when neither end carries an envelope.

Redis down: one warning, then no observations at all (no zeros that would look
like a drained queue, no stale repeats) until a read succeeds again; retries are
spaced by `BACKOFF_S` so a black-holed server cannot slow every collection.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry.metrics import Observation

from mailscope import attributes as attr
from mailscope._safety import internal_error, log_once
from mailscope.locks import owned_lock
from mailscope.instrumentation.queue import envelope
from mailscope.metrics import DESTINATION_LABELS_MAX, LabelCap

logger = logging.getLogger("mailscope")

TIMEOUT_S = 0.5
BACKOFF_S = 5.0
SCAN_INTERVAL_S = 30.0
SCAN_STEPS = 10  # SCAN calls per collection (each COUNT SCAN_COUNT)
SCAN_COUNT = 1000
MAX_TRACKED = 1000
SAMPLE_REUSE_S = 0.25  # the two gauges of one collection share one read
FUTURE_LIMIT_S = 300.0
DLQ_SUFFIXES = ("_dlq", ":dlq")

# connection settings carried over from the app's client (sync and asyncio alike)
_CARRIED = (
    "host", "port", "db", "username", "password", "path", "credential_provider",
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path",
    "ssl_check_hostname", "ssl_password",
)


def redis_pattern(glob: str) -> str:
    """fnmatch glob -> Redis MATCH pattern (`[!x]` is `[^x]` in Redis)."""
    return glob.replace("[!", "[^")


def age_of(enqueued: float | None, now: float) -> float | None:
    """Seconds since `enqueued`, clamped at 0; None when unknown or more than 5 min in the future."""
    if enqueued is None:
        return None
    age = now - enqueued
    if age < -FUTURE_LIMIT_S:
        return None
    return max(0.0, age)


class QueueGauges:
    def __init__(self, instruments, globs, redis_url: str | None = None):
        self.globs = globs
        self.redis_url = redis_url
        self.active = True
        self._source = None  # (kwargs, ssl) of the app's client
        self._source_used = False  # from a queue command (preferred over creation)
        self._client = None
        self._known: dict[str, bool] = {}  # key -> is a dead-letter list
        self._cap = LabelCap(DESTINATION_LABELS_MAX)
        # building our client runs the Redis.__init__ hook (an RLock); held across the Redis reads of a
        # collection, so a worker forked meanwhile gets it back unlocked (mailscope/locks.py)
        self._lock = owned_lock(self, threading.RLock)
        self._sample = None  # (monotonic, depths, ages)
        self._retry_at = 0.0
        self._down = False
        self._next_scan = 0.0
        self._cursors: dict[str, int] = {}
        instruments.observable_gauge(
            attr.METRIC_QUEUE_DEPTH, [self._observe_depth], description="Messages waiting in the queue (LLEN)",
        )
        instruments.observable_gauge(
            attr.METRIC_QUEUE_OLDEST_AGE, [self._observe_age], unit="s",
            description="Age of the oldest message in the queue, from its envelope's enqueue time",
        )

    # --- what the instrumentor tells us -----------------------------------------
    def configure(self, globs, redis_url):
        with self._lock:
            self.globs = globs
            if redis_url != self.redis_url:
                self.redis_url = redis_url
                self._client = None
            self.active = True

    def note_queue(self, key: str) -> None:
        if key not in self._known and len(self._known) < MAX_TRACKED:
            self._known[key] = False

    def note_client(self, client, used: bool) -> None:
        """Remember the app's connection settings: the first client created, or used for a queue."""
        if self._source_used or (self._source is not None and not used):
            return
        source = _connection_settings(client)
        if source is None:
            return
        with self._lock:
            if self._source_used or (self._source is not None and not used):
                return
            changed = source != self._source
            self._source, self._source_used = source, used
            if changed and self.redis_url is None:
                self._client = None

    # --- collection ---------------------------------------------------------------
    def _observe_depth(self, options=None):
        sample = self._read()
        if sample is None:
            return []
        return [Observation(value, {attr.MESSAGING_DESTINATION_NAME: label}) for label, value in sample[1].items()]

    def _observe_age(self, options=None):
        sample = self._read()
        if sample is None:
            return []
        return [Observation(value, {attr.MESSAGING_DESTINATION_NAME: label}) for label, value in sample[2].items()]

    def _read(self):
        if not self.active:
            return None
        try:
            with self._lock:
                now = time.monotonic()
                if self._sample is not None and now - self._sample[0] < SAMPLE_REUSE_S:
                    return self._sample
                self._sample = None
                if now < self._retry_at:
                    return None
                sample = self._collect()
                if sample is not None:
                    self._sample = (time.monotonic(), *sample)
                return self._sample
        except Exception:
            internal_error("queue gauges")
            return None

    def _collect(self):
        import redis
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        client = self._redis()
        if client is None:
            return None
        try:
            with suppress_instrumentation():
                self._scan(client)
                return self._measure(client)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._retry_at = time.monotonic() + BACKOFF_S
            if not self._down:
                self._down = True
                log_once(
                    "queue-gauges:down",
                    "mailscope: queue gauges cannot read Redis (%s); they report nothing until it is reachable",
                    type(exc).__name__,
                )
            return None

    def _redis(self):
        if self._client is not None:
            return self._client
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        common = dict(
            socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, retry=Retry(NoBackoff(), 0),
            health_check_interval=0, max_connections=2, decode_responses=False, client_name=None,
        )
        if self.redis_url is not None:
            pool = redis.ConnectionPool.from_url(self.redis_url, **common)
        elif self._source is not None:
            kwargs, ssl = self._source
            connection_class = (
                redis.UnixDomainSocketConnection if "path" in kwargs
                else redis.SSLConnection if ssl else redis.Connection
            )
            pool = redis.ConnectionPool(connection_class=connection_class, **kwargs, **common)
        else:
            return None
        self._client = redis.Redis(connection_pool=pool)
        return self._client

    def _scan(self, client) -> None:
        import redis

        now = time.monotonic()
        if now < self._next_scan or self.globs is None:
            return
        finished = True
        for pattern in self.globs.patterns:
            cursor = self._cursors.get(pattern, 0)
            for _ in range(SCAN_STEPS):
                try:
                    cursor, keys = client.scan(cursor, match=redis_pattern(pattern), count=SCAN_COUNT, _type="list")
                except redis.ResponseError:  # a server without SCAN TYPE
                    cursor, keys = client.scan(cursor, match=redis_pattern(pattern), count=SCAN_COUNT)
                for key in keys:
                    name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                    if self.globs.matches(name):
                        self.note_queue(name)
                if cursor == 0:
                    break
            self._cursors[pattern] = cursor
            finished = finished and cursor == 0
        # a finished pass waits for the next interval; an unfinished one resumes next collection
        self._next_scan = now + SCAN_INTERVAL_S if finished else 0.0

    def _measure(self, client):
        names = list(self._known)
        probes = [
            name + suffix
            for name in names if not self._known[name] and not name.endswith(DLQ_SUFFIXES)
            for suffix in DLQ_SUFFIXES
            if name + suffix not in self._known
        ]
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
            pipe.lindex(name, 0)
            pipe.lindex(name, -1)
        for name in probes:
            pipe.llen(name)
        replies = pipe.execute(raise_on_error=False)
        if self._down:
            self._down = False
            logger.info("mailscope: queue gauges read Redis again")
        now = time.time()
        depths: dict[str, int] = {}
        ages: dict[str, float] = {}
        for i, name in enumerate(names):
            depth, first, last = replies[3 * i: 3 * i + 3]
            if isinstance(depth, Exception):
                if isinstance(depth, (ConnectionError, TimeoutError, OSError)) or _is_connection_error(depth):
                    raise depth
                self._known.pop(name, None)  # not a list (any more)
                continue
            self._add(name, int(depth), self._oldest_age(int(depth), first, last, now), depths, ages)
        offset = 3 * len(names)
        for j, name in enumerate(probes):
            depth = replies[offset + j]
            if isinstance(depth, int) and depth > 0 and len(self._known) < MAX_TRACKED:
                self._known[name] = True
                # its ends are read from the next collection on; depth is known now
                self._add(name, depth, None, depths, ages)
        return depths, ages

    def _add(self, name, depth, age, depths, ages) -> None:
        label = self._cap(name)
        depths[label] = depths.get(label, 0) + depth
        if age is not None:
            ages[label] = max(ages.get(label, 0.0), age)

    @staticmethod
    def _oldest_age(depth: int, first, last, now: float):
        if depth == 0:
            return 0.0
        times = [envelope.enqueued_at(envelope.strip(end)[1]) for end in (first, last) if isinstance(end, bytes)]
        times = [t for t in times if t is not None and t - now <= FUTURE_LIMIT_S]
        return age_of(min(times), now) if times else None

    def shutdown(self) -> None:
        with self._lock:
            self.active = False
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass


def _is_connection_error(exc) -> bool:
    import redis

    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))


_CONNECTION_CLASSES = ("Connection", "SSLConnection", "UnixDomainSocketConnection")


def _connection_settings(client):
    """(kwargs, ssl) of a redis-py client's pool, or None for clients we cannot mirror (cluster, sentinel)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return None
    cls = getattr(pool, "connection_class", None)
    # the nearest redis-py connection class among its bases (libraries such as kombu subclass them)
    name = next(
        (c.__name__ for c in getattr(cls, "__mro__", ()) if c.__name__ in _CONNECTION_CLASSES
         and c.__module__.startswith("redis.")),
        None,
    )
    if name is None:
        log_once(
            "queue-gauges:client",
            "mailscope: queue gauges cannot reuse a %s connection; set MAILSCOPE_QUEUE_REDIS_URL",
            getattr(cls, "__name__", "custom"),
        )
        return None
    carried = {k: kwargs[k] for k in _CARRIED if k in kwargs}
    if name == "UnixDomainSocketConnection":
        carried.pop("host", None)
        carried.pop("port", None)
    return carried, name == "SSLConnection"

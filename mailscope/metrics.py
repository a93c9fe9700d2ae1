"""mailscope's metric instruments, created once, and the label caps that keep them bounded.

Instruments come from the global MeterProvider through the API's proxy meter,
so they can be created before the SDK is configured and start recording as soon
as it is. Every high-variety label goes through a `LabelCap`, which admits the
first `limit` distinct values and maps the rest to `other`.
"""

from __future__ import annotations

import weakref

from opentelemetry import metrics

from mailscope import attributes as attr
from mailscope.version import __version__
from mailscope.locks import module_lock, owned_lock
from mailscope.processors.redact import might_contain_address, redact
from mailscope.config import settings

# caps for labels that are not configured by a contract variable
TEMPLATE_NAME_LABELS_MAX = 200
DESTINATION_LABELS_MAX = 100
PROVIDER_LABELS_MAX = 20

# explicit histogram buckets: seconds from 1 ms to 60 s, and bytes of RSS growth.
# OTel histograms take non-negative values only (the SDK drops a negative one with a
# warning), so mailscope.memory.delta records the spans that grew RSS; the signed
# change of every measured span stays on its span attribute.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
QUEUE_WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
MEMORY_BUCKETS_BYTES = (
    0, 4_096, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456, 1_073_741_824,
)


class LabelCap:
    """Admit the first `limit` distinct values of a label; later ones become `other`.

    A value holding an email address is counted, and returned, in its redacted form
    (MAILSCOPE_REDACT), so per-recipient values (`email_queue:<address>`) share one slot
    instead of using up the cap before collection-time redaction would merge them.
    Only such values pay for the redaction, on each call: the cap never remembers them.
    """

    __slots__ = ("limit", "_seen", "_lock", "__weakref__")

    def __init__(self, limit: int):
        self.limit = max(1, int(limit))
        self._seen: set = set()
        self._lock = owned_lock(self)

    def __call__(self, value):
        if value in self._seen:
            return value
        if isinstance(value, str) and might_contain_address(value):
            value = redact(value, settings().redact)
            if value in self._seen:
                return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return attr.LABEL_OVERFLOW
            self._seen.add(value)
            return value

    def __len__(self) -> int:
        return len(self._seen)


class Tally:
    """A monotonic counter for hot paths, exported as an ObservableCounter.

    `add(amount, attributes)` (Counter.add's signature) only updates an
    in-process total under a lock, a fraction of a microsecond where the SDK's
    Counter.add costs about as much as starting a span; the totals are reported
    when metrics are collected. The exported data is the same cumulative
    monotonic sum a Counter produces. At most `limit` label sets are kept; later
    ones are counted under a label set whose values are all `other`.
    """

    def __init__(self, meter, name: str, description: str = "", unit: str = "", limit: int = 64):
        self.limit = limit
        self._totals: dict = {}
        self._lock = owned_lock(self)
        meter.create_observable_counter(name, callbacks=[self._observe], unit=unit, description=description)

    def add(self, amount, attributes=None) -> None:
        key = tuple(attributes.items()) if attributes else ()
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                if len(self._totals) >= self.limit:
                    key = tuple((k, attr.LABEL_OVERFLOW) for k, _ in key)
                    entry = self._totals.get(key)
                if entry is None:
                    entry = self._totals[key] = [dict(key), 0]
            entry[1] += amount

    def _observe(self, _options=None):
        with self._lock:
            snapshot = [(labels, total) for labels, total in self._totals.values()]
        return [metrics.Observation(total, labels) for labels, total in snapshot]


_TALLY_DESCRIPTIONS = {
    attr.METRIC_TEMPLATE_CACHE: "Template loads by cache outcome",
    attr.METRIC_RECIPIENTS: "Envelope recipients by outcome",
}
# Instrumentors given their own meter provider get one Tally per (provider, name), shared by
# later instrument() calls: the SDK hands a re-registered observable instrument back with its
# first callback, so a second Tally would count into the void.
_provider_tallies: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # bounded by live providers
_provider_tallies_lock = module_lock()


def tally_for(meter_provider, name: str) -> Tally:
    """The Tally for metric `name` on `meter_provider` (None or the global one: mailscope's own)."""
    if meter_provider is None or meter_provider is metrics.get_meter_provider():
        inst = instruments()
        return inst.template_cache if name == attr.METRIC_TEMPLATE_CACHE else inst.recipients
    with _provider_tallies_lock:
        try:
            per_provider = _provider_tallies.setdefault(meter_provider, {})
        except TypeError:  # not weak-referenceable: not shared
            per_provider = {}
        tally = per_provider.get(name)
        if tally is None:
            meter = metrics.get_meter("mailscope", __version__, meter_provider)
            tally = per_provider[name] = Tally(meter, name, description=_TALLY_DESCRIPTIONS[name])
        return tally


# delivery events: seconds from a send to its provider's event (minutes to days)
DELIVERY_LATENCY_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
                              86400.0, 259200.0)


class DeliveryInstruments:
    """The delivery receiver's metrics: events and rejected requests (Tallies, labels from fixed
    sets: provider path, status, error category, reason) and the latency histogram."""

    def __init__(self, meter):
        self.events = Tally(meter, attr.METRIC_DELIVERY_EVENTS, description="Provider delivery events")
        self.rejected = Tally(meter, attr.METRIC_DELIVERY_REJECTED,
                              description="Webhook requests the delivery receiver rejected")
        self.latency = meter.create_histogram(
            attr.METRIC_DELIVERY_LATENCY, unit="s", description="Time from a send to its provider's event",
            explicit_bucket_boundaries_advisory=DELIVERY_LATENCY_BUCKETS_S,
        )


_delivery: dict = {}  # meter provider (None: the global one) -> DeliveryInstruments
_delivery_lock = module_lock()


def delivery_instruments(meter_provider=None) -> DeliveryInstruments:
    """One set per meter provider (the SDK hands a re-registered observable instrument back
    with its first callback, so a second set would count into the void)."""
    with _delivery_lock:
        found = _delivery.get(id(meter_provider))
        if found is None or found[0] is not meter_provider:
            if len(_delivery) >= 16:  # test suites make many providers; keep the table bounded
                _delivery.pop(next(iter(_delivery)))
            meter = metrics.get_meter("mailscope", __version__, meter_provider)
            found = _delivery[id(meter_provider)] = (meter_provider, DeliveryInstruments(meter))
        return found[1]


class Instruments:
    """Lazily created instruments (one set per process)."""

    def __init__(self, meter=None):
        self._meter = meter or metrics.get_meter("mailscope", __version__)
        m = self._meter
        self.operation_duration = m.create_histogram(
            attr.METRIC_OPERATION_DURATION, unit="s", description="Duration of mailscope operations",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        # one add per template load: a Tally keeps the hot path cheap
        self.template_cache = Tally(m, attr.METRIC_TEMPLATE_CACHE, description="Template loads by cache outcome")
        # one or two adds per send: a Tally keeps the send path cheap
        self.recipients = Tally(m, attr.METRIC_RECIPIENTS, description="Envelope recipients by outcome")
        self.queue_wait = m.create_histogram(
            attr.METRIC_QUEUE_WAIT, unit="s", description="Time messages spent in the queue",
            explicit_bucket_boundaries_advisory=QUEUE_WAIT_BUCKETS_S,
        )
        # one add per slow or failed span: Tallies keep an incident (an error storm, a slowdown
        # of everything) from costing an SDK Counter.add per span; room for every label set the
        # stages' LabelCaps admit, so the caps' `other` is what overflows
        config = settings()
        self.slow_operations = Tally(
            m, attr.METRIC_SLOW_OPERATIONS, description="Spans marked slow",
            limit=2 * (config.max_tracked_names + 1),  # span.name x reason
        )
        self.errors = Tally(
            m, attr.METRIC_ERRORS, description="Error spans by category and fingerprint",
            limit=4 * (config.error_patterns_max + 1),  # fingerprint, with its category and retryable
        )
        self.memory_delta = m.create_histogram(
            attr.METRIC_MEMORY_DELTA, unit="By", description="Resident memory growth over spans that grew it",
            explicit_bucket_boundaries_advisory=MEMORY_BUCKETS_BYTES,
        )

    def observable_gauge(self, name, callbacks, unit="", description=""):
        return self._meter.create_observable_gauge(name, callbacks=callbacks, unit=unit, description=description)


# The process's resident memory, under its semantic-convention name: Prometheus sees
# process_memory_usage_bytes whether it scrapes the service or a Collector's exporter, so the
# dashboard's memory panel and alert work in both deployments (prometheus_client's own
# process_resident_memory_bytes exists only on a service's /metrics).
PROCESS_MEMORY_USAGE = "process.memory.usage"
_process_memory = None


def observe_process_memory() -> None:
    """Register the `process.memory.usage` gauge once per process, read at each collection."""
    global _process_memory
    with _lock:
        if _process_memory is not None:
            return
        from mailscope.processors.rss import RssReader

        reader = RssReader()

        def observe(_options=None):
            try:
                return [metrics.Observation(reader.read())]
            except Exception:
                return []

        meter = metrics.get_meter("mailscope", __version__)
        _process_memory = meter.create_observable_gauge(
            PROCESS_MEMORY_USAGE, callbacks=[observe], unit="By",
            description="The amount of physical memory in use (resident set size)",
        )


_instruments: Instruments | None = None
_lock = module_lock()


def instruments() -> Instruments:
    global _instruments
    inst = _instruments
    if inst is None:
        with _lock:
            if _instruments is None:
                _instruments = Instruments()
            inst = _instruments
    return inst

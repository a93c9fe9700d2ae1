"""Log redaction: OTel log records leave the process without email addresses.

With the logs signal on (`OTEL_LOGS_EXPORTER`, and a logging handler: the one
of opentelemetry-instrumentation-logging, or the SDK's deprecated one through
`OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true`), every log record goes
through `RedactingLogRecordProcessor` before the exporter's BatchLogRecordProcessor
sees it. mailscope's configurator installs it as the SDK's
`export_log_record_processor`, so each log exporter gets one.

What is redacted, with the rules and mode of spans (`MAILSCOPE_REDACT`):
- the body: the formatted message with its args interpolated (or the object an
  app logged: strings, bytes, items of sequences, keys and values of mappings);
- every attribute key and value: `extra=` fields, `code.*`, and the exception's
  `exception.message` and `exception.stacktrace`;
- the event name.
The resource is the provider's, built redacted at start-up (mailscope/resource.py).

The app's own record is never changed: a record holding an address is handed on
as a redacted copy. A record that cannot be redacted is dropped (one error is
logged) rather than exported unredacted.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from mailscope._safety import internal_error
from mailscope.processors.redact import MODES, might_contain_address, redact
from mailscope.resource import redact_value

_MISSING = object()


def _redacted_attributes(attributes, mode: str):
    """A new dict with keys and values redacted, or None when nothing changed."""
    if not attributes:
        return None
    out = {}
    changed = False
    for key, value in attributes.items():
        new_key = redact(key, mode) if isinstance(key, str) and might_contain_address(key) else key
        new_value = redact_value(value, mode)
        changed = changed or new_key != key or new_value is not value
        out[new_key] = new_value
    return out if changed else None


def redacted_record(log_record, mode: str):
    """`log_record` (an SDK ReadWriteLogRecord), or a redacted copy when it holds an address."""
    record = log_record.log_record
    body = redact_value(record.body, mode) if record.body is not None else None
    attributes = _redacted_attributes(record.attributes, mode)
    event_name = getattr(record, "event_name", None)
    new_event_name = redact(event_name, mode) if isinstance(event_name, str) else event_name
    if body is record.body and attributes is None and new_event_name == event_name:
        return log_record
    copied = copy.copy(record)
    copied.body = body
    if attributes is not None:
        copied.attributes = attributes
    if new_event_name != event_name:
        copied.event_name = new_event_name
    return replace(log_record, log_record=copied)


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Redact each record, then hand it to `downstream` (normally the exporter's BatchLogRecordProcessor)."""

    def __init__(self, downstream: LogRecordProcessor, mode: str = "domain"):
        if mode not in MODES:
            raise ValueError(f"unknown redaction mode {mode!r}")
        self.downstream = downstream
        self.mode = mode

    def on_emit(self, log_record) -> None:
        try:
            redacted = redacted_record(log_record, self.mode)
        except Exception:
            internal_error("log redaction (records that fail it are not exported)")
            return
        self.downstream.on_emit(redacted)

    def enabled(self, **kwargs) -> bool:
        return self.downstream.enabled(**kwargs)

    def shutdown(self) -> None:
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.downstream.force_flush(timeout_millis)


def redacting_log_processor(mode: str):
    """The SDK's `export_log_record_processor` factory: a batch processor per exporter, behind redaction."""

    def factory(exporter):
        from mailscope.exporters import export_locks

        export_locks.guard_exporter(exporter)
        batch = BatchLogRecordProcessor(exporter)
        return batch if mode == "off" else RedactingLogRecordProcessor(batch, mode)

    return factory

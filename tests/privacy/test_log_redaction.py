"""Log records are redacted before any log exporter sees them: the SDK's LoggerProvider and logging handler."""

import logging

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from mailscope.exporters import log_redaction
from mailscope.exporters.log_redaction import redacting_log_processor


@pytest.fixture
def emit():
    """Log through a real LoggerProvider with mailscope's export processor; returns the exported records."""
    made = []

    def run(mode, body):
        provider = LoggerProvider()
        exporter = InMemoryLogRecordExporter()
        provider.add_log_record_processor(redacting_log_processor(mode)(exporter))
        handler = LoggingHandler(logger_provider=provider)
        log = logging.getLogger(f"app.{len(made)}")
        log.propagate = False
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        made.append((log, handler))
        body(log, provider)
        provider.force_flush()
        provider.shutdown()
        return [r.log_record for r in exporter.get_finished_logs()]

    yield run
    for log, handler in made:
        log.removeHandler(handler)


def _everything(log, provider):
    log.info("sending to %s via %s", "ann@example.org", "relay", extra={"rcpt": "bob@example.org", "n": 2})
    log.warning("plain line", extra={"rcpts": ["a@example.org", "plain"], "ann@example.org": "key"})
    try:
        raise ValueError("refused {'cid@example.org': (550, b'5.1.1 <cid@example.org> unknown')}")
    except ValueError:
        log.exception("send failed for dan@example.org")
    provider.get_logger("direct").emit(body={"to": "eve@example.org", "ids": [1, "fay@example.org"]},
                                       event_name="sent to gus@example.org")


def _text(records) -> str:
    return "\n".join(f"{r.body!r} {dict(r.attributes)!r} {r.event_name!r}" for r in records)


def test_body_args_extra_exception_and_event_name_are_redacted(emit):
    records = emit("domain", _everything)
    assert len(records) == 4
    text = _text(records)
    for local in ("ann@", "bob@", "a@example", "cid@", "dan@", "eve@", "fay@", "gus@"):
        assert local not in text
    first, second, failed, direct = records
    assert first.body == "sending to <redacted>@example.org via relay"
    assert first.attributes["rcpt"] == "<redacted>@example.org" and first.attributes["n"] == 2
    assert tuple(second.attributes["rcpts"]) == ("<redacted>@example.org", "plain")
    assert second.attributes["<redacted>@example.org"] == "key"
    assert "<redacted>@example.org" in failed.attributes["exception.message"]
    assert "<redacted>@example.org" in failed.attributes["exception.stacktrace"]
    assert failed.attributes["exception.type"] == "ValueError"
    assert direct.body == {"to": "<redacted>@example.org", "ids": (1, "<redacted>@example.org")}
    assert direct.event_name == "sent to <redacted>@example.org"


def test_full_mode_masks_domains_and_off_exports_as_logged(emit):
    full = _text(emit("full", _everything))
    assert "example.org" not in full and "<redacted>@<redacted>" in full
    off = _text(emit("off", _everything))
    assert "ann@example.org" in off and "cid@example.org" in off


def test_the_apps_own_record_is_not_changed(emit):
    from opentelemetry._logs import LogRecord

    record = LogRecord(body="to ann@example.org", attributes={"to": "bob@example.org"})
    (exported,) = emit("domain", lambda log, provider: provider.get_logger("x").emit(record))
    assert exported.body == "to <redacted>@example.org" and exported.attributes["to"] == "<redacted>@example.org"
    assert record.body == "to ann@example.org" and dict(record.attributes) == {"to": "bob@example.org"}


def test_a_record_that_cannot_be_redacted_is_not_exported(emit, monkeypatch, caplog):
    def broken(value, mode):
        raise RuntimeError("boom")

    monkeypatch.setattr(log_redaction, "redact_value", broken)
    assert emit("domain", lambda log, provider: log.info("to ann@example.org")) == []
    assert "log redaction" in caplog.text

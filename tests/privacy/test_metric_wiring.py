"""The SDK's MeterProvider is redacting before it becomes the global one, and the log file variable is wired."""

import opentelemetry.sdk._configuration as sdk_configuration
from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mailscope.bootstrap import _redacting_meter_provider, exporter_args_map
from mailscope.config import load_settings


def test_readers_are_wrapped_before_the_provider_is_set(monkeypatch):
    handed_over = []

    def record(provider):  # stands in for the API's set_meter_provider: this process keeps its global
        handed_over.append([getattr(r, "_mailscope_redactor", None) for r in provider._metric_readers])

    monkeypatch.setattr(sdk_configuration, "set_meter_provider", record)
    with _redacting_meter_provider("domain"):
        sdk_configuration._init_metrics({"memory": InMemoryMetricReader})
    assert sdk_configuration.set_meter_provider is record  # restored
    assert len(handed_over) == 1 and all(r is not None and r.mode == "domain" for r in handed_over[0])

    handed_over.clear()
    with _redacting_meter_provider("off"):
        sdk_configuration._init_metrics({"memory": InMemoryMetricReader})
    assert handed_over == [[None]]


def test_logs_file_goes_to_the_json_file_log_exporter(tmp_path):
    path = tmp_path / "logs" / "out.jsonl"
    args = exporter_args_map(load_settings({"MAILSCOPE_LOGS_FILE": str(path)}))
    assert args[FileLogExporter] == {"path": str(path)} and path.exists()
    assert FileLogExporter not in exporter_args_map(load_settings({}))

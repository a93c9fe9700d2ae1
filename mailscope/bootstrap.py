"""Building the OpenTelemetry SDK with mailscope's pipeline.

Used by the configurator entry point (under `opentelemetry-instrument`) and by
`mailscope.configure()`. The SDK's own `_initialize_components` does the work; we
hand it:
- resource attributes naming the distro, plus redacted overrides of every
  detected resource value holding an email address (mailscope/resource.py);
- `export_span_processor`: a factory that wraps each exporter's
  BatchSpanProcessor in the EnrichingSpanProcessor (spans are read-only in
  on_end, so enrichment forwards a copy); the first of them also runs the
  stages' on_start hooks, so a span costs one mailscope processor call, not two;
- with no span exporter, `span_processors=[EnrichingSpanProcessor(None)]`, so the
  stages still run and record their metrics;
- `export_log_record_processor`: each log exporter's BatchLogRecordProcessor
  behind log redaction (exporters/log_redaction.py);
- exporter arguments the upstream exporters cannot read from the environment
  (the OTLP JSON-file exporters' paths, from MAILSCOPE_TRACES_FILE,
  MAILSCOPE_METRICS_FILE and MAILSCOPE_LOGS_FILE).
Every reader of the SDK's MeterProvider is made to receive redacted collections
(exporters/metric_redaction.py) before the provider becomes the global one:
metric labels never pass through the span pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from mailscope import attributes as attr
from mailscope._safety import internal_error, log_once
from mailscope.config import reload_settings
from mailscope.version import __version__

logger = logging.getLogger("mailscope")

# Defaults the distro sets (each only when the user has not).
OTEL_DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
}

INSTRUMENTOR_ENTRY_POINTS = (
    "mailscope_templates", "mailscope_smtp", "mailscope_queue", "mailscope_operations", "mailscope_providers",
)

_configured = False
_lock = threading.Lock()


def apply_otel_defaults(environ=None) -> None:
    env = os.environ if environ is None else environ
    for key, value in OTEL_DEFAULTS.items():
        env.setdefault(key, value)


def _file_args(path: str | None, variable: str) -> dict:
    """Exporter kwargs for an OTLP JSON-file exporter writing to `path`."""
    if path is None:
        return {}
    try:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        return {"path": path}
    except OSError as exc:
        log_once(
            f"file:{variable}",
            "mailscope: cannot write %s=%r (%s); that signal is discarded",
            variable, path, exc.strerror or exc,
        )
        return {"stream": open(os.devnull, "w", encoding="utf-8")}  # noqa: SIM115 - lives as long as the exporter


def exporter_args_map(config) -> dict:
    from opentelemetry.exporter.otlp.json.file import FileMetricExporter, FileSpanExporter
    from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter  # the entry point's class

    args = {}
    if config.traces_file is not None:
        args[FileSpanExporter] = _file_args(config.traces_file, "MAILSCOPE_TRACES_FILE")
    if config.metrics_file is not None:
        args[FileMetricExporter] = _file_args(config.metrics_file, "MAILSCOPE_METRICS_FILE")
    if config.logs_file is not None:
        args[FileLogExporter] = _file_args(config.logs_file, "MAILSCOPE_LOGS_FILE")
    return args


def build_sdk(auto_instrumentation_version: str | None = None, **setting_overrides):
    """Initialise tracing, metrics and logging through the SDK, with mailscope's pipeline."""
    from opentelemetry.sdk._configuration import _get_exporter_names, _initialize_components

    from mailscope.exporters.log_redaction import redacting_log_processor
    from mailscope.exporters.wiring import enriching_batch_processor
    from mailscope.ids import id_generator_for_sdk
    from mailscope.processors.chain import build_pipeline
    from mailscope.processors.pipeline import EnrichingSpanProcessor
    from mailscope.resource import redacted_resource_attributes

    config = reload_settings(**setting_overrides)
    pipeline = build_pipeline(config)

    span_processors = []
    if not _get_exporter_names("traces"):
        # No span exporter: still run the pipeline so its metrics are recorded.
        span_processors.append(EnrichingSpanProcessor(pipeline, None, start_hooks=pipeline.claim_start_hooks()))

    with _redacting_meter_provider(config.redact):
        _initialize_components(
            auto_instrumentation_version=auto_instrumentation_version,
            resource_attributes=redacted_resource_attributes(
                {attr.DISTRO_NAME: "mailscope", attr.DISTRO_VERSION: __version__}, config.redact
            ),
            id_generator=id_generator_for_sdk(),  # leaves the app's `random` alone (mailscope/ids.py)
            exporter_args_map=exporter_args_map(config),
            span_processors=span_processors,
            export_span_processor=enriching_batch_processor(pipeline),
            export_log_record_processor=redacting_log_processor(config.redact),
        )
    from opentelemetry import metrics

    redact_metric_labels(metrics.get_meter_provider(), config.redact)  # a no-op when already done
    from mailscope.metrics import observe_process_memory

    observe_process_memory()  # process.memory.usage: the dashboard's memory panel, in every deployment
    from mailscope.forks import install as flush_forked_children

    flush_forked_children()  # multiprocessing children would otherwise exit with their spans unexported
    return pipeline


@contextlib.contextmanager
def _redacting_meter_provider(mode: str):
    """While the SDK sets up: its MeterProvider's readers are wrapped before it becomes the global one.

    `_init_metrics` builds the readers and hands the provider to `set_meter_provider`; until
    then no instrument can record into it, so no collection can carry an unredacted label.
    """
    import opentelemetry.sdk._configuration as sdk_configuration

    real = sdk_configuration.set_meter_provider

    def set_redacted(provider):
        redact_metric_labels(provider, mode)
        real(provider)

    sdk_configuration.set_meter_provider = set_redacted
    try:
        yield
    finally:
        sdk_configuration.set_meter_provider = real


def redact_metric_labels(provider, mode: str) -> None:
    """Make every reader of `provider` receive redacted collections; without it nothing is exported."""
    from mailscope.exporters.metric_redaction import install

    try:
        install(provider, mode)
    except Exception:
        internal_error("metric redaction setup")
        # fail closed: a reader that is not wrapped would export labels unredacted
        for reader in getattr(provider, "_metric_readers", None) or ():
            if getattr(reader, "_mailscope_redactor", None) is None:
                reader._receive_metrics = lambda *args, **kwargs: None


def configure_sdk(auto_instrumentation_version: str | None = None) -> bool:
    """The configurator's job. Falls back to the plain SDK if mailscope's part fails."""
    global _configured
    with _lock:
        if _configured:
            return False
        _configured = True
    try:
        build_sdk(auto_instrumentation_version)
        return True
    except Exception:
        internal_error("SDK configuration")
    try:
        from opentelemetry.sdk._configuration import _initialize_components

        _initialize_components(auto_instrumentation_version=auto_instrumentation_version)
    except Exception:
        internal_error("fallback SDK configuration")
    return False


_SDK_KEYS = {
    "service_name": "OTEL_SERVICE_NAME",
    "traces_exporter": "OTEL_TRACES_EXPORTER",
    "metrics_exporter": "OTEL_METRICS_EXPORTER",
}


def configure(instrument: bool = True, **overrides) -> bool:
    """`mailscope.configure()`: the launcher's work, for apps that do not use it."""
    try:
        for key, env_name in _SDK_KEYS.items():
            value = overrides.pop(key, None)
            if value is not None:
                os.environ[env_name] = str(value)
        apply_otel_defaults()
        global _configured
        with _lock:
            if _configured:
                log_once("configure:twice", "mailscope: already configured; configure() call ignored")
                return False
            _configured = True
        try:
            build_sdk(None, **overrides)
        except Exception:
            internal_error("configure()")
            return False
        if instrument:
            instrument_all()
        return True
    except Exception:
        internal_error("configure()")
        return False


def instrument_all() -> None:
    """Instrument with every mailscope instrumentor not disabled the standard way."""
    from importlib.metadata import entry_points

    disabled = {
        name.strip() for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
    }
    for ep in entry_points(group="opentelemetry_instrumentor"):
        if ep.name not in INSTRUMENTOR_ENTRY_POINTS or ep.name in disabled:
            continue
        try:
            instrumentor = ep.load()()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
        except Exception:
            internal_error(f"instrumenting {ep.name}")

"""The `opentelemetry_distro` entry point: OTLP defaults the user can override."""

from __future__ import annotations

from opentelemetry.instrumentation.distro import BaseDistro

from mailscope._safety import internal_error
from mailscope.bootstrap import apply_otel_defaults


class MailscopeDistro(BaseDistro):
    """Sets OTEL_TRACES_EXPORTER/OTEL_METRICS_EXPORTER=otlp and the gRPC protocol unless set."""

    def _configure(self, **kwargs):
        try:
            apply_otel_defaults()
        except Exception:
            internal_error("distro defaults")

"""The `opentelemetry_configurator` entry point: the SDK with mailscope's pipeline."""

from __future__ import annotations

from opentelemetry.sdk._configuration import _BaseConfigurator

from mailscope._safety import internal_error
from mailscope.bootstrap import apply_otel_defaults, configure_sdk


class MailscopeConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs):
        try:
            # When another distro ran instead of ours, its defaults stand; ours
            # only fill what nobody set.
            apply_otel_defaults()
            configure_sdk(kwargs.get("auto_instrumentation_version"))
        except Exception:
            internal_error("configurator")

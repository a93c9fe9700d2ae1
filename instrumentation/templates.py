"""Jinja2 and python-liquid template loads and renders (issue: templates). Placeholder until its issue lands: instruments nothing."""

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor


class TemplateInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        pass

    def _uninstrument(self, **kwargs):
        pass

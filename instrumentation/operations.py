"""config-named app functions (issue: templates). Placeholder until its issue lands: instruments nothing."""

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor


class OperationsInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        pass

    def _uninstrument(self, **kwargs):
        pass

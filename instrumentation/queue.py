"""Redis list queues (issue: queue). Placeholder until its issue lands: instruments nothing."""

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor


class QueueInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        pass

    def _uninstrument(self, **kwargs):
        pass

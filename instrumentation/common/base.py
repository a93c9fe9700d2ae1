"""The base of mailscope's instrumentors: a failure to instrument never stops the others.

The launcher loads every instrumentor in one loop, and an exception from one
`_instrument` ends that loop ("Failed to auto initialize OpenTelemetry"): every
instrumentor after it, mailscope's or another library's, is then never loaded.
mailscope's instrumentors log the failure once, undo what they had wrapped, and
return; the app and the other instrumentations go on.
"""

from __future__ import annotations

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from mailscope._safety import internal_error


class MailscopeInstrumentor(BaseInstrumentor):
    def instrument(self, **kwargs):
        try:
            return super().instrument(**kwargs)
        except Exception:
            internal_error(f"instrumenting with {type(self).__name__}; it is left out")
            try:
                self._uninstrument(**kwargs)  # what it wrapped before failing
            except Exception:
                internal_error(f"undoing {type(self).__name__}")
            return None

"""`mailscope_providers`: email.send spans for HTTP email providers.

    ProviderInstrumentor().instrument(tracer_provider=..., meter_provider=...)

- Amazon SES through boto3/botocore (`ses`);
- SendGrid through the `sendgrid` package (`sendgrid`);
- Mailgun and Postmark over requests or httpx (`http`, matched by
  `MAILSCOPE_PROVIDER_ENDPOINTS`).

Each part installs when the app imports its library (a post-import hook), so an
app that uses none of them pays nothing at start-up. The spans carry the same
attributes as SMTP sends (`providers.common` on top of `common.send`);
`mailscope.recipients` is recorded here, the duration histogram from the spans
by the operation_metrics stage.
"""

from __future__ import annotations

from opentelemetry import trace
from mailscope.instrumentation.common.base import MailscopeInstrumentor

from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.providers.common import ProviderTelemetry
from mailscope.instrumentation.common.send import RecipientsMetric
from mailscope.version import __version__


class ProviderInstrumentor(MailscopeInstrumentor):
    _probes: list = []

    def instrumentation_dependencies(self):
        return ()  # every provider library is optional; each is instrumented when imported

    def _instrument(self, **kwargs):
        from mailscope.instrumentation.providers.http import HTTPProbe
        from mailscope.instrumentation.providers.sendgrid import SendGridProbe
        from mailscope.instrumentation.providers.ses import SESProbe

        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        telemetry = ProviderTelemetry(tracer, RecipientsMetric(kwargs.get("meter_provider")))
        self._probes = wrapper_layers.enable_probes((SESProbe, SendGridProbe, HTTPProbe), telemetry)

    def _uninstrument(self, **kwargs):
        probes, self._probes = self._probes, []
        wrapper_layers.disable_probes(probes)

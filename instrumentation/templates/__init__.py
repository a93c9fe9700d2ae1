"""The `mailscope_templates` instrumentor: Jinja2, python-liquid and Django template loads and renders.

`email.template.load` (cache hit or miss, `mailscope.template.cache` counter) and
`email.personalize` (variables supplied, undefined variables looked up, output
size) spans, for templates whose names pass `MAILSCOPE_TEMPLATES`; unset, every
template outside HTTP server requests and, inside one, only email-ish names
(`RequestScope` in templates.common). The duration histogram is recorded from
these spans by the pipeline's operation_metrics stage. Engine specifics live in
templates.jinja2, templates.liquid and templates.django; each installs when the
app imports that engine.

`instrument(tracer_provider=..., meter_provider=..., templates=("glob", ...))`:
the last overrides MAILSCOPE_TEMPLATES for programmatic use.
"""

from __future__ import annotations

from opentelemetry import trace
from mailscope.instrumentation.common.base import MailscopeInstrumentor

from mailscope.instrumentation.common import wrapper_layers
from mailscope.config import settings
from mailscope import attributes as attr
from mailscope.metrics import tally_for
from mailscope.version import __version__

class TemplateInstrumentor(MailscopeInstrumentor):
    _probes: list = []

    def instrumentation_dependencies(self):
        # Either engine is optional; each is instrumented when the app imports it.
        return ()

    def _instrument(self, **kwargs):
        from mailscope.instrumentation.templates.common import TemplateTelemetry
        from mailscope.instrumentation.templates.jinja2 import Jinja2Probe
        from mailscope.instrumentation.templates.liquid import LiquidProbe
        from mailscope.instrumentation.templates.django import DjangoProbe

        from mailscope.instrumentation.templates.common import request_scope_for

        tracer_provider = kwargs.get("tracer_provider")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider)
        counter = tally_for(kwargs.get("meter_provider"), attr.METRIC_TEMPLATE_CACHE)
        globs = kwargs.get("templates") or settings().templates
        scope = None
        if globs is None:  # the default rule needs to know which spans are inside web requests
            scope = request_scope_for(tracer_provider or trace.get_tracer_provider())
        telemetry = TemplateTelemetry(tracer, counter, globs, scope)
        self._probes = wrapper_layers.enable_probes((Jinja2Probe, LiquidProbe, DjangoProbe), telemetry)

    def _uninstrument(self, **kwargs):
        probes, self._probes = self._probes, []
        wrapper_layers.disable_probes(probes)

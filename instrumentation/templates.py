"""The `mailscope_templates` instrumentor: Jinja2 and python-liquid loads and renders.

`email.template.load` (cache hit or miss, `mailscope.template.cache` counter) and
`email.personalize` (variables supplied, undefined variables looked up, output
size) spans, for templates whose names pass `MAILSCOPE_TEMPLATES`. The
duration histogram is recorded from these spans by the pipeline's
operation_metrics stage. Engine specifics live in templates_jinja2 and
templates_liquid; each installs when the app imports that engine.

`instrument(tracer_provider=..., meter_provider=..., templates=("glob", ...))`:
the last overrides MAILSCOPE_TEMPLATES for programmatic use.
"""

from __future__ import annotations

import threading
import weakref

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from mailscope._safety import internal_error
from mailscope.config import settings
from mailscope import attributes as attr
from mailscope.metrics import Tally, instruments
from mailscope.version import __version__

# An instrumentor given its own meter provider gets one cache Tally per provider, shared by
# later instrument() calls: the SDK hands a re-registered observable instrument back with
# its first callback, so a second Tally would count into the void. Only this instrument is
# created there, never the whole set (other instrumentors register theirs on that provider).
_tallies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # bounded by live meter providers
_tallies_lock = threading.Lock()


def _cache_tally_for(meter_provider) -> Tally:
    with _tallies_lock:
        try:
            tally = _tallies.get(meter_provider)
        except TypeError:  # not weak-referenceable: not shared
            tally = None
        if tally is None:
            meter = metrics.get_meter("mailscope", __version__, meter_provider)
            tally = Tally(meter, attr.METRIC_TEMPLATE_CACHE, description="Template loads by cache outcome")
            try:
                _tallies[meter_provider] = tally
            except TypeError:
                pass
        return tally


class TemplateInstrumentor(BaseInstrumentor):
    _probes: list = []

    def instrumentation_dependencies(self):
        # Either engine is optional; each is instrumented when the app imports it.
        return ()

    def _instrument(self, **kwargs):
        from mailscope.instrumentation.templates_common import TemplateTelemetry
        from mailscope.instrumentation.templates_jinja2 import Jinja2Probe
        from mailscope.instrumentation.templates_liquid import LiquidProbe

        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        meter_provider = kwargs.get("meter_provider")
        if meter_provider is None or meter_provider is metrics.get_meter_provider():
            counter = instruments().template_cache
        else:
            counter = _cache_tally_for(meter_provider)
        globs = kwargs.get("templates") or settings().templates
        telemetry = TemplateTelemetry(tracer, counter, globs)
        self._probes = []
        for probe_class in (Jinja2Probe, LiquidProbe):
            probe = probe_class(telemetry)
            try:
                probe.enable()
                self._probes.append(probe)
            except Exception:
                internal_error(f"{probe_class.__name__} enable")
                probe.disable()

    def _uninstrument(self, **kwargs):
        probes, self._probes = self._probes, []
        for probe in probes:
            try:
                probe.disable()
            except Exception:
                internal_error(f"{type(probe).__name__} disable")

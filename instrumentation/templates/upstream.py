"""Coexistence with opentelemetry-instrumentation-jinja2: mailscope wins, per call.

The rule: for every Jinja2 call that mailscope traces (its template name passes
MAILSCOPE_TEMPLATES), the upstream `jinja2.render`, `jinja2.load` and
`jinja2.compile` spans are not created; mailscope's `email.template.load` or
`email.personalize` is the one span for the work. Calls mailscope does not
trace (templates outside MAILSCOPE_TEMPLATES) keep upstream's spans.

How, independent of which instrumentor the launcher loads first:
- Upstream's wrappers are wrapt FunctionWrappers on `Template.render`,
  `Template.generate`, `Environment.compile` and `Environment._load_template`.
  Each is replaced by a gated twin that calls upstream's wrapper function only
  when mailscope is not handling that template or environment right now
  (`owned_by`), and otherwise calls straight through. On disable the originals
  go back in place.
- `Jinja2Instrumentor._instrument` and `_uninstrument` are wrapped so that
  mailscope's render wrappers step aside while upstream adds or strips its
  layer (upstream's `unwrap` removes whatever is outermost) and are put back
  outermost afterwards. Upstream's behaviour is otherwise unchanged, and
  `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=mailscope_templates` leaves upstream
  alone entirely.
"""

from __future__ import annotations

import wrapt

from mailscope._safety import internal_error
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.templates.common import owned_by

UPSTREAM_MODULE = "opentelemetry.instrumentation.jinja2"
UPSTREAM_SLOTS = (("Template", "render"), ("Template", "generate"), ("Environment", "compile"),
                  ("Environment", "_load_template"))


def is_upstream_layer(layer) -> bool:
    wrapper = getattr(layer, "_self_wrapper", None)
    return isinstance(layer, wrapt.FunctionWrapper) and getattr(wrapper, "__module__", None) == UPSTREAM_MODULE


def _gated(upstream_wrapper):
    def gate(wrapped, instance, args, kwargs):
        if owned_by(instance):
            return wrapped(*args, **kwargs)
        return upstream_wrapper(wrapped, instance, args, kwargs)

    return gate


class UpstreamJinja2Gate:
    def __init__(self, probe):
        self.probe = probe
        self.active = False
        self.hooks: list = []  # Patches on Jinja2Instrumentor
        self.gated: list = []  # (owner, attribute, gated twin, upstream original)

    def enable(self) -> None:
        self.active = True
        wrapt.register_post_import_hook(self._on_import, UPSTREAM_MODULE)

    def _on_import(self, module) -> None:
        try:
            if not self.active or self.hooks:
                return
            instrumentor = module.Jinja2Instrumentor
            self.hooks = [
                wrapper_layers.apply(instrumentor, "_instrument", self._around_instrument),
                wrapper_layers.apply(instrumentor, "_uninstrument", self._around_uninstrument),
            ]
            self.probe.reseat()  # upstream may have instrumented already
        except Exception:
            internal_error("jinja2 upstream coexistence hook")

    def _around_instrument(self, wrapped, instance, args, kwargs):
        return self._around_upstream(wrapped, args, kwargs, "instrument", forget_removed=False)

    def _around_uninstrument(self, wrapped, instance, args, kwargs):
        return self._around_upstream(wrapped, args, kwargs, "uninstrument", forget_removed=True)

    def _around_upstream(self, wrapped, args, kwargs, what: str, forget_removed: bool):
        """Run upstream's (un)instrument with mailscope's contested layers off, then reseat them."""
        if not (self.active and self.probe.installed):
            return wrapped(*args, **kwargs)
        self.probe.detach_contested()
        try:
            return wrapped(*args, **kwargs)
        finally:
            try:
                if forget_removed:
                    self._forget_removed()
                self.probe.reseat()
            except Exception:
                internal_error(f"jinja2 upstream {what}")

    # --- gating upstream's wrapper layers -------------------------------------------
    def _owners(self) -> dict:
        from jinja2.environment import Environment, Template

        return {"Template": Template, "Environment": Environment}

    def gate_existing(self) -> None:
        owners = self._owners()
        already = {id(entry[2]) for entry in self.gated}
        for owner_name, attribute in UPSTREAM_SLOTS:
            owner = owners[owner_name]
            for layer in wrapper_layers.layers(owner, attribute):
                if id(layer) in already or not is_upstream_layer(layer):
                    continue
                twin = wrapt.FunctionWrapper(layer.__wrapped__, _gated(layer._self_wrapper))
                if wrapper_layers.replace_layer(owner, attribute, layer, twin):
                    self.gated.append((owner, attribute, twin, layer))

    def _forget_removed(self) -> None:
        self.gated = [entry for entry in self.gated
                      if wrapper_layers.find_layer(entry[0], entry[1], entry[2]) is not None]

    def ungate_all(self) -> None:
        for owner, attribute, twin, original in reversed(self.gated):
            try:
                if original.__wrapped__ is not twin.__wrapped__:
                    original.__wrapped__ = twin.__wrapped__
                wrapper_layers.replace_layer(owner, attribute, twin, original)
            except Exception:
                internal_error("jinja2 upstream ungate")
        self.gated = []

    def disable(self) -> None:
        self.active = False
        for patch in self.hooks:
            try:
                wrapper_layers.remove(patch)
            except Exception:
                internal_error("jinja2 upstream hook removal")
        self.hooks = []
        if self.probe.installed:
            self.probe.detach_contested()
            self.ungate_all()
        else:
            self.gated = []

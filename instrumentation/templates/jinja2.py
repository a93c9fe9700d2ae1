"""Jinja2 (3.x): `email.template.load` and `email.personalize`.

Wrapped, on the classes so every environment (sandboxed ones included) is covered:
- loads: `Environment.get_template`, `select_template`, `from_string`
  (`get_or_select_template` delegates to the first two, so it is covered
  without a second span; `jinja2.Template(source)` goes through `from_string`);
- renders: `Template.render`, `render_async`, `generate` (and `stream`, which
  uses it), `generate_async`;
- `Undefined.__init__`, the one place every undefined value is born, for all
  undefined kinds (default, Chainable, Debug, Strict, logging): a top-level
  variable that is missing is an Undefined with no parent object and a name.
  An undefined attribute of a defined object is not a missing variable.

The instrumentation installs when the app imports jinja2 (a post-import hook),
so merely enabling it imports nothing.
"""

from __future__ import annotations

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.templates.common import ACTIVE, INLINE_NAME, note_missing, owned_by

ENGINE = attr.ENGINE_JINJA2


class Jinja2Probe(wrapper_layers.ImportProbe):
    """Installs and removes the Jinja2 wrappers for one TemplateInstrumentor run."""

    module_name = "jinja2"
    label = "jinja2"

    def __init__(self, telemetry):
        super().__init__(telemetry)
        self.contested: dict = {}  # slot name -> Patch, for slots opentelemetry-instrumentation-jinja2 wraps too
        self.upstream = None
        self._safe = ()
        self._missing = None

    # --- lifecycle --------------------------------------------------------------
    def enable(self) -> None:
        from mailscope.instrumentation.templates.upstream import UpstreamJinja2Gate

        self.upstream = UpstreamJinja2Gate(self)
        super().enable()
        # Registered now, not when jinja2 arrives: the upstream package imports
        # jinja2 from its own module body, and a hook registered during that
        # import would see the upstream module half-initialised.
        self.upstream.enable()

    def disable(self) -> None:
        with self._lock:
            self.active = False  # before the gate goes: reseat() must not run again
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                try:
                    upstream.disable()
                except Exception:
                    internal_error("jinja2 upstream gate removal")
            super().disable()

    def install(self, _module) -> None:
        from jinja2.environment import Environment, Template
        from jinja2.exceptions import TemplateError
        from jinja2.runtime import Undefined, missing

        self._safe = (TemplateError,)
        self._missing = missing
        self.template_class = Template
        for owner, name, wrapper in (
            (Environment, "get_template", self._get_template),
            (Environment, "select_template", self._select_template),
            (Environment, "from_string", self._from_string),
            (Template, "render_async", self._render_async),
            (Template, "generate_async", self._generate_async),
            (Undefined, "__init__", self._undefined_init),
        ):
            self.patch(owner, name, wrapper)
        self.reseat()

    def remove_all(self) -> None:
        self.detach_contested()
        super().remove_all()

    # --- the slots opentelemetry-instrumentation-jinja2 wraps as well ------------
    def reseat(self) -> None:
        """Gate upstream's wrappers, then put mailscope's render wrappers outermost."""
        with self._lock:
            if not self.installed:
                return
            self.detach_contested()
            if self.upstream is not None:
                try:
                    self.upstream.gate_existing()
                except Exception:
                    internal_error("jinja2 upstream gate")
            self.attach_contested()

    def attach_contested(self) -> None:
        """Put mailscope's render/generate wrappers outermost (again)."""
        with self._lock:
            if self.contested or not self.active or not self.installed:
                return
            template = self.template_class
            self.contested = {
                "render": wrapper_layers.apply(template, "render", self._render),
                "generate": wrapper_layers.apply(template, "generate", self._generate),
            }

    def detach_contested(self) -> None:
        with self._lock:
            contested, self.contested = self.contested, {}
            for patch in contested.values():
                try:
                    wrapper_layers.remove(patch)
                except Exception:
                    internal_error("jinja2 render wrapper removal")

    def all_patches(self) -> list:
        return list(self.patches) + list(self.contested.values())

    # --- loads ----------------------------------------------------------------
    def _get_template(self, wrapped, env, args, kwargs):
        try:
            name = args[0] if args else kwargs.get("name")
            traced = isinstance(name, str) and not owned_by(env) and self.telemetry.wants(name)
        except Exception:
            internal_error("jinja2 get_template")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, env, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _select_template(self, wrapped, env, args, kwargs):
        try:
            names = args[0] if args else kwargs.get("names")
            # only a list or tuple is read: any other iterable is the app's to consume
            candidates = [n for n in names if isinstance(n, str)] if isinstance(names, (list, tuple)) else []
            traced = (
                bool(candidates)
                and not owned_by(env)
                and any(self.telemetry.wants(n) for n in candidates)
            )
        except Exception:
            internal_error("jinja2 select_template")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(
            ENGINE, env, candidates[0], wrapped, args, kwargs, name_from_result=True, safe_messages=self._safe
        )

    def _from_string(self, wrapped, env, args, kwargs):
        try:
            traced = not owned_by(env) and self.telemetry.wants(INLINE_NAME)
        except Exception:
            internal_error("jinja2 from_string")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, env, INLINE_NAME, wrapped, args, kwargs, inline=True,
                                       safe_messages=self._safe)

    # --- renders ----------------------------------------------------------------
    def _render_name(self, template, where):
        """The name to trace a render of `template` under, or None when it is not traced."""
        try:
            if owned_by(template):
                return None  # e.g. render() of an async environment running render_async()
            name = template.name or INLINE_NAME
            telemetry = self.telemetry
            return name if telemetry.match_all or telemetry.wants(name) else None
        except Exception:
            internal_error(where)
            return None

    def _render(self, wrapped, template, args, kwargs):
        # _render_name inlined: one render per recipient
        telemetry = self.telemetry
        try:
            active = ACTIVE.get()
            name = template.name or INLINE_NAME
            if (active is not None and active.owner is template) or not (telemetry.match_all or telemetry.wants(name)):
                name = None
        except Exception:
            internal_error("jinja2 render")
            name = None
        if name is None:
            return wrapped(*args, **kwargs)
        return telemetry.run_render(ENGINE, template, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _render_async(self, wrapped, template, args, kwargs):
        name = self._render_name(template, "jinja2 render_async")
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_render_async(ENGINE, template, name, wrapped, args, kwargs,
                                               safe_messages=self._safe)

    def _generate(self, wrapped, template, args, kwargs):
        name = self._render_name(template, "jinja2 generate")
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_generate(ENGINE, template, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _generate_async(self, wrapped, template, args, kwargs):
        name = self._render_name(template, "jinja2 generate_async")
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_generate_async(ENGINE, template, name, wrapped, args, kwargs,
                                                 safe_messages=self._safe)

    # --- undefined lookups --------------------------------------------------------
    def _undefined_init(self, wrapped, instance, args, kwargs):
        # Undefined(hint=None, obj=missing, name=None, exc=UndefinedError)
        try:
            obj = args[1] if len(args) > 1 else kwargs.get("obj", self._missing)
            if obj is self._missing:
                note_missing(args[2] if len(args) > 2 else kwargs.get("name"))
        except Exception:
            internal_error("jinja2 undefined tracking")
        return wrapped(*args, **kwargs)

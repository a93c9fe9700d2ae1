"""Django templates (the `DjangoTemplates` backend, Django 4.2 and 5.x): `email.template.load`
and `email.personalize`, `email.template.engine=django`.

Wrapped, once the app imports `django.template`:
- loads: the core `Engine.get_template` (what `django.template.loader.get_template`,
  `render_to_string` and the backend's `get_template` reach), `Engine.select_template`,
  `Engine.from_string` (`<string>`), and `django.template.loader.select_template`
  (one span for the list, whichever candidate was found; the candidates that
  were not found inside it are not spans of their own). The cached loader
  (Django's default) hands out the same compiled Template on every hit, which
  is how `email.template.cache_hit` is known;
- renders: the core `Template.render(context)`, where every render path ends
  (`render_to_string`, the backend Template's `render(context, request)`,
  `Template(source).render(Context(...))`). A render inside a traced render
  (`{% include %}`) is part of it, not a second span; its load is a child span.
  Variables supplied: the distinct keys the app put in the Context (Django's
  built-in True/False/None and context processors' keys are not counted);
- missing variables: Django signals a variable it cannot resolve by raising
  `VariableDoesNotExist`, then renders `string_if_invalid` in its place (or
  `None` for tags that ignore failures, such as `{% if %}`). Its constructor is
  wrapped: a failed lookup whose object is the Context itself is a missing
  top-level variable, and its name is counted. The exception and the output
  are left exactly as Django makes them.

A template built with `Template(source)` directly (no engine) is compiled
outside any wrapped call: its render is traced, its compile is not a span.
"""

from __future__ import annotations

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.templates.common import ACTIVE, INLINE_NAME, collecting, note_missing

ENGINE = attr.ENGINE_DJANGO
LOADER = object()  # the owner of a django.template.loader.select_template call


class DjangoProbe(wrapper_layers.ImportProbe):
    module_name = "django.template"
    label = "django templates"

    def __init__(self, telemetry):
        super().__init__(telemetry)
        self._safe = ()
        self._template_class = None
        self._context_class = None

    def all_patches(self) -> list:
        return list(self.patches)

    def install(self, _module) -> None:
        from django.template import loader
        from django.template.base import Template, VariableDoesNotExist
        from django.template.context import BaseContext
        from django.template.engine import Engine
        from django.template.exceptions import TemplateDoesNotExist, TemplateSyntaxError

        self._safe = (TemplateDoesNotExist, TemplateSyntaxError)
        self._template_class = Template
        self._context_class = BaseContext
        for owner, name, wrapper in (
            (Engine, "get_template", self._get_template),
            (Engine, "select_template", self._engine_select_template),
            (Engine, "from_string", self._from_string),
            (loader, "select_template", self._loader_select_template),
            (Template, "render", self._render),
            (VariableDoesNotExist, "__init__", self._does_not_exist),
        ):
            self.patch(owner, name, wrapper)

    # --- loads ------------------------------------------------------------------
    def _inside_load(self, engine) -> bool:
        active = ACTIVE.get()
        return active is not None and (active.owner is engine or active.owner is LOADER)

    def _get_template(self, wrapped, engine, args, kwargs):
        try:
            name = args[0] if args else kwargs.get("template_name")
            traced = isinstance(name, str) and not self._inside_load(engine) and self.telemetry.wants(name)
        except Exception:
            internal_error("django get_template")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, engine, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _candidates(self, names) -> list:
        # only a list or tuple is read: any other iterable is the app's to consume
        return [n for n in names if isinstance(n, str)] if isinstance(names, (list, tuple)) else []

    def _engine_select_template(self, wrapped, engine, args, kwargs):
        try:
            candidates = self._candidates(args[0] if args else kwargs.get("template_name_list"))
            traced = (bool(candidates) and not self._inside_load(engine)
                      and any(self.telemetry.wants(n) for n in candidates))
        except Exception:
            internal_error("django select_template")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, engine, candidates[0], wrapped, args, kwargs, name_from_result=True,
                                       safe_messages=self._safe)

    def _from_string(self, wrapped, engine, args, kwargs):
        try:
            traced = not self._inside_load(engine) and self.telemetry.wants(INLINE_NAME)
        except Exception:
            internal_error("django from_string")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, engine, INLINE_NAME, wrapped, args, kwargs, inline=True,
                                       safe_messages=self._safe)

    def _loader_select_template(self, wrapped, _instance, args, kwargs):
        """django.template.loader.select_template(names, using=None): the backend Template found."""
        try:
            candidates = self._candidates(args[0] if args else kwargs.get("template_name_list"))
            traced = (bool(candidates) and not self._inside_load(LOADER)
                      and any(self.telemetry.wants(n) for n in candidates))
        except Exception:
            internal_error("django loader select_template")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        found = []

        def select(*a, **kw):  # the load span sees the compiled Template (cache hits), the app gets the backend's
            found.append(wrapped(*a, **kw))
            return getattr(found[0], "template", found[0])

        self.telemetry.run_load(ENGINE, LOADER, candidates[0], select, args, kwargs, name_from_result=True,
                                safe_messages=self._safe)
        return found[0]

    # --- renders ----------------------------------------------------------------
    def _variables(self, context):
        """Distinct keys the app supplied in a Context (the built-ins dict left out), or None."""
        if not isinstance(context, self._context_class):
            return None
        keys = set()
        for layer in context.dicts[1:]:
            keys.update(layer.keys())
        return len(keys)

    def _render(self, wrapped, template, args, kwargs):
        telemetry = self.telemetry
        try:
            active = ACTIVE.get()
            name = template.name or INLINE_NAME
            if active is not None and isinstance(active.owner, self._template_class):
                name = None  # {% include %}: part of the render that includes it
            elif not (telemetry.match_all or telemetry.wants(name)):
                name = None
            variables = self._variables(args[0] if args else kwargs.get("context")) if name is not None else None
        except Exception:
            internal_error("django render")
            name = None
        if name is None:
            return wrapped(*args, **kwargs)
        return telemetry.run_render(ENGINE, template, name, wrapped, args, kwargs, safe_messages=self._safe,
                                    variables=variables)

    # --- missing variables ----------------------------------------------------------
    def _does_not_exist(self, wrapped, instance, args, kwargs):
        # VariableDoesNotExist(msg, params=()); a failed top-level lookup has params (name, context)
        try:
            if collecting():
                params = args[1] if len(args) > 1 else kwargs.get("params", ())
                if (isinstance(params, tuple) and len(params) == 2 and isinstance(params[0], str)
                        and isinstance(params[1], self._context_class)):
                    note_missing(params[0])
        except Exception:
            internal_error("django missing variable tracking")
        return wrapped(*args, **kwargs)

"""python-liquid (2.x): `email.template.load` and `email.personalize`.

Wrapped on the classes: `Environment.get_template`, `get_template_async`,
`from_string` (loaders and `Environment.parse`/`render`/`liquid.Template`
all go through it; inside a traced load it is part of that load, not a second
span), `BoundTemplate.render` and `render_async` (partials rendered by
`{% include %}`/`{% render %}` are part of the outer render; their loads are
child `email.template.load` spans).

Undefined variables: every undefined kind (`Undefined`, `DebugUndefined`,
`StrictUndefined`, `StrictDefaultUndefined`, `FalsyStrictUndefined`) is built
through `Undefined.__init__(name, *, token, obj, hint)`. Liquid passes the
*root* variable name both when the variable is missing and when a later path
segment is (`customer.nickname`), telling them apart only by the hint: a
template's variable lookup that misses at the root carries exactly
`'<name>' is undefined`. Undefined values liquid makes for other reasons
(`forloop.parentloop` outside a nested loop, optional settings read by extra
filters) carry no hint and are not counted.

A liquid loader names a template by its file name (`path.name`), not by the
name it was loaded with; the render span uses the loaded name, remembered at
load time, so load and render spans of one template agree.
"""

from __future__ import annotations



from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.templates.common import INLINE_NAME, collecting, note_missing, owned_by

ENGINE = attr.ENGINE_LIQUID


class LiquidProbe(wrapper_layers.ImportProbe):
    module_name = "liquid"
    label = "liquid"

    def __init__(self, telemetry):
        super().__init__(telemetry)
        self._safe = ()
        self._undefined_marker = None

    def all_patches(self) -> list:
        return list(self.patches)

    def install(self, _module) -> None:
        from liquid.environment import Environment
        from liquid.exceptions import LiquidError
        from liquid.template import BoundTemplate
        from liquid.undefined import UNDEFINED, Undefined

        self._safe = (LiquidError,)
        self._undefined_marker = UNDEFINED
        for owner, name, wrapper in (
            (Environment, "get_template", self._get_template),
            (Environment, "get_template_async", self._get_template_async),
            (Environment, "from_string", self._from_string),
            (BoundTemplate, "render", self._render),
            (BoundTemplate, "render_async", self._render_async),
            (Undefined, "__init__", self._undefined_init),
        ):
            self.patch(owner, name, wrapper)

    # --- loads ------------------------------------------------------------------
    def _load_name(self, env, args, kwargs):
        name = args[0] if args else kwargs.get("name")
        if isinstance(name, str) and not owned_by(env) and self.telemetry.wants(name):
            return name
        return None

    def _get_template(self, wrapped, env, args, kwargs):
        try:
            name = self._load_name(env, args, kwargs)
        except Exception:
            internal_error("liquid get_template")
            name = None
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, env, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _get_template_async(self, wrapped, env, args, kwargs):
        try:
            name = self._load_name(env, args, kwargs)
        except Exception:
            internal_error("liquid get_template_async")
            name = None
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load_async(ENGINE, env, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _from_string(self, wrapped, env, args, kwargs):
        # from_string(source, name="", path=None, globals=None, matter=None)
        try:
            name = None
            if not owned_by(env):
                given = args[1] if len(args) > 1 else kwargs.get("name")
                candidate = given if isinstance(given, str) and given else INLINE_NAME
                if self.telemetry.wants(candidate):
                    name = candidate
        except Exception:
            internal_error("liquid from_string")
            name = None
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_load(ENGINE, env, name, wrapped, args, kwargs, inline=True,
                                       safe_messages=self._safe)

    # --- renders ----------------------------------------------------------------
    def _render_name(self, template, where):
        try:
            if owned_by(template):
                return None
            name = self.telemetry.known.name_of(template) or template.name or INLINE_NAME
            return name if self.telemetry.wants(name) else None
        except Exception:
            internal_error(where)
            return None

    def _render(self, wrapped, template, args, kwargs):
        name = self._render_name(template, "liquid render")
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_render(ENGINE, template, name, wrapped, args, kwargs, safe_messages=self._safe)

    def _render_async(self, wrapped, template, args, kwargs):
        name = self._render_name(template, "liquid render_async")
        if name is None:
            return wrapped(*args, **kwargs)
        return self.telemetry.run_render_async(ENGINE, template, name, wrapped, args, kwargs,
                                               safe_messages=self._safe)

    # --- undefined lookups --------------------------------------------------------
    def _undefined_init(self, wrapped, instance, args, kwargs):
        # Undefined(name, *, token=None, obj=UNDEFINED, hint=None)
        try:
            if collecting() and kwargs.get("obj", self._undefined_marker) is self._undefined_marker:
                name = args[0] if args else kwargs.get("name")
                hint = kwargs.get("hint")
                if isinstance(name, str) and hint == f"{name!r} is undefined":
                    note_missing(name)
        except Exception:
            internal_error("liquid undefined tracking")
        return wrapped(*args, **kwargs)

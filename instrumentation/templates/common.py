"""What Jinja2 and python-liquid instrumentation share: spans, per-render state, cache bookkeeping.

Per-call state lives in one context variable, `ACTIVE`: the object mailscope is
currently handling (a template being rendered, or an environment loading) and,
during a render, the set of undefined variable names seen so far. The engines'
undefined types report to it from their constructors (`note_missing`), which
only run when a lookup misses, so a render that finds every variable pays
nothing for the detection, and the rendered output is never touched.

`ACTIVE.owner` also tells nested calls that mailscope already covers them
(Jinja2's `render()` of an async environment calling `render_async()`,
`get_or_select_template()` calling `get_template()`, liquid's loader calling
`from_string()`), and tells the opentelemetry-instrumentation-jinja2 gate to
stay out of the way.

Every step mailscope adds around the app's call is guarded: a failure in it is
logged once and the app's call proceeds (or its result is returned) unchanged.
Exceptions from the call itself propagate as the same object.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Mapping

from opentelemetry import context, trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.config import EMAILISH_TEMPLATE_GLOBS
from mailscope.globs import GlobList
from mailscope.instrumentation.common.failures import mark_failed

INLINE_NAME = attr.TEMPLATE_INLINE_NAME
MAX_NAME_CHARS = 200  # a missing-variable name longer than this is cut
MAX_TRACKED_MISSING = 1000  # distinct missing names tracked per render
MAX_KNOWN_TEMPLATES = 10_000  # compiled templates remembered for cache-hit detection
FILTER_CACHE_MAX = 1024
MAX_REQUEST_SPANS = 100_000  # live spans remembered as inside an HTTP server request


class Active:
    """What mailscope is handling in this context: `owner` (a template or an
    environment) and, while a render is traced, `names`: the distinct missing
    variable names in first-seen order (a dict used as an ordered set), else None."""

    __slots__ = ("owner", "names")

    def __init__(self, owner, names):
        self.owner = owner
        self.names = names


ACTIVE: contextvars.ContextVar = contextvars.ContextVar("mailscope_template_call", default=None)


def owned_by(obj) -> bool:
    """mailscope is handling a call on `obj` (a template or an environment) right now."""
    active = ACTIVE.get()
    return active is not None and active.owner is obj


def collecting() -> bool:
    """A traced render is collecting missing variable names right now."""
    active = ACTIVE.get()
    return active is not None and active.names is not None


def note_missing(name) -> None:
    """Called by the engines' undefined types: a top-level variable lookup missed."""
    active = ACTIVE.get()
    if active is None or not isinstance(name, str):
        return
    names = active.names
    if names is not None and name not in names and len(names) < MAX_TRACKED_MISSING:
        names[name[:MAX_NAME_CHARS]] = None


def count_variables(args, kwargs):
    """Top-level variables passed as `render(*args, **kwargs)` (dict() semantics), or None.

    Only mappings are counted, by their keys: an iterable of pairs is never
    consumed and no value is read."""
    if not args:
        return len(kwargs)
    if type(args[0]) is dict and len(args) == 1 and not kwargs:
        return len(args[0])
    if len(args) != 1 or not isinstance(args[0], Mapping):
        return None
    given = args[0]
    if not kwargs:
        return len(given)
    return len(given.keys() | kwargs.keys())


def utf8_len(text) -> int:
    if isinstance(text, str):
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if isinstance(text, (bytes, bytearray)):
        return len(text)
    return 0


class KnownTemplates:
    """Compiled templates mailscope has seen served, weakly held, with the name they were loaded by.

    A load that returns an object seen before was served from the engine's
    cache; a fresh object was compiled (or parsed) for this call."""

    def __init__(self, limit: int = MAX_KNOWN_TEMPLATES):
        self.limit = limit
        self._names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def served(self, template, name: str) -> bool:
        """Record a load; True when `template` had been served before."""
        try:
            if template in self._names:
                return True
            if len(self._names) < self.limit:
                self._names[template] = name
        except TypeError:  # not weak-referenceable or not hashable
            pass
        return False

    def name_of(self, template):
        try:
            return self._names.get(template)
        except TypeError:
            return None


# process-wide, so instrumenting again (same or other providers) keeps knowing what was compiled
KNOWN_TEMPLATES = KnownTemplates()


class RequestScope(SpanProcessor):
    """A span processor that knows which live spans run inside an HTTP server request.

    A SERVER span (what the WSGI, Django, Flask, ASGI... instrumentations start
    for each request) and every local descendant of one are remembered from
    their start to their end, by span id; `inside()` asks about the current
    span. At most `limit` spans are remembered: past that, renders count as
    outside a request (traced, as before this rule existed)."""

    def __init__(self, limit: int = MAX_REQUEST_SPANS):
        super().__init__()
        self.limit = limit
        self.live: dict = {}

    def on_start(self, span, parent_context=None) -> None:
        try:
            if span.kind is SpanKind.SERVER:
                inside = True
            elif not self.live:  # no request in progress (an email worker): nothing to look up
                return
            else:
                parent = span.parent
                inside = parent is not None and not parent.is_remote and parent.span_id in self.live
            if inside and len(self.live) < self.limit:
                self.live[span.context.span_id] = True
        except Exception:
            internal_error("template request scope")

    def on_end(self, span) -> None:
        try:
            if self.live:
                self.live.pop(span.context.span_id, None)
        except Exception:
            internal_error("template request scope end")

    def shutdown(self) -> None:
        self.live.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def inside(self) -> bool:
        span = trace.get_current_span()
        if self.live and span.get_span_context().span_id in self.live:
            return True
        return getattr(span, "kind", None) is SpanKind.SERVER


_SCOPES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # tracer provider -> its RequestScope


def request_scope_for(tracer_provider) -> RequestScope | None:
    """The RequestScope registered on `tracer_provider` (added once per provider), or None
    when the provider takes no span processors (the API's no-op or proxy provider)."""
    try:
        scope = _SCOPES.get(tracer_provider)
        if scope is None and hasattr(tracer_provider, "add_span_processor"):
            scope = _SCOPES[tracer_provider] = RequestScope()
            tracer_provider.add_span_processor(scope)
        return scope
    except Exception:
        internal_error("template request scope install")
        return None


def current_span_is_server() -> bool:
    return getattr(trace.get_current_span(), "kind", None) is SpanKind.SERVER


class TemplateTelemetry:
    """Spans and the cache counter for template loads and renders, shared by the engines.

    `template_globs` None is the default rule: every template is traced, except
    inside an HTTP server request, where only names matching
    EMAILISH_TEMPLATE_GLOBS (lower-cased) are: a web app's pages are not emails.
    `request_scope` tells whether the current span is inside a request."""

    def __init__(self, tracer, cache_counter, template_globs, request_scope=None):
        self.tracer = tracer
        self.cache_counter = cache_counter
        self.web_rule = template_globs is None
        self.globs = GlobList(EMAILISH_TEMPLATE_GLOBS if self.web_rule else template_globs)
        self.match_all = not self.web_rule and self.globs.match_all
        self.in_request = request_scope.inside if request_scope is not None else current_span_is_server
        self._wanted: dict = {}
        self.known = KNOWN_TEMPLATES
        self._cache_labels = {}

    # --- filtering -----------------------------------------------------------
    def wants(self, name: str) -> bool:
        if self.match_all:
            return True
        if self.web_rule:
            try:
                if not self.in_request():
                    return True
            except Exception:
                internal_error("template request check")
                return True
        try:
            return self._wanted[name]
        except KeyError:
            pass
        verdict = self.globs.matches(name.lower() if self.web_rule else name)
        if len(self._wanted) >= FILTER_CACHE_MAX:
            self._wanted.clear()
        self._wanted[name] = verdict
        return verdict

    # --- span plumbing (never raises) ---------------------------------------
    def _start(self, span_name: str, attributes: dict):
        try:
            return self.tracer.start_span(span_name, kind=SpanKind.INTERNAL, attributes=attributes)
        except Exception:
            internal_error("template span start")
            return None

    @staticmethod
    def enter(span, owner, names):
        """Make `span` current and mark `owner` as handled; returns tokens for `leave`."""
        try:
            ctx_token = context.attach(trace.set_span_in_context(span))
        except Exception:
            internal_error("template context attach")
            ctx_token = None
        try:
            active_token = ACTIVE.set(Active(owner, names))
        except Exception:
            internal_error("template call state")
            active_token = None
        return ctx_token, active_token

    @staticmethod
    def leave(tokens) -> None:
        ctx_token, active_token = tokens
        if active_token is not None:
            try:
                ACTIVE.reset(active_token)
            except Exception:
                internal_error("template call state reset")
        if ctx_token is not None:
            try:
                context.detach(ctx_token)
            except Exception:
                internal_error("template context detach")

    @staticmethod
    def _missing_attributes(names: dict) -> dict:
        result = {attr.PERSONALIZATION_MISSING: len(names)}
        if names:
            result[attr.PERSONALIZATION_MISSING_NAMES] = list(names)[: attr.MAX_MISSING_NAMES]
        return result

    @staticmethod
    def fail(span, exc: BaseException, *, withhold: bool, safe_messages: tuple, names=None) -> None:
        try:
            if names is not None:  # a StrictUndefined failure names what was missing
                span.set_attributes(TemplateTelemetry._missing_attributes(names))
            if isinstance(exc, Exception):
                mark_failed(span, exc, safe_messages=safe_messages, withhold=withhold)
        except Exception:
            internal_error("template span failure")
        TemplateTelemetry.end(span)

    # --- template.load --------------------------------------------------------
    def start_load(self, engine: str, name: str, owner):
        """(span, tokens) for a load, or None when the span could not start."""
        span = self._start(
            attr.SPAN_TEMPLATE_LOAD,
            {attr.OPERATION: attr.OP_TEMPLATE_LOAD, attr.TEMPLATE_NAME: name, attr.TEMPLATE_ENGINE: engine},
        )
        if span is None:
            return None
        outer = ACTIVE.get()
        # a load inside a render keeps collecting that render's missing names
        return span, self.enter(span, owner, outer.names if outer is not None else None)

    def finish_load(self, span, engine: str, template, name: str, *, inline: bool, name_from_result: bool) -> None:
        try:
            if name_from_result:
                name = getattr(template, "name", None) or name
                span.set_attribute(attr.TEMPLATE_NAME, name)
            hit = False
            if not inline:
                hit = self.known.served(template, name)
            elif name != INLINE_NAME:
                self.known.served(template, name)  # a named inline template: remembered for the render's name
            span.set_attribute(attr.TEMPLATE_CACHE_HIT, hit)
            labels = self._cache_labels.get((engine, hit))
            if labels is None:
                labels = self._cache_labels[(engine, hit)] = {attr.TEMPLATE_ENGINE: engine, attr.TEMPLATE_CACHE_HIT: hit}
            self.cache_counter.add(1, labels)
        except Exception:
            internal_error("template load finish")
        self.end(span)

    @staticmethod
    def end(span) -> None:
        try:
            span.end()
        except Exception:
            internal_error("template span end")

    def run_load(self, engine, owner, name, wrapped, args, kwargs, *, inline=False, name_from_result=False,
                 safe_messages=()):
        # start_load/enter/leave inlined: a load (mostly a cache hit) comes with every render
        span = None
        try:
            span = self.tracer.start_span(attr.SPAN_TEMPLATE_LOAD, kind=SpanKind.INTERNAL, attributes={
                attr.OPERATION: attr.OP_TEMPLATE_LOAD, attr.TEMPLATE_NAME: name, attr.TEMPLATE_ENGINE: engine})
            outer = ACTIVE.get()
            ctx_token = context.attach(trace.set_span_in_context(span))
            try:
                # a load inside a render keeps collecting that render's missing names
                active_token = ACTIVE.set(Active(owner, outer.names if outer is not None else None))
            except Exception:
                context.detach(ctx_token)
                raise
        except Exception:
            internal_error("template load start")
            if span is not None:
                self.end(span)
            return wrapped(*args, **kwargs)
        try:
            template = wrapped(*args, **kwargs)
        except BaseException as exc:
            self.leave((ctx_token, active_token))
            self.fail(span, exc, withhold=False, safe_messages=safe_messages)
            raise
        try:
            ACTIVE.reset(active_token)
            context.detach(ctx_token)
        except Exception:
            internal_error("template load context")
        self.finish_load(span, engine, template, name, inline=inline, name_from_result=name_from_result)
        return template

    async def run_load_async(self, engine, owner, name, wrapped, args, kwargs, *, safe_messages=()):
        started = self.start_load(engine, name, owner)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, tokens = started
        try:
            template = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self.leave(tokens)
            self.fail(span, exc, withhold=False, safe_messages=safe_messages)
            raise
        self.leave(tokens)
        self.finish_load(span, engine, template, name, inline=False, name_from_result=False)
        return template

    # --- personalize ------------------------------------------------------------
    # The render path runs once per recipient: it is kept flat (few calls, one
    # attribute batch at each end of the span).
    def start_render(self, engine: str, template, name: str, args, kwargs):
        """(span, names, tokens) for a render, or None when the span could not start."""
        span = None
        try:
            variables = count_variables(args, kwargs) if args else len(kwargs)
            attributes = {attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: name, attr.TEMPLATE_ENGINE: engine}
            if variables is not None:
                attributes[attr.PERSONALIZATION_VARIABLES] = variables
            span = self.tracer.start_span(attr.SPAN_PERSONALIZE, kind=SpanKind.INTERNAL, attributes=attributes)
            names = {} if span.is_recording() else None
        except Exception:
            internal_error("template render start")
            if span is not None:
                self.end(span)
            return None
        return span, names, self.enter(span, template, names)

    @staticmethod
    def finish_render(span, names, size: int = 0, output=None) -> None:
        try:
            if names is not None:
                if output is not None:
                    size = utf8_len(output)
                if names:
                    span.set_attributes({
                        attr.PERSONALIZATION_MISSING: len(names),
                        attr.PERSONALIZATION_MISSING_NAMES: list(names)[: attr.MAX_MISSING_NAMES],
                        attr.CONTENT_BYTES: size,
                    })
                else:
                    span.set_attributes({attr.PERSONALIZATION_MISSING: 0, attr.CONTENT_BYTES: size})
        except Exception:
            internal_error("template render finish")
        try:
            span.end()
        except Exception:
            internal_error("template span end")

    def run_render(self, engine, template, name, wrapped, args, kwargs, *, safe_messages=(), variables=-1):
        """`variables`: the count of variables supplied when the engine knows it better than
        render()'s arguments show (Django's Context); -1: count the arguments."""
        # start_render/enter/leave inlined: this is the per-recipient hot path
        span = None
        try:
            if variables == -1:
                variables = count_variables(args, kwargs) if args else len(kwargs)
            attributes = {attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: name, attr.TEMPLATE_ENGINE: engine}
            if variables is not None:
                attributes[attr.PERSONALIZATION_VARIABLES] = variables
            span = self.tracer.start_span(attr.SPAN_PERSONALIZE, kind=SpanKind.INTERNAL, attributes=attributes)
            names = {} if span.is_recording() else None
            ctx_token = context.attach(trace.set_span_in_context(span))
            try:
                active_token = ACTIVE.set(Active(template, names))
            except Exception:
                context.detach(ctx_token)
                raise
        except Exception:
            internal_error("template render start")
            if span is not None:
                self.end(span)
            return wrapped(*args, **kwargs)
        try:
            output = wrapped(*args, **kwargs)
        except BaseException as exc:
            self.leave((ctx_token, active_token))
            self.fail(span, exc, withhold=True, safe_messages=safe_messages, names=names)
            raise
        try:
            ACTIVE.reset(active_token)
            context.detach(ctx_token)
        except Exception:
            internal_error("template render context")
        self.finish_render(span, names, output=output)
        return output

    async def run_render_async(self, engine, template, name, wrapped, args, kwargs, *, safe_messages=()):
        started = self.start_render(engine, template, name, args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, names, tokens = started
        try:
            output = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self.leave(tokens)
            self.fail(span, exc, withhold=True, safe_messages=safe_messages, names=names)
            raise
        self.leave(tokens)
        self.finish_render(span, names, output=output)
        return output

    def run_generate(self, engine, template, name, wrapped, args, kwargs, *, safe_messages=()):
        """A generator yielding the template's chunks; the span covers the whole iteration.

        The span and mailscope's call state are current only while a chunk is
        being produced, never while the consumer holds a chunk."""
        started = self.start_render(engine, template, name, args, kwargs)
        if started is None:
            yield from wrapped(*args, **kwargs)
            return
        span, names, tokens = started
        size = 0
        inner = None
        try:
            try:
                inner = wrapped(*args, **kwargs)
            finally:
                self.leave(tokens)
            while True:
                tokens = self.enter(span, template, names)
                try:
                    chunk = next(inner)
                except StopIteration:
                    break
                finally:
                    self.leave(tokens)
                if names is not None:
                    size += utf8_len(chunk)
                yield chunk
        except GeneratorExit:
            if inner is not None:
                inner.close()
            self.finish_render(span, names, size)
            raise
        except BaseException as exc:
            self.fail(span, exc, withhold=True, safe_messages=safe_messages, names=names)
            raise
        self.finish_render(span, names, size)

    async def run_generate_async(self, engine, template, name, wrapped, args, kwargs, *, safe_messages=()):
        started = self.start_render(engine, template, name, args, kwargs)
        if started is None:
            async for chunk in wrapped(*args, **kwargs):
                yield chunk
            return
        span, names, tokens = started
        size = 0
        inner = None
        try:
            try:
                inner = wrapped(*args, **kwargs)
            finally:
                self.leave(tokens)
            while True:
                tokens = self.enter(span, template, names)
                try:
                    chunk = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    self.leave(tokens)
                if names is not None:
                    size += utf8_len(chunk)
                yield chunk
        except GeneratorExit:
            if inner is not None:
                await inner.aclose()
            self.finish_render(span, names, size)
            raise
        except BaseException as exc:
            self.fail(span, exc, withhold=True, safe_messages=safe_messages, names=names)
            raise
        self.finish_render(span, names, size)

"""The `mailscope_operations` instrumentor: the app's own functions as mailscope operations.

`MAILSCOPE_OPERATIONS="personalize=myapp.content:build_email,send=myapp.ses:send"`
wraps each named function (a dotted qualname reaches methods, static and class
methods: `myapp.ses:Client.send`) so every call is a span:

| operation | span | kind | attributes |
|---|---|---|---|
| `personalize` | `email.personalize` | INTERNAL | `email.template.engine=custom`, `email.template.name=module:qualname`, `email.content.bytes` when it returns str/bytes |
| `template.load` | `email.template.load` | INTERNAL | `email.template.engine=custom`, `email.template.name=module:qualname` |
| `send` | `email.send` | CLIENT | `email.provider` = the last component of the module path (`myapp.ses` -> `ses`) |
| `trigger` | `email.trigger` | INTERNAL | `code.function.name=module.qualname` |
| `segment` | `email.segment` | INTERNAL | `code.function.name`, `email.segment.size` when it returns a sized collection |
| `workflow.step` | `email.workflow.step` | INTERNAL | `code.function.name` |

An entry may name arguments to record: `workflow.step=myapp.engine:Engine.run_step(step_id=email.workflow.step_id)`
sets `email.workflow.step_id` to the call's `step_id` (passed by position or keyword, else its
default) when it is a str, int or bool; strings are redacted and cut to 100 characters; other
values are skipped. A named argument the signature does not have gets one warning.

All carry `mailscope.operation`. Coroutine functions get a span from first
await to completion; a plain function that returns a coroutine has its span
kept open until that coroutine finishes. Exceptions mark the span ERROR with
`error.type` and reach the caller as the same object; messages of exceptions
from `personalize` functions are withheld (they can carry variable values).

Targets are wrapped when their module is imported, also after instrumentation
started (a post-import hook), so instrumenting never imports app code. A target
whose module cannot be found, whose attribute is missing or is not callable
gets one warning and is skipped. Finding the module does not import it: the
search covers sys.path plus the directory of the script being run (the
launcher instruments before Python puts that directory on sys.path), so a
package that builds its `__path__` at import time can be reported missing.
`__main__` targets are not supported: the launcher instruments before the
script's functions exist.

`instrument(operations=((operation, module, qualname[, ((argument, attribute), ...)]), ...))`
overrides the environment for programmatic use.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Sized

import wrapt
from opentelemetry import context, trace
from mailscope.instrumentation.common.base import MailscopeInstrumentor
from opentelemetry.trace import SpanKind

from mailscope import attributes as attr
from mailscope._safety import internal_error, log_once
from mailscope.config import settings
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.common.failures import mark_failed
from mailscope.instrumentation.templates.common import utf8_len
from mailscope.processors.redact import redact
from mailscope.version import __version__

CUSTOM_ENGINE = attr.ENGINE_CUSTOM


def _search_path() -> list:
    extra = []
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and os.path.isfile(argv0):
        extra.append(os.path.dirname(os.path.abspath(argv0)))
    try:
        extra.append(os.getcwd())
    except OSError:
        pass
    return [p for p in extra if p not in sys.path] + list(sys.path)


def module_exists(name: str) -> bool:
    """Whether `name` can be imported, found without importing it (or its parents)."""
    if name in sys.modules:
        return True
    parts = name.split(".")
    spec = None
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        spec = importlib.machinery.PathFinder.find_spec(parts[0], _search_path())
    for i in range(1, len(parts)):
        if spec is None:
            return False
        parent = sys.modules.get(".".join(parts[:i]))
        locations = getattr(parent, "__path__", None) if parent is not None else spec.submodule_search_locations
        if not locations:
            return False
        spec = importlib.machinery.PathFinder.find_spec(parts[i], list(locations))
    return spec is not None


def _resolve(module, qualname: str):
    """(owner, attribute, raw value) for `qualname` inside `module`; AttributeError when absent."""
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    raw, _ = wrapper_layers.raw_attribute(owner, parts[-1])
    return owner, parts[-1], raw


def _is_callable(raw) -> bool:
    return callable(raw) or isinstance(raw, (classmethod, staticmethod))


def _unwrapped(raw):
    return raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw


def _argument_slots(owner, raw, captures) -> tuple:
    """((attribute, argument, position or None, default or _NO_DEFAULT), ...) from the target's signature.

    Positions count the arguments the wrapper receives: without `self` or `cls`,
    which wrapt passes separately. Arguments the signature lacks are looked up
    among keyword arguments only (a `**kwargs` function) and warned about when
    it has no `**kwargs`."""
    try:
        params = list(inspect.signature(_unwrapped(raw)).parameters.values())
    except (TypeError, ValueError):  # no signature (a builtin): keywords only
        return tuple((attribute, arg, None, _NO_DEFAULT) for arg, attribute in captures), None
    if isinstance(owner, type) and (inspect.isfunction(raw) or isinstance(raw, classmethod)) and params:
        params = params[1:]  # self or cls
    positions, defaults, var_keyword = {}, {}, False
    for i, p in enumerate(params):
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and i == len(positions):
            positions[p.name] = i
        if p.default is not p.empty:
            defaults[p.name] = p.default
        var_keyword = var_keyword or p.kind == p.VAR_KEYWORD
    names = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    unknown = [arg for arg, _ in captures if arg not in names and not var_keyword]
    slots = tuple(
        (attribute, arg, positions.get(arg), defaults.get(arg, _NO_DEFAULT)) for arg, attribute in captures
    )
    return slots, unknown


_NO_DEFAULT = object()


def captured_value(value, mode: str):
    """`value` as a span attribute: bools and ints as such, strings redacted and capped; else None."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)  # an int subclass (IntEnum) as its plain value, without calling app code
    if isinstance(value, str):
        return redact(str.__str__(value), mode)[: attr.CAPTURED_VALUE_MAX_CHARS]
    return None


def _is_coroutine_function(raw) -> bool:
    func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
    return inspect.iscoroutinefunction(func)


class OperationSpan:
    """Span factory and wrapper functions for one configured target."""

    def __init__(self, tracer, operation: str, module: str, qualname: str, slots: tuple = ()):
        self.tracer = tracer
        self.operation = operation
        self.span_name = attr.SPAN_NAME_BY_OPERATION[operation]
        self.kind = SpanKind.CLIENT if operation == attr.OP_SEND else SpanKind.INTERNAL
        attributes = {attr.OPERATION: operation}
        if operation == attr.OP_SEND:
            attributes[attr.PROVIDER] = module.rsplit(".", 1)[-1]
        elif operation in (attr.OP_PERSONALIZE, attr.OP_TEMPLATE_LOAD):
            attributes[attr.TEMPLATE_ENGINE] = CUSTOM_ENGINE
            attributes[attr.TEMPLATE_NAME] = f"{module}:{qualname}"
        else:
            attributes[attr.CODE_FUNCTION_NAME] = f"{module}.{qualname}"
        self.attributes = attributes
        self.withhold = operation == attr.OP_PERSONALIZE
        self.slots = slots
        self.redact_mode = settings().redact if slots else None

    def _start_attributes(self, args, kwargs) -> dict:
        if not self.slots:
            return self.attributes
        attributes = dict(self.attributes)
        try:
            for attribute, arg, position, default in self.slots:
                if position is not None and position < len(args):
                    value = args[position]
                elif arg in kwargs:
                    value = kwargs[arg]
                elif default is not _NO_DEFAULT:
                    value = default
                else:
                    continue
                value = captured_value(value, self.redact_mode)
                if value is not None:
                    attributes[attribute] = value
        except Exception:
            internal_error("operations argument capture")
        return attributes

    def _open(self, args=(), kwargs=None):
        try:
            attributes = self._start_attributes(args, kwargs or {})
            span = self.tracer.start_span(self.span_name, kind=self.kind, attributes=attributes)
            return span, context.attach(trace.set_span_in_context(span))
        except Exception:
            internal_error("operations span start")
            return None

    def _close(self, opened, exc=None, result=None) -> None:
        span, token = opened
        try:
            context.detach(token)
        except Exception:
            internal_error("operations context detach")
        try:
            if exc is not None:
                if isinstance(exc, Exception):
                    mark_failed(span, exc, withhold=self.withhold)
            elif self.operation == attr.OP_PERSONALIZE and isinstance(result, (str, bytes, bytearray)):
                span.set_attribute(attr.CONTENT_BYTES, utf8_len(result))
            elif self.operation == attr.OP_SEGMENT and isinstance(result, Sized):
                self._segment_size(span, result)
            span.end()
        except Exception:
            internal_error("operations span end")

    @staticmethod
    def _segment_size(span, result) -> None:
        if isinstance(result, (str, bytes, bytearray)):
            return  # text, not a collection of recipients
        try:
            size = len(result)  # the collection's own __len__: app code
        except Exception:
            return
        span.set_attribute(attr.SEGMENT_SIZE, size)

    def sync_wrapper(self, wrapped, instance, args, kwargs):
        opened = self._open(args, kwargs)
        if opened is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self._close(opened, exc)
            raise
        if inspect.iscoroutine(result):
            # an async callable the signature did not reveal: the work happens when awaited
            self._close_detached_only(opened)
            return self._finish_later(opened[0], result)
        self._close(opened, result=result)
        return result

    @staticmethod
    def _close_detached_only(opened) -> None:
        try:
            context.detach(opened[1])
        except Exception:
            internal_error("operations context detach")

    async def _finish_later(self, span, coroutine):
        try:
            opened = (span, context.attach(trace.set_span_in_context(span)))
        except Exception:
            internal_error("operations context attach")
            opened = None
        if opened is None:
            return await coroutine
        try:
            result = await coroutine
        except BaseException as exc:
            self._close(opened, exc)
            raise
        self._close(opened, result=result)
        return result

    def async_wrapper(self, wrapped, instance, args, kwargs):
        return self._run_async(wrapped, args, kwargs)

    async def _run_async(self, wrapped, args, kwargs):
        opened = self._open(args, kwargs)
        if opened is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._close(opened, exc)
            raise
        self._close(opened, result=result)
        return result


class OperationsInstrumentor(MailscopeInstrumentor):
    _patches: list = []
    _active = None

    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        targets = kwargs.get("operations")
        if targets is None:
            targets = settings().operations
        state = _Run(tracer)
        self._active = state
        by_module: dict = {}
        seen: set = set()
        for target in targets:
            operation, module, qualname = target[:3]
            captures = target[3] if len(target) > 3 else ()
            if (module, qualname) in seen:
                _warn(operation, module, qualname, "the function is already named earlier in MAILSCOPE_OPERATIONS")
                continue
            seen.add((module, qualname))
            if module == "__main__":
                _warn(operation, module, qualname, "targets in __main__ are not supported; name an importable module")
                continue
            try:
                found = module_exists(module)
            except Exception:
                internal_error("operations module lookup")
                found = False
            if not found:
                _warn(operation, module, qualname, f"module {module!r} was not found")
                continue
            by_module.setdefault(module, []).append((operation, qualname, captures))
        for module, entries in by_module.items():
            wrapt.register_post_import_hook(state.hook_for(entries), module)

    def _uninstrument(self, **kwargs):
        state, self._active = self._active, None
        if state is not None:
            state.stop()

    @property
    def patches(self) -> list:
        return list(self._active.patches) if self._active is not None else []


def _warn(operation, module, qualname, reason) -> None:
    log_once(
        f"operations:{operation}={module}:{qualname}",
        "mailscope: MAILSCOPE_OPERATIONS entry %s=%s:%s skipped: %s",
        operation, module, qualname, reason,
    )


class _Run:
    """One instrument() run: its patches, and whether hooks that fire later still apply."""

    def __init__(self, tracer):
        self.tracer = tracer
        self.active = True
        self.patches: list = []
        self._lock = threading.Lock()

    def hook_for(self, entries):
        def on_import(module):
            # runs inside the app's import: never raises
            for operation, qualname, captures in entries:
                try:
                    self.wrap(module, operation, qualname, captures)
                except Exception:
                    internal_error("operations wrap")

        return on_import

    def wrap(self, module, operation: str, qualname: str, captures: tuple = ()) -> None:
        with self._lock:
            if not self.active:
                return
            try:
                owner, attribute, raw = _resolve(module, qualname)
            except AttributeError:
                _warn(operation, module.__name__, qualname, f"{module.__name__} has no attribute {qualname!r}")
                return
            if not _is_callable(raw):
                _warn(operation, module.__name__, qualname, f"{qualname!r} is not callable")
                return
            slots = ()
            if captures:
                slots, unknown = _argument_slots(owner, raw, captures)
                for arg in unknown or ():
                    log_once(
                        f"operations-arg:{module.__name__}:{qualname}:{arg}",
                        "mailscope: MAILSCOPE_OPERATIONS entry %s=%s:%s names argument %r, which it does not have; "
                        "it is never recorded", operation, module.__name__, qualname, arg,
                    )
            op = OperationSpan(self.tracer, operation, module.__name__, qualname, slots)
            wrapper = op.async_wrapper if _is_coroutine_function(raw) else op.sync_wrapper
            self.patches.append(wrapper_layers.apply(owner, attribute, wrapper))

    def stop(self) -> None:
        with self._lock:
            self.active = False
            patches, self.patches = self.patches, []
        for patch in reversed(patches):
            try:
                wrapper_layers.remove(patch)
            except Exception:
                internal_error("operations unwrap")

"""The `process {queue}` span: implicit bookkeeping per thread or asyncio task, and `processing()`.

Implicit: when an instrumented receive returns messages, a process span starts
and becomes the current span of the thread (or of the asyncio task) that
received them, so whatever the app does next - `handle(msg)` - is its child.
It ends when the same thread or task issues its next consumer command on a
queue, when the thread or task finishes, when the interpreter exits (atexit),
or when more than `MAX_OPEN` process spans are open at once (the oldest is
ended: bounded bookkeeping, a worker that never comes back cannot leak).

Context hygiene: the span's context is attached when the receive returns and
detached at the next consumer command only if it is still the current context;
if the app has since attached or detached contexts of its own, mailscope ends
its span and leaves the app's context stack alone.

Explicit: `processing(queue, message)` gives exact boundaries. It adopts the
open implicit span of that message (from any thread) or starts a new one, makes
it current for the block, records an exception leaving the block (which still
propagates unchanged) and ends the span when the block exits.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from mailscope._safety import internal_error
from mailscope.locks import module_lock, owned_lock

MAX_OPEN = 1024  # open process spans (one per busy thread or task)
MAX_RECENT = 1024  # recently received messages remembered for processing()


class Scope:
    """One open process span and the context that carries it."""

    __slots__ = ("span", "ctx", "token", "queue", "messages", "adopted", "closed", "creation", "_lock")

    def __init__(self, span, ctx, queue: str, messages: list, creation=None):
        self.span = span
        self.ctx = ctx
        self.token = None
        self.queue = queue
        self.messages = messages
        self.creation = creation  # SpanContext of the producer, single-message scopes only
        self.adopted = False
        self.closed = False
        self._lock = threading.Lock()

    def end(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        _registry.discard(self)
        try:
            self.span.end()
        except Exception:
            internal_error("queue process span end")

    def detach_if_current(self) -> None:
        """Detach our context from this thread/task, if it is still the current one."""
        token, self.token = self.token, None
        if token is not None and otel_context.get_current() is self.ctx:
            try:
                otel_context.detach(token)
            except Exception:
                internal_error("queue process detach")


class _Registry:
    """Every open scope, insertion-ordered and capped; atexit ends them all."""

    def __init__(self):
        self._open: OrderedDict[int, Scope] = OrderedDict()
        self._recent: OrderedDict[tuple, Scope] = OrderedDict()
        # reentrant: a thread-exit finaliser may end a scope on a thread that holds it
        self._lock = owned_lock(self, threading.RLock)

    def add(self, scope: Scope) -> None:
        evicted = []
        with self._lock:
            self._open[id(scope)] = scope
            while len(self._open) > MAX_OPEN:
                evicted.append(self._open.popitem(last=False)[1])
            if len(scope.messages) == 1:
                key = _recent_key(scope.queue, scope.messages[0])
                if key is not None:
                    self._recent[key] = scope
                    self._recent.move_to_end(key)
                    while len(self._recent) > MAX_RECENT:
                        self._recent.popitem(last=False)
        for old in evicted:
            old.end()

    def discard(self, scope: Scope) -> None:
        """`scope` ended: forget it, and let its span go.

        The recent map keeps answering for the message, but without the ended scope: what
        `processing()` can still use of it is its producer's context (`creation`), so it
        keeps an `_Ended` record of that, or nothing when there is none. Holding the
        scopes themselves kept up to MAX_RECENT exported spans (and their contexts,
        attributes and locks) alive, which every full garbage collection walked.
        """
        with self._lock:
            self._open.pop(id(scope), None)
            if len(scope.messages) == 1 and self._recent:
                key = _recent_key(scope.queue, scope.messages[0])
                if key is not None and self._recent.get(key) is scope:
                    if scope.creation is None:
                        del self._recent[key]
                    else:
                        self._recent[key] = _Ended(scope)

    def recent(self, queue: str, message):
        key = _recent_key(queue, message)
        if key is None:
            return None
        with self._lock:
            return self._recent.get(key)

    def open_count(self) -> int:
        return len(self._open)

    def end_all(self) -> None:
        with self._lock:
            scopes = list(self._open.values())
            self._open.clear()
            self._recent.clear()
        for scope in scopes:
            scope.end()


class _Ended:
    """What the recent map keeps of an ended single-message scope (see `_Registry.discard`)."""

    __slots__ = ("queue", "creation", "adopted")
    closed = True

    def __init__(self, scope: Scope):
        self.queue = scope.queue
        self.creation = scope.creation
        self.adopted = scope.adopted


def _recent_key(queue, message):
    if isinstance(message, (bytes, str)):
        return (queue, message)
    return None


_registry = _Registry()
atexit.register(_registry.end_all)


# --- the slot of the current thread or task --------------------------------------
class _ThreadSlot:
    """Lives in a threading.local: freed when its thread ends, which ends the open span."""

    __slots__ = ("scope",)

    def __init__(self):
        self.scope = None

    def __del__(self):
        scope = self.scope
        if scope is not None and not scope.adopted:
            try:
                scope.end()
            except Exception:
                pass


_threads = threading.local()
# asyncio task -> its open Scope, or None between messages. The key stays until the task
# is done, so each task gets exactly one done-callback however many messages it handles.
_tasks: dict = {}
_tasks_lock = module_lock()


def _current_task():
    if "asyncio" not in sys.modules:
        return None
    try:
        if asyncio._get_running_loop() is None:
            return None
        return asyncio.current_task()
    except RuntimeError:
        return None


def _task_done(task) -> None:
    with _tasks_lock:
        scope = _tasks.pop(task, None)
    if scope is not None and not scope.adopted:
        scope.end()


def _take_slot():
    """Remove and return the current thread's or task's implicit scope."""
    task = _current_task()
    if task is not None:
        with _tasks_lock:
            scope = _tasks.get(task)
            if scope is not None:
                _tasks[task] = None
            return scope
    slot = getattr(_threads, "slot", None)
    if slot is None:
        return None
    scope, slot.scope = slot.scope, None
    return scope


def _put_slot(scope: Scope) -> None:
    task = _current_task()
    if task is not None:
        with _tasks_lock:
            first = task not in _tasks
            _tasks[task] = scope
        if first:
            task.add_done_callback(_task_done)
        return
    slot = getattr(_threads, "slot", None)
    if slot is None:
        slot = _threads.slot = _ThreadSlot()
    slot.scope = scope


def end_current() -> None:
    """The next consumer command of this thread or task: end its implicit process span."""
    scope = _take_slot()
    if scope is None:
        return
    scope.detach_if_current()
    if not scope.adopted:  # an adopted scope is ended by its processing() block
        scope.end()


def open_implicit(scope: Scope) -> None:
    """Make `scope` current for this thread or task until its next consumer command."""
    _registry.add(scope)
    scope.token = otel_context.attach(scope.ctx)
    _put_slot(scope)


def current_scope():
    task = _current_task()
    if task is not None:
        return _tasks.get(task)
    slot = getattr(_threads, "slot", None)
    return slot.scope if slot is not None else None


# --- explicit boundaries -----------------------------------------------------------
def _adopt(queue: str, message):
    """(scope, taken_from_this_thread) for the open implicit span of `message`, or (None, False)."""
    scope = current_scope()
    if scope is not None and not scope.closed and not scope.adopted and len(scope.messages) == 1:
        if scope.queue == queue and (scope.messages[0] is message or scope.messages[0] == message):
            _take_slot()
            scope.adopted = True
            return scope, True
    scope = _registry.recent(queue, message)
    if scope is not None and not scope.closed and not scope.adopted:
        scope.adopted = True  # another thread received it; that thread detaches its own context
        return scope, False
    return None, False


@contextmanager
def processing_scope(queue: str, message, start_new):
    """Adopt the open process span of `message` or start one with `start_new()`; yield it."""
    scope, local = None, False
    try:
        scope, local = _adopt(queue, message)
        if scope is None:
            scope = start_new()
            if scope is not None:
                _registry.add(scope)
    except Exception:
        internal_error("queue processing() start")
        scope = None
    if scope is None:
        yield None
        return
    token = None
    try:
        if otel_context.get_current() is not scope.ctx:
            token = otel_context.attach(scope.ctx)
    except Exception:
        internal_error("queue processing() attach")
    try:
        yield scope
    except Exception as exc:
        _record_failure(scope.span, exc)
        raise
    finally:
        try:
            if token is not None and otel_context.get_current() is scope.ctx:
                otel_context.detach(token)
            if local:
                scope.detach_if_current()  # the implicit attach made by this thread's receive
        except Exception:
            internal_error("queue processing() detach")
        scope.end()


def _record_failure(span, exc: BaseException) -> None:
    try:
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    except Exception:
        internal_error("queue processing() failure")


def open_count() -> int:
    return _registry.open_count()


def end_all() -> None:
    _registry.end_all()


def new_scope(tracer, name: str, attributes: dict, parent_ctx, links, queue: str, messages: list, creation=None):
    span = tracer.start_span(name, context=parent_ctx, kind=trace.SpanKind.CONSUMER, attributes=attributes,
                             links=links)
    return Scope(span, trace.set_span_in_context(span), queue, messages, creation)


def recent(queue: str, message):
    """The scope a recent receive opened for `message`, if remembered: the open scope, or for an
    ended one a record with `closed` set and its `creation` (None when it had no producer context)."""
    return _registry.recent(queue, message)

"""Forked worker processes export their own spans.

The SDK restarts its export threads in a forked child, but a `multiprocessing`
child ends with `os._exit()` after its target returns: atexit handlers never run,
so whatever the child's BatchSpanProcessor still holds - usually every span the
child made - is lost. mailscope registers, once per process and only when
`multiprocessing` is in use at the time of a fork, an after-fork hook with
`multiprocessing.util`; in each child it arms a multiprocessing finalizer (run by
the child's normal exit path) that flushes the tracer and meter providers.

The flush runs in a helper thread and the child waits for it at most
`FLUSH_TIMEOUT_MS` (plus a second): the SDK's force_flush exports in the calling
thread with no timeout of its own, and an exporter lock that another thread of
the parent held at the moment of the fork stays held forever in the child, so
an unbounded flush could keep the child, and a parent joining it, from ever
exiting. A flush that does not finish in time is logged once and abandoned:
the child's remaining spans are lost, the child exits.

Not covered: a child killed by a signal (`Pool.terminate()`, which the `with
Pool()` block calls on exit, sends SIGTERM) and bare `os.fork()` children that
leave with `os._exit()`. Pre-forking servers such as gunicorn leave their workers
with `sys.exit()`, so the launcher's atexit shutdown already flushes them.
"""

from __future__ import annotations

import os
import sys
import threading

from mailscope._safety import internal_error, log_once

FLUSH_TIMEOUT_MS = 5000

_installed = False
_registered = False  # inherited by children, whose after-fork registry is inherited too


class _Token:
    """The object multiprocessing's after-fork registry holds (it keeps weak references)."""


_TOKEN = _Token()


def install() -> None:
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):
        return
    _installed = True
    os.register_at_fork(before=_before_fork)


def _before_fork() -> None:
    global _registered
    if _registered:
        return
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    try:
        util.register_after_fork(_TOKEN, _arm_child)
        _registered = True
    except Exception:
        internal_error("fork hook")


def _arm_child(_token) -> None:
    """In a multiprocessing child, after its finalizer registry was reset."""
    try:
        import multiprocessing.util as util

        util.Finalize(None, flush_providers, exitpriority=10)
    except Exception:
        internal_error("fork child hook")


def _flush_now() -> None:
    try:
        from opentelemetry import metrics, trace

        for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush(FLUSH_TIMEOUT_MS)
    except Exception:
        internal_error("flush at child exit")


def flush_providers(timeout_s: float | None = None) -> bool:
    """Flush the tracer and meter providers; give up after `timeout_s`. True when it finished."""
    if timeout_s is None:
        timeout_s = FLUSH_TIMEOUT_MS / 1000 + 1
    try:
        worker = threading.Thread(target=_flush_now, name="mailscope-exit-flush", daemon=True)
        worker.start()
        worker.join(timeout_s)
    except Exception:
        internal_error("flush at child exit")
        return False
    if worker.is_alive():
        log_once(
            "fork:flush-timeout",
            "mailscope: flushing telemetry at the exit of process %d did not finish within %.0f s (an exporter "
            "lock held by another thread when it was forked?); its unexported spans are dropped",
            os.getpid(), timeout_s,
        )
        return False
    return True

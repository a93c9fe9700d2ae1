"""Export locks a forked child does not inherit held.

The upstream OTLP JSON-file exporters (`otlp_json_file`, the embedded defaults'
exporters) write each batch under a `threading.Lock` of their own, and inside it
through a buffered file object, which has a lock of its own too. The SDK's
periodic metric reader exports under its `_export_lock`, and does not renew it in
a forked child. The export threads take these locks while the app's threads run:
an app that forks while an export thread is in the middle of a write (the thread
releases the GIL in the write system call, exactly when the forking thread gets to
run) hands its child the locks held by a thread that does not exist in the child.
The child's next export then waits forever: a worker's `force_flush()` never
returns, and the app is blocked.

mailscope takes these locks just before a fork and releases them on both sides
after, the way the `logging` module guards its handlers, in the order the export
threads take them (the reader's, then its exporter's): a fork waits for a write in
progress (one batch) to finish, and no export is in progress in the child. The
buffered file's lock is only ever taken inside the exporter's lock, so it is free
too. A lock that cannot be had within `PREPARE_TIMEOUT_S` (a writer stuck on a dead
disk) is not waited for longer: the child gets a new lock instead, and the fork
goes ahead.
"""

from __future__ import annotations

import os
import threading
import weakref

PREPARE_TIMEOUT_S = 1.0
_LOCK_TYPE = type(threading.Lock())
_MAX_SLOTS = 64  # a process has a handful of exporters; a cap all the same

_slots: list = []  # (weakref to the owner, attribute name), in the order they are taken
_held: list = []  # (owner, attribute name, acquired) between the prepare and the after-fork handlers
_slots_lock = threading.Lock()


def _add(owner, name: str) -> bool:
    if owner is None or type(getattr(owner, name, None)) is not _LOCK_TYPE:
        return False
    try:
        ref = weakref.ref(owner)
    except TypeError:
        return False
    with _slots_lock:
        _slots[:] = [(r, n) for r, n in _slots if r() is not None]
        if any(r() is owner and n == name for r, n in _slots) or len(_slots) >= _MAX_SLOTS:
            return False
        _slots.append((ref, name))
    return True


def guard_exporter(exporter) -> bool:
    """Register an upstream OTLP JSON-file exporter's lock; True when `exporter` is one."""
    inner = getattr(exporter, "_exporter", None)
    return hasattr(inner, "_stream") and _add(inner, "_lock")


def guard_metric_reader(reader) -> bool:
    """Register a periodic metric reader's export lock, then its exporter's."""
    added = _add(reader, "_export_lock")
    return guard_exporter(getattr(reader, "_exporter", None)) or added


def _before_fork() -> None:
    _held.clear()
    if not _slots_lock.acquire(timeout=PREPARE_TIMEOUT_S):
        return
    try:
        slots = list(_slots)
    finally:
        _slots_lock.release()
    for ref, name in slots:
        owner = ref()
        if owner is None:
            continue
        try:
            _held.append((owner, name, getattr(owner, name).acquire(timeout=PREPARE_TIMEOUT_S)))
        except Exception:
            pass


def _after_in_parent() -> None:
    for owner, name, acquired in reversed(_held):
        if acquired:
            try:
                getattr(owner, name).release()
            except Exception:
                pass
    _held.clear()


def _after_in_child() -> None:
    global _slots_lock
    _slots_lock = threading.Lock()
    for owner, name, acquired in reversed(_held):
        try:
            if acquired:
                getattr(owner, name).release()
            else:
                setattr(owner, name, threading.Lock())
        except Exception:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_in_parent, after_in_child=_after_in_child)

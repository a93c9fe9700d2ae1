"""Locks that a forked child gets back unlocked.

`fork()` copies a lock in whatever state it is in, and in the child no thread
will ever release a lock another thread of the parent held at that moment. In a
pre-forking server (gunicorn) the master's metric collection thread reads
mailscope's counters and histograms under their locks every export interval; a
worker forked during that read would block on its first span or measurement,
forever. Every long-lived lock of mailscope is created here and re-initialised
(unlocked) in each child: the state it guards is at worst one update short.

Creating a lock registers it once; taking it costs nothing extra. Per-message
objects keep plain locks: only the thread that made them uses them.
"""

from __future__ import annotations

import os
import threading
import weakref

_by_owner: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # owner -> its locks
_module_locks: list = []
_registry_lock = threading.Lock()


def owned_lock(owner, factory=threading.Lock):
    """A lock for `owner` (weak-referenceable and hashable), re-initialised in forked children."""
    lock = factory()
    with _registry_lock:
        _by_owner.setdefault(owner, []).append(lock)
    return lock


def module_lock(factory=threading.Lock):
    """A lock that lives as long as the process (a module's), re-initialised in forked children."""
    lock = factory()
    with _registry_lock:
        _module_locks.append(lock)
    return lock


def _reinit_in_child() -> None:
    _registry_lock._at_fork_reinit()
    for lock in _module_locks:
        lock._at_fork_reinit()
    for locks in list(_by_owner.values()):
        for lock in locks:
            lock._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_in_child)

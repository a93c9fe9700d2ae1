"""The host app comes first: helpers that keep mailscope's own failures inside mailscope.

`log_once(key, ...)` logs a problem the first time a key is seen and stays quiet
afterwards; the set of keys is capped so a pathological stream of distinct keys
cannot grow it without bound. `guarded(key)` wraps a mailscope function so an
exception inside it is logged once and swallowed, returning a fallback.
"""

from __future__ import annotations

import functools
import logging
import re
from mailscope.locks import module_lock
import traceback

logger = logging.getLogger("mailscope")

_MAX_KEYS = 1024
_seen: set[str] = set()
_lock = module_lock()
_FALLBACK_ADDRESS = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")


def log_once(key: str, message: str, *args, level: int = logging.WARNING, exc_info: bool = False) -> bool:
    """Log `message` at `level` unless `key` was logged before. Returns True when it logged."""
    with _lock:
        if key in _seen:
            return False
        if len(_seen) >= _MAX_KEYS:
            key = "__overflow__"
            if key in _seen:
                return False
        _seen.add(key)
    try:
        logger.log(level, "%s", _scrub(message, args, exc_info))
    except Exception:  # logging itself must not hurt the app either
        pass
    return True


def _scrub(message: str, args: tuple, exc_info: bool) -> str:
    """The formatted message (and traceback), with email addresses masked.

    mailscope's own log lines can quote exception text and configuration values;
    they go through the same redaction as exported spans (MAILSCOPE_REDACT), or
    through a blunt full mask if the redaction code itself cannot run.
    """
    text = message % args if args else message
    if exc_info:
        text = text + "\n" + traceback.format_exc().rstrip()
    try:
        from mailscope import config
        from mailscope.processors.redact import redact

        # the settings as loaded so far (loading them may be what is logging now)
        current = config._current
        return redact(text, current.redact if current is not None else "domain")
    except Exception:
        return _FALLBACK_ADDRESS.sub("<redacted>@<redacted>", text)


def internal_error(where: str) -> None:
    """Record an unexpected exception inside mailscope (call from an except block)."""
    log_once(
        "internal:" + where,
        "mailscope: internal error in %s; it is swallowed and the app continues "
        "(further errors here are not logged)",
        where,
        level=logging.ERROR,
        exc_info=True,
    )


def guarded(where: str, fallback=None):
    """Decorator: run the function, and on any exception log once and return `fallback`."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception:
                internal_error(where)
                return fallback

        return wrapper

    return decorate


def reset_for_tests() -> None:
    with _lock:
        _seen.clear()

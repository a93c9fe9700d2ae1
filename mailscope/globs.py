"""Glob matching for span and template names, compiled once.

`GlobList(("email.*", "smtp.*")).matches(name)` is one precompiled regex test.
`GlobMap(((glob, value), ...)).lookup(name)` returns the value of the first glob that
matches, with a bounded per-name cache because span names repeat endlessly.
"""

from __future__ import annotations

import fnmatch
import re
from mailscope.locks import owned_lock


def is_valid_glob(pattern: str) -> bool:
    """Non-empty, no surrounding blanks, and brackets that open also close."""
    if not pattern or pattern != pattern.strip():
        return False
    depth = 0
    for ch in pattern:
        if ch == "[":
            if depth:
                return False
            depth = 1
        elif ch == "]" and depth:
            depth = 0
    return depth == 0


def _compile(patterns) -> re.Pattern:
    if not patterns:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class GlobList:
    __slots__ = ("patterns", "_regex", "match_all")

    def __init__(self, patterns):
        self.patterns = tuple(patterns)
        self.match_all = "*" in self.patterns
        self._regex = _compile(self.patterns)

    def matches(self, name: str) -> bool:
        return self.match_all or self._regex.match(name) is not None

    def __repr__(self) -> str:
        return f"GlobList({list(self.patterns)!r})"


class GlobMap:
    """First matching glob wins; results cached per name (bounded)."""

    __slots__ = ("items", "_compiled", "_cache", "_cache_max", "_lock", "__weakref__")

    def __init__(self, items, cache_max: int = 4096):
        self.items = tuple(items)
        self._compiled = tuple((re.compile(fnmatch.translate(g)), v) for g, v in self.items)
        self._cache: dict = {}
        self._cache_max = cache_max
        self._lock = owned_lock(self)

    def lookup(self, name: str, default=None):
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = default
        for regex, v in self._compiled:
            if regex.match(name):
                value = v
                break
        with self._lock:
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            self._cache[name] = value
        return value

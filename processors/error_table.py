"""A bounded LRU table of fingerprint -> occurrences in this process.

`seen(fingerprint)` counts one more occurrence and returns the count, this one
included. The table holds at most `capacity` fingerprints; when a new one
arrives at a full table the least recently seen is forgotten (its count starts
again at 1 if it comes back), so a flood of distinct errors cannot grow memory.
"""

from __future__ import annotations

from mailscope.locks import owned_lock
from collections import OrderedDict


class OccurrenceTable:
    __slots__ = ("capacity", "_counts", "_lock", "evicted", "__weakref__")

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = owned_lock(self)
        self.evicted = 0

    def seen(self, fingerprint: str) -> int:
        with self._lock:
            counts = self._counts
            count = counts.get(fingerprint)
            if count is None:
                if len(counts) >= self.capacity:
                    counts.popitem(last=False)
                    self.evicted += 1
                count = 1
            else:
                count += 1
                counts.move_to_end(fingerprint)
            counts[fingerprint] = count
            return count

    def count(self, fingerprint: str) -> int:
        return self._counts.get(fingerprint, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, fingerprint: str) -> bool:
        return fingerprint in self._counts

"""Bounded streaming summaries used by `mailscope report`.

Every structure here has a size that does not grow with the number of spans:

- `LogHistogram`: fixed log-bucket histogram of signed values. Bucket i holds
  values in (g^(i-1), g^i] with g = (1+a)/(1-a); reporting a bucket as
  2 g^i / (g+1) is within a relative error `a` (1 %) of every value in it.
  Quantiles use the nearest-rank definition (the value at rank ceil(p/100 * n)).
  Values whose magnitude is below `MIN_MAGNITUDE` count as zero, so a histogram
  of durations in ms has at most a few thousand buckets whatever the input.
- `DistinctCounter`: exact set of keys up to a cap, then a HyperLogLog sketch
  (2^14 registers, about 0.8 % standard error); `estimated` says which.
- `TopK`: the k largest items by a numeric key (a min-heap of size k).
- `TimeBuckets`: counts per (time bucket, key) over at most `max_buckets`
  contiguous buckets; the bucket width doubles whenever the observed range
  would need more.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
MIN_MAGNITUDE = 1e-9


def _bucket(magnitude: float) -> int:
    return math.ceil(math.log(magnitude) * _INV_LOG_GAMMA)


def _representative(index: int) -> float:
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


class LogHistogram:
    __slots__ = ("pos", "neg", "zero", "count", "total", "min", "max")

    def __init__(self):
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zero = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value > MIN_MAGNITUDE:
            i = _bucket(value)
            self.pos[i] = self.pos.get(i, 0) + 1
        elif value < -MIN_MAGNITUDE:
            i = _bucket(-value)
            self.neg[i] = self.neg.get(i, 0) + 1
        else:
            self.zero += 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def _ascending(self):
        """(representative value, count) from the smallest value up."""
        for i in sorted(self.neg, reverse=True):
            yield -_representative(i), self.neg[i]
        if self.zero:
            yield 0.0, self.zero
        for i in sorted(self.pos):
            yield _representative(i), self.pos[i]

    def quantile(self, percent: int) -> float | None:
        """Nearest-rank percentile (`percent` in 1..100), within ALPHA of the exact one."""
        if not self.count:
            return None
        rank = max(1, -(-percent * self.count // 100))
        seen = 0
        for value, n in self._ascending():
            seen += n
            if seen >= rank:
                return min(max(value, self.min), self.max)
        return self.max

    def binned(self, bounds: list[float]) -> list[int]:
        """Counts per bin for sorted upper `bounds` (plus one overflow bin), by bucket representative."""
        counts = [0] * (len(bounds) + 1)
        for value, n in self._ascending():
            lo, hi = 0, len(bounds)
            while lo < hi:  # first bound >= value
                mid = (lo + hi) // 2
                if bounds[mid] < value:
                    lo = mid + 1
                else:
                    hi = mid
            counts[lo] += n
        return counts

    def buckets(self) -> int:
        return len(self.pos) + len(self.neg) + (1 if self.zero else 0)


class DistinctCounter:
    """Exact distinct count up to `exact_cap` keys, HyperLogLog estimate beyond."""

    P = 14
    M = 1 << P

    __slots__ = ("exact", "exact_cap", "registers")

    def __init__(self, exact_cap: int = 50_000):
        self.exact: set | None = set()
        self.exact_cap = exact_cap
        self.registers: bytearray | None = None

    def add(self, key: str) -> None:
        exact = self.exact
        if exact is not None:
            if key in exact:
                return
            exact.add(key)
            if len(exact) > self.exact_cap:
                self.registers = bytearray(self.M)
                for k in exact:
                    self._hll_add(k)
                self.exact = None
            return
        self._hll_add(key)

    def _hll_add(self, key: str) -> None:
        h = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "big")
        index = h >> (64 - self.P)
        rest = h & ((1 << (64 - self.P)) - 1)
        rank = (64 - self.P) - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    @property
    def estimated(self) -> bool:
        return self.exact is None

    def count(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        m = self.M
        alpha = 0.7213 / (1 + 1.079 / m)
        total = sum(2.0 ** -r for r in self.registers)
        estimate = alpha * m * m / total
        zeros = self.registers.count(0)
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return int(round(estimate))


class TopK:
    __slots__ = ("k", "heap", "_seq")

    def __init__(self, k: int = 10):
        self.k = k
        self.heap: list = []
        self._seq = 0

    def would_keep(self, key: float) -> bool:
        return len(self.heap) < self.k or key > self.heap[0][0]

    def add(self, key: float, item) -> None:
        self._seq += 1
        entry = (key, -self._seq, item)  # on ties the earlier item stays
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, entry)
        elif key > self.heap[0][0]:
            heapq.heapreplace(self.heap, entry)

    def items(self) -> list:
        """Largest first."""
        return [item for _, _, item in sorted(self.heap, key=lambda e: (e[0], e[1]), reverse=True)]


class TimeBuckets:
    """Counts per key over time; at most `max_buckets` contiguous buckets."""

    __slots__ = ("width_ns", "max_buckets", "cells", "lo", "hi")

    def __init__(self, max_buckets: int = 120, initial_width_ns: int = 1_000_000_000):
        self.width_ns = initial_width_ns
        self.max_buckets = max_buckets
        self.cells: dict[int, Counter] = {}
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, time_ns: int, key, n: int = 1) -> None:
        b = time_ns // self.width_ns
        if self.lo is None:
            self.lo = self.hi = b
        elif b < self.lo:
            self.lo = b
        elif b > self.hi:
            self.hi = b
        while self.hi - self.lo + 1 > self.max_buckets:
            self._coarsen()
            b = time_ns // self.width_ns
        cell = self.cells.get(b)
        if cell is None:
            cell = self.cells[b] = Counter()
        cell[key] += n

    def _coarsen(self) -> None:
        self.width_ns *= 2
        merged: dict[int, Counter] = {}
        for b, cell in self.cells.items():
            target = merged.get(b // 2)
            if target is None:
                merged[b // 2] = cell
            else:
                target.update(cell)
        self.cells = merged
        self.lo //= 2
        self.hi //= 2

    def series(self, keys) -> tuple[int | None, list[dict]]:
        """(start of the first bucket in ns, [{key, counts}] with one count per bucket); others summed as None."""
        if self.lo is None:
            return None, []
        wanted = list(keys)
        chosen = set(wanted)
        rows = {k: [0] * (self.hi - self.lo + 1) for k in wanted}
        other = [0] * (self.hi - self.lo + 1)
        for b, cell in self.cells.items():
            for k, n in cell.items():
                (rows[k] if k in chosen else other)[b - self.lo] += n
        out = [{"key": k, "counts": rows[k]} for k in wanted]
        if any(other):
            out.append({"key": None, "counts": other})
        return self.lo * self.width_ns, out

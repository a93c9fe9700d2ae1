"""Trace and span ids that leave the app's `random` module alone.

The SDK's default `RandomIdGenerator` draws from the global `random` module, so
every span consumes numbers an app that called `random.seed(x)` expected to get
itself (A/B assignment, sampling a list, a seeded test). mailscope's generator
draws the same 64 and 128 random bits from a `random.Random` of its own, seeded
from the OS.

A forked child starts with a copy of the parent's generator state: without a
re-seed, parent and child would produce the same ids from then on. The generator
is re-seeded in every child, as the `random` module does for its own instance.

A user who names a generator in `OTEL_PYTHON_ID_GENERATOR` keeps it, even `random`, the
SDK's own.
"""

from __future__ import annotations

import os
import random

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator

_rng = random.Random()  # seeded from os.urandom
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)
_bits = _rng.getrandbits


class PrivateRandomIdGenerator(IdGenerator):
    """Random ids, like the SDK's default, from mailscope's own generator."""

    def generate_span_id(self) -> int:
        span_id = _bits(64)
        while span_id == trace.INVALID_SPAN_ID:
            span_id = _bits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = _bits(128)
        while trace_id == trace.INVALID_TRACE_ID:
            trace_id = _bits(128)
        return trace_id

    def is_trace_id_random(self) -> bool:
        return True


def id_generator_for_sdk(environ=None) -> IdGenerator | None:
    """The generator to hand the SDK: ours, unless the user chose one (None lets the SDK load it)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_PYTHON_ID_GENERATOR", "").strip():
        return None
    return PrivateRandomIdGenerator()

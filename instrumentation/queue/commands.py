"""Which redis-py list commands are queue operations, and where their queues and messages are.

A `Producer` spec knows the key and values of LPUSH/RPUSH/LPUSHX/RPUSHX and how
to rebuild the call with new values (the envelope). A `Consumer` spec knows the
candidate source keys of a pop or move before it runs, and after it returns
which key the messages came from, the messages, and how to rebuild the reply
with new messages (stripped of their envelope) in the very shape redis-py gave it.

Specs read arguments the way the redis-py methods declare them, positionally or
by keyword, without `inspect.signature` on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def key_text(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("utf-8", "replace")
    return str(key)


def _arg(args, kwargs, index: int, name: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


@dataclass(frozen=True)
class Producer:
    method: str
    module: str
    owner: str

    @staticmethod
    def split(args, kwargs):
        """(key, values) of `name, *values`."""
        if args:
            return args[0], args[1:]
        return kwargs.get("name"), ()

    @staticmethod
    def rebuild(args, kwargs, values):
        if args:
            return (args[0], *values), kwargs
        return args, kwargs


@dataclass(frozen=True)
class Consumer:
    method: str
    module: str
    owner: str
    sources: Callable  # (args, kwargs) -> list of candidate source keys
    unpack: Callable  # (reply, args, kwargs) -> (key or None, [messages], rebuild(messages) -> reply)
    destination: Callable | None = None  # (args, kwargs) -> key a move pushes to


def _same(reply):
    return lambda messages: reply


# --- reply shapes --------------------------------------------------------------
def _single(source_of):
    """Reply is one message or None (LMOVE, RPOPLPUSH, ...)."""

    def unpack(reply, args, kwargs):
        if reply is None or isinstance(reply, (list, tuple, dict)):
            return None, [], _same(reply)
        return source_of(args, kwargs), [reply], lambda messages: messages[0]

    return unpack


def _pop_unpack(reply, args, kwargs):
    """RPOP/LPOP: one message, or a list of them when `count` was given."""
    key = _arg(args, kwargs, 0, "name")
    if reply is None:
        return None, [], _same(reply)
    if isinstance(reply, list):
        return key, list(reply), lambda messages: list(messages)
    if isinstance(reply, tuple):
        return None, [], _same(reply)
    return key, [reply], lambda messages: messages[0]


def _blocking_pop_unpack(reply, args, kwargs):
    """BRPOP/BLPOP: (key, message) or None."""
    if not isinstance(reply, (list, tuple)) or len(reply) != 2:
        return None, [], _same(reply)
    key, message = reply
    kind = type(reply)
    return key, [message], lambda messages: kind((key, messages[0]))


def _multi_pop_unpack(reply, args, kwargs):
    """BLMPOP/LMPOP: [key, [messages]] or None."""
    if not isinstance(reply, (list, tuple)) or len(reply) != 2 or not isinstance(reply[1], (list, tuple)):
        return None, [], _same(reply)
    key, messages = reply
    outer, inner = type(reply), type(messages)
    return key, list(messages), lambda new: outer((key, inner(new)))


# --- candidate source keys -----------------------------------------------------
def _keys_arg(args, kwargs):
    keys = _arg(args, kwargs, 0, "keys")
    if isinstance(keys, (list, tuple)):
        return list(keys)
    return [keys] if keys is not None else []


def _first(name: str):
    return lambda args, kwargs: [_arg(args, kwargs, 0, name)]


def _first_of(name: str):
    return lambda args, kwargs: _arg(args, kwargs, 0, name)


def _second(name: str):
    return lambda args, kwargs: _arg(args, kwargs, 1, name)


def _blmpop_keys(args, kwargs):
    return list(args[2:])


def _lmpop_keys(args, kwargs):
    return list(args[1:])


_CORE = "redis.commands.core"

PRODUCERS = tuple(
    Producer(method, _CORE, "ListCommands") for method in ("lpush", "rpush", "lpushx", "rpushx")
)

CONSUMERS = (
    Consumer("brpop", _CORE, "ListCommands", _keys_arg, _blocking_pop_unpack),
    Consumer("blpop", _CORE, "ListCommands", _keys_arg, _blocking_pop_unpack),
    Consumer("rpop", _CORE, "ListCommands", _first("name"), _pop_unpack),
    Consumer("lpop", _CORE, "ListCommands", _first("name"), _pop_unpack),
    Consumer("rpoplpush", _CORE, "ListCommands", _first("src"), _single(_first_of("src")), _second("dst")),
    Consumer("brpoplpush", _CORE, "ListCommands", _first("src"), _single(_first_of("src")), _second("dst")),
    Consumer("lmove", _CORE, "BasicKeyCommands", _first("first_list"), _single(_first_of("first_list")),
             _second("second_list")),
    Consumer("blmove", _CORE, "BasicKeyCommands", _first("first_list"), _single(_first_of("first_list")),
             _second("second_list")),
    Consumer("blmpop", _CORE, "ListCommands", _blmpop_keys, _multi_pop_unpack),
    Consumer("lmpop", _CORE, "ListCommands", _lmpop_keys, _multi_pop_unpack),
)

# LREM on a list a move delivered to: the app removes the message it was given
# (envelope stripped); Redis holds it with the envelope.
LREM = ("lrem", _CORE, "ListCommands")

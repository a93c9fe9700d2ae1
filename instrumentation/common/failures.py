"""Marking a mailscope span failed, without letting values out.

`error.type` is the exception's `module.QualName` (`builtins` omitted), the same
string the SDK writes as `exception.type`, so the error_type stage and the
instrumentors agree. Exceptions raised while personalizing can carry variable
values in their message (an app filter's `ValueError: invalid literal ...
'Jane'`), so on those spans the message is withheld unless the exception comes
from the template engine itself, whose messages name variables and types, never
values. The stack trace keeps its frames; only the message line is replaced.
"""

from __future__ import annotations

import traceback

from opentelemetry.trace import Status, StatusCode

from mailscope import attributes as attr

WITHHELD = "(message withheld: it may contain personalization values)"


def error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def _frames_only(exc: BaseException, type_name: str) -> str:
    frames = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    return "Traceback (most recent call last):\n" + "".join(frames) + f"{type_name}: {WITHHELD}\n"


def mark_failed(span, exc: BaseException, *, safe_messages: tuple = (), withhold: bool = False) -> None:
    """Record `exc` on `span`: ERROR status, `error.type`, an exception event.

    With `withhold`, the message is replaced unless `exc` is an instance of one of
    `safe_messages` (the engine's own exception classes)."""
    if not span.is_recording():
        return
    type_name = error_type(exc)
    span.set_attribute(attr.ERROR_TYPE, type_name)
    span.set_status(Status(StatusCode.ERROR, type_name))
    # last: the SDK calls the exception's own __str__, which is app code and may fail
    if withhold and not isinstance(exc, safe_messages):
        span.record_exception(
            exc,
            attributes={attr.EXCEPTION_MESSAGE: WITHHELD, attr.EXCEPTION_STACKTRACE: _frames_only(exc, type_name)},
        )
    else:
        span.record_exception(exc)

"""Stage: give every failed span the semantic-convention `error.type`.

Instrumentations differ: some record an exception event, some only set an ERROR
status. Dashboards group by `error.type`, so when a failed span lacks it this
stage fills it from the exception event's `exception.type`, or `_OTHER` (the
semantic conventions' fallback value) when nothing names the error.
"""

from __future__ import annotations

from mailscope import attributes as attr

OTHER = "_OTHER"


class ErrorTypeStage:
    name = "error_type"
    failed_only = True  # the pipeline skips it on spans with no ERROR status and no event

    def __call__(self, draft) -> None:
        if not draft.is_error or attr.ERROR_TYPE in draft.attributes:
            return
        event = draft.exception_event()
        error_type = None
        if event is not None and event.attributes:
            error_type = event.attributes.get(attr.EXCEPTION_TYPE)
        draft.set_attribute(attr.ERROR_TYPE, str(error_type) if error_type else OTHER)

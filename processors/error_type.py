"""Stage: give every failed span the semantic-convention `error.type`.

Instrumentations differ: some record an exception event, some only set an ERROR
status. Dashboards group by `error.type`, so when a failed span lacks it this
stage fills it from the exception event's `exception.type`; else, on an HTTP
client span with an error answer, from its status code as the HTTP semantic
conventions do (`"503"`: the requests and httpx instrumentations under the older
conventions set only `http.status_code`); else `_OTHER` (the conventions'
fallback value) when nothing names the error.
"""

from __future__ import annotations

from opentelemetry.attributes import BoundedAttributes

from mailscope import attributes as attr

OTHER = "_OTHER"
# an SDK event keeps its attributes in an immutable BoundedAttributes whose items sit in a plain
# `_dict`: reading that skips the Mapping methods (`.get` is several Python calls on the view)
_PLAIN_DICT = hasattr(BoundedAttributes(), "_dict") and hasattr(BoundedAttributes(), "_immutable")


def event_attributes(event):
    """The attributes of `event` as a mapping to read (never write to it), {} when it has none."""
    attributes = event.attributes
    if not attributes:
        return {}
    if _PLAIN_DICT and type(attributes) is BoundedAttributes and attributes._immutable:
        return attributes._dict
    return attributes


class ErrorTypeStage:
    name = "error_type"
    failed_only = True  # the pipeline skips it on spans with no ERROR status and no event

    def __call__(self, draft) -> None:
        if not draft.is_error or attr.ERROR_TYPE in draft.attributes:
            return
        event = draft.exception_event()
        error_type = None
        if event is not None:
            error_type = event_attributes(event).get(attr.EXCEPTION_TYPE)
        if not error_type:
            status = http_error_status(draft.attributes)
            if status is not None:
                error_type = str(status)
        draft.set_attribute(attr.ERROR_TYPE, str(error_type) if error_type else OTHER)


def http_error_status(attributes) -> int | None:
    """The span's HTTP response status code when it is an error answer (>= 400), else None."""
    status = attributes.get(attr.HTTP_RESPONSE_STATUS_CODE)
    if status is None:
        status = attributes.get(attr.HTTP_STATUS_CODE_LEGACY)
    try:
        status = int(status)
    except (TypeError, ValueError):
        return None
    return status if 400 <= status <= 599 else None

"""A finished span, seen through a copy-on-write draft that stages may change.

SDK spans are read-only once they end, so the pipeline never mutates them. A
stage writes through the draft; the first write copies the attributes (or the
events) and marks the draft dirty. `build()` returns the original span when no
stage changed anything (the common case, and free), or a new `ReadableSpan` with
the same identity, timing and scope but the draft's name, attributes, events and
status.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode


class SpanDraft:
    __slots__ = ("span", "_name", "_attributes", "_view", "_events", "_links", "_status", "dirty")

    def __init__(self, span: ReadableSpan):
        self.span = span
        self._name = None
        self._attributes = None
        self._view = None  # the span's own attributes, fetched once (every stage reads them)
        self._events = None
        self._links = None
        self._status = None
        self.dirty = False

    # --- reading -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name if self._name is not None else self.span.name

    @property
    def attributes(self):
        """Current attributes (read-only mapping; write with set_attribute)."""
        if self._attributes is not None:
            return self._attributes
        view = self._view
        if view is None:
            view = self._view = plain_attributes(self.span)
        return view

    @property
    def events(self):
        return self._events if self._events is not None else self.span.events

    @property
    def links(self):
        return self._links if self._links is not None else self.span.links

    @property
    def status(self):
        return self._status if self._status is not None else self.span.status

    @property
    def is_error(self) -> bool:
        return self.status.status_code is StatusCode.ERROR

    @property
    def duration_ns(self) -> int:
        span = self.span
        if span.end_time is None or span.start_time is None:
            return 0
        return span.end_time - span.start_time

    def exception_event(self):
        """The last `exception` event, or None."""
        for event in reversed(self.events):
            if event.name == "exception":
                return event
        return None

    # --- writing -------------------------------------------------------------
    def set_attribute(self, key: str, value) -> None:
        if self._attributes is None:
            self._attributes = self._writable()
        self._attributes[key] = value
        self.dirty = True

    def set_attributes(self, values) -> None:
        if self._attributes is None:
            self._attributes = self._writable()
        self._attributes.update(values)
        self.dirty = True

    def _writable(self) -> dict:
        # the view is already this draft's own copy: it becomes the attributes to write
        view = self._view
        return view if view is not None else plain_attributes(self.span)

    def set_name(self, name: str) -> None:
        self._name = name
        self.dirty = True

    def set_status(self, status) -> None:
        self._status = status
        self.dirty = True

    def replace_events(self, events) -> None:
        """Replace the event list (items are SDK `Event`s; see `make_event`)."""
        self._events = tuple(events)
        self.dirty = True

    def replace_links(self, links) -> None:
        self._links = tuple(links)
        self.dirty = True

    def build(self) -> ReadableSpan:
        if not self.dirty:
            return self.span
        span = self.span
        if type(span) is ReadableSpan and _new_readable is not None:
            # what the SDK hands to on_end: clone its fields (several times cheaper
            # than the constructor on the hot path), then apply the draft's changes
            copy = _new_readable(ReadableSpan)
            copy.__dict__.update(span.__dict__)
            if self._name is not None:
                copy._name = self._name
            if self._attributes is not None:
                copy._attributes = self._attributes
            if self._events is not None:
                copy._events = self._events
            if self._links is not None:
                copy._links = self._links
            if self._status is not None:
                copy._status = self._status
            return copy
        return ReadableSpan(
            name=self.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self.attributes,
            events=self.events,
            links=self.links,
            kind=span.kind,
            status=self.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )


_new_readable = object.__new__
# the clone relies on where ReadableSpan keeps its fields; checked once, else the constructor is used
_CLONE_FIELDS = {"_name", "_attributes", "_events", "_links", "_status"}
if not _CLONE_FIELDS <= set(vars(ReadableSpan("probe"))):  # pragma: no cover - another SDK layout
    _new_readable = None


def plain_attributes(span) -> dict:
    """A span's attributes as a new plain dict.

    SDK spans keep them in a BoundedAttributes, whose Mapping methods answer a
    missing key by raising and catching KeyError inside (`key in attributes` and
    `.get()` cost microseconds); its `copy()`, reached through the read-only
    proxy, returns a plain dict, after which every lookup is a dict lookup.
    """
    attributes = span.attributes
    try:
        result = attributes.copy()
    except AttributeError:  # None, or a mapping without copy()
        return dict(attributes or {})
    return result if type(result) is dict else dict(result)


def make_event(name: str, attributes, timestamp: int) -> Event:
    return Event(name, attributes, timestamp)

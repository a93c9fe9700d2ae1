"""A finished span, seen through a copy-on-write draft that stages may change.

SDK spans are read-only once they end, so the pipeline never mutates them. A
stage writes through the draft; the first write copies the attributes (or the
events) and marks the draft dirty. `build()` returns the original span when no
stage changed anything (the common case, and free), or a new `ReadableSpan` with
the same identity, timing and scope but the draft's name, attributes, events and
status.

Hot path: the draft is made for every span the process ends. For the SDK's own
`ReadableSpan` (what on_end receives) it reads the span's fields directly instead
of through the public properties, which build a MappingProxy or a tuple copy on
every call (the fields are final once the span ended); any other span type goes
through the public properties. `draft.attributes` is then the span's own dict:
stages must treat it as read-only and write with `set_attribute(s)`.

Redaction bookkeeping: the early redaction stage marks the draft `clean` (name
and attributes scanned) and from then on every key written through the draft is
remembered in `written` (unless the writer vouches that it holds no free text),
so the last redaction stage rescans only those (plus any renamed span name, the
events, status and links).
"""

from __future__ import annotations

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

_ERROR = StatusCode.ERROR


class SpanDraft:
    __slots__ = (
        "span", "_fast", "_name", "_attributes", "_view", "_events", "_event_view", "_links", "_status",
        "dirty", "clean", "written",
    )

    def __init__(self, span: ReadableSpan):
        self.span = span
        self._fast = type(span) is ReadableSpan and _FAST_READ
        self._name = None
        self._attributes = None
        self._view = None  # the span's own attributes, fetched once (every stage reads them)
        self._events = None
        self._event_view = None  # the span's own events as a tuple, fetched once
        self._links = None
        self._status = None
        self.dirty = False
        self.clean = None  # redaction mode the name and attributes were scanned with
        self.written = None  # keys written since they were scanned (a list), when `clean`

    # --- reading -------------------------------------------------------------
    @property
    def name(self) -> str:
        if self._name is not None:
            return self._name
        return self.span._name if self._fast else self.span.name

    @property
    def attributes(self):
        """Current attributes (read-only mapping; write with set_attribute)."""
        if self._attributes is not None:
            return self._attributes
        view = self._view
        if view is None:
            view = self._view = span_attributes(self.span) if self._fast else plain_attributes(self.span)
        return view

    @property
    def has_events(self) -> bool:
        if self._events is not None:
            return bool(self._events)
        if self._fast:
            return bool(self.span._events)
        return bool(self.events)

    @property
    def events(self):
        if self._events is not None:
            return self._events
        view = self._event_view
        if view is None:
            if self._fast:
                raw = self.span._events
                view = tuple(raw) if raw else ()
            else:
                view = self.span.events
            self._event_view = view
        return view

    @property
    def links(self):
        if self._links is not None:
            return self._links
        if self._fast:
            raw = self.span._links
            return tuple(raw) if raw else ()
        return self.span.links

    @property
    def status(self):
        if self._status is not None:
            return self._status
        return self.span._status if self._fast else self.span.status

    @property
    def is_error(self) -> bool:
        status = self._status
        if status is None:
            status = self.span._status if self._fast else self.span.status
        return status.status_code is _ERROR

    @property
    def may_have_failed(self) -> bool:
        """Status ERROR or any event (an exception may be recorded without an ERROR status)."""
        if self._fast and self._events is None and self._status is None:
            span = self.span
            return span._status.status_code is _ERROR or bool(span._events)
        return self.is_error or self.has_events

    @property
    def has_extra_text(self) -> bool:
        """Whether the span has events, links or a status description (text beyond name and attributes)."""
        if self._fast and self._events is None and self._links is None and self._status is None:
            span = self.span
            return bool(span._events or span._links or span._status.description)
        return bool(self.events or self.links or self.status.description)

    @property
    def duration_ns(self) -> int:
        span = self.span
        if self._fast:
            start, end = span._start_time, span._end_time
        else:
            start, end = span.start_time, span.end_time
        if end is None or start is None:
            return 0
        return end - start

    def exception_event(self):
        """The last `exception` event, or None."""
        if self._events is None and self._fast and not self.span._events:
            return None  # the common case, decided without building the events tuple
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
        if self.written is not None:
            self.written.append(key)

    def set_attributes(self, values, free_text: bool = True) -> None:
        """Write several attributes.

        `free_text=False` promises that no key or value can hold an address: the keys
        are mailscope's own names and the values numbers, booleans or mailscope's own
        constants. The last redaction stage then does not rescan them.
        """
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = self._writable()
        attributes.update(values)
        self.dirty = True
        if free_text:
            written = self.written
            if written is not None:
                written.extend(values)

    def _writable(self) -> dict:
        view = self._view
        if self._fast:
            # the fast read shares the span's own dict: copy it before the first write
            if view is None:
                view = span_attributes(self.span)
            return view.copy()
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
            copy = clone(span)
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
# the clone and the fast reads rely on where ReadableSpan keeps its fields; checked
# once at import, else the constructor and the public properties are used
_CLONE_FIELDS = {"_name", "_attributes", "_events", "_links", "_status"}
_READ_FIELDS = _CLONE_FIELDS | {"_start_time", "_end_time"}
_probe_fields = set(vars(ReadableSpan("probe")))
if not _CLONE_FIELDS <= _probe_fields:  # pragma: no cover - another SDK layout
    _new_readable = None
_FAST_READ = _READ_FIELDS <= _probe_fields and hasattr(BoundedAttributes(), "_dict")
del _probe_fields


def clone(span: ReadableSpan) -> ReadableSpan:
    """A field-for-field copy of a finished SDK ReadableSpan (only when `CAN_CLONE`)."""
    copy = _new_readable(ReadableSpan)
    copy.__dict__.update(span.__dict__)
    return copy


CAN_CLONE = _new_readable is not None
FAST_READ = _FAST_READ


def span_attributes(span) -> dict:
    """The finished SDK span's own attributes dict (shared: never write to it); FAST_READ spans only."""
    raw = span._attributes
    if type(raw) is BoundedAttributes:
        return raw._dict
    if type(raw) is dict:
        return raw
    return dict(raw) if raw else {}


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

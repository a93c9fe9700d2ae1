"""Every string a span would export, for privacy assertions."""


def exported_strings(span):
    """Name, attribute keys and values (arrays flattened), event names and attributes,
    status description and link attributes of a finished SDK span."""
    yield span.name
    for key, value in span.attributes.items():
        yield key
        yield from (value if isinstance(value, tuple) else [value])
    for event in span.events:
        yield event.name
        for key, value in event.attributes.items():
            yield key
            yield value
    yield span.status.description or ""
    for link in span.links:
        for key, value in link.attributes.items():
            yield key
            yield value


def exported_text(span) -> str:
    return "\n".join(str(s) for s in exported_strings(span))

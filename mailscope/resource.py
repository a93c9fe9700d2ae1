"""The OpenTelemetry Resource without email addresses.

The Resource goes out with every span, metric and log batch, and it never passes
through the span pipeline's redaction. The SDK builds it inside
`_initialize_components` as `Resource.create(resource_attributes)`: the default
resource (`telemetry.sdk.*`), merged with the detectors' results
(`service.instance.id`, any `OTEL_EXPERIMENTAL_RESOURCE_DETECTORS`, and last
`OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`), merged with
`resource_attributes`, whose values win.

`redacted_resource_attributes(base, mode)` builds that same resource once, before
the SDK does, and returns `base` plus every entry whose value changes under
redaction, redacted: handed to the SDK as `resource_attributes`, they replace the
detected values. Values are redacted recursively (strings, string items of
sequences, keys and values of mappings, bytes). A string the redaction cannot
process becomes `<redacted>` (fail closed).

Limits (a merge can add or replace an entry, never remove one):
- a top-level key that itself contains an address stays; its value is redacted and
  a warning (with the key redacted) asks for the key to be renamed;
- after `os.fork()` the SDK re-runs the process-dependent detectors
  (`service.instance.id`, the opt-in `process` detector) in the child and merges
  their fresh, unredacted values;
- the detectors run twice at start-up (ours, then the SDK's).
If building the resource fails, one warning is logged and `base` is returned: the
SDK then sets up with the unredacted resource rather than not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from mailscope._safety import log_once
from mailscope.processors.redact import MASK, redact

_SDK_RESOURCE_LOGGER = "opentelemetry.sdk.resources"


def _redact_text(text: str, mode: str) -> str:
    try:
        return redact(text, mode)
    except Exception:
        log_once("resource:redact", "mailscope: a resource value could not be redacted; it is replaced by %s",
                 MASK, exc_info=True)
        return MASK


def redact_value(value, mode: str):
    """`value` with every address masked; the same object when nothing changed."""
    if isinstance(value, str):
        new = _redact_text(value, mode)
        return value if new == value else new
    if isinstance(value, bytes):
        text = value.decode("utf-8", "surrogateescape")
        new = _redact_text(text, mode)
        return value if new == text else new.encode("utf-8", "surrogateescape")
    if isinstance(value, Mapping):
        items = [(_redact_text(k, mode) if isinstance(k, str) else k, redact_value(v, mode)) for k, v in value.items()]
        return value if items == list(value.items()) else dict(items)
    if isinstance(value, Sequence):
        items = tuple(redact_value(item, mode) for item in value)
        return value if items == tuple(value) else items
    return value


def redacted_overrides(attributes: Mapping, mode: str) -> tuple[dict, list[str]]:
    """(the entries of `attributes` whose value changes, redacted; the keys that hold an address, redacted)."""
    if mode == "off":
        return {}, []
    overrides = {}
    address_keys = []
    for key, value in attributes.items():
        new = redact_value(value, mode)
        if new is not value:
            overrides[key] = new
        masked_key = _redact_text(key, mode)
        if masked_key != key:
            address_keys.append(masked_key)
    return overrides, address_keys


class _Mute(logging.Filter):
    def filter(self, record):
        return False


def _detected(base: Mapping) -> Mapping:
    """The attributes `Resource.create(base)` gives, as the SDK is about to build them.

    The SDK logs its own detector warnings when it builds the resource; our earlier
    pass keeps quiet so they are not logged twice.
    """
    from opentelemetry.sdk.resources import Resource

    sdk_logger = logging.getLogger(_SDK_RESOURCE_LOGGER)
    mute = _Mute()
    sdk_logger.addFilter(mute)
    try:
        return Resource.create(dict(base)).attributes
    finally:
        sdk_logger.removeFilter(mute)


def redacted_resource_attributes(base: Mapping, mode: str) -> dict:
    """`resource_attributes` for the SDK: `base` (which wins) plus redacted overrides of what it detects."""
    if mode == "off":
        return dict(base)
    try:
        overrides, address_keys = redacted_overrides(_detected(base), mode)
    except Exception:
        log_once("resource:build", "mailscope: could not redact the OpenTelemetry resource; it is exported "
                 "as the SDK builds it", exc_info=True)
        return dict(base)
    if address_keys:
        log_once("resource:keys", "mailscope: resource attribute keys contain an email address and cannot be "
                 "removed (values are redacted): %s; rename them", ", ".join(sorted(address_keys)))
    return {**overrides, **base}

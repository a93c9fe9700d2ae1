"""The JSON envelope: injected into JSON objects only, stripped back to the exact pushed bytes."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from mailscope.instrumentation.queue import envelope

FIELDS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": 'vendor=a}b,"x"',  # braces and quotes must not confuse the stripper
    "enqueued_at": 1700000000.25,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6).filter(lambda d: "_mailscope" not in d)
layouts = st.fixed_dictionaries(
    {
        "indent": st.sampled_from([None, 0, 2, "\t"]),
        "sort_keys": st.booleans(),
        "ensure_ascii": st.booleans(),
        "separators": st.sampled_from([None, (",", ":"), (" , ", " : ")]),
        "lead": st.sampled_from(["", " ", "\n\t "]),
        "trail": st.sampled_from(["", "\n", "  \r\n"]),
    }
)


def render(obj, layout) -> str:
    text = json.dumps(
        obj, indent=layout["indent"], sort_keys=layout["sort_keys"], ensure_ascii=layout["ensure_ascii"],
        separators=layout["separators"],
    )
    return layout["lead"] + text + layout["trail"]


@settings(max_examples=150, deadline=None)
@given(objects, layouts, st.booleans())
def test_objects_round_trip_byte_for_byte(obj, layout, as_bytes):
    original = render(obj, layout)
    if as_bytes:
        original = original.encode("utf-8")
    carried = envelope.inject(original, FIELDS)
    assert carried != original
    assert type(carried) is type(original)
    # what Redis stores is still valid JSON: the app's members plus ours
    decoded = json.loads(carried)
    assert decoded.pop("_mailscope") == FIELDS
    assert decoded == obj
    restored, env = envelope.strip(carried)
    assert restored == original
    assert type(restored) is type(original)
    assert env == FIELDS


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_anything_that_is_not_a_json_object_passes_untouched(payload):
    try:
        is_object = isinstance(json.loads(payload), dict)
    except (ValueError, RecursionError):
        is_object = False
    carried = envelope.inject(payload, FIELDS)
    if is_object:
        assert envelope.strip(carried) == (payload, FIELDS)
    else:
        assert carried is payload
    assert envelope.strip(payload) == (payload, None)


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2, 3]",
        '["a", {"b": 1}]',
        b"plain text",
        b'{"unterminated": 1',
        b"\xff\xfe{}",
        "42",
        b"",
        '{"a": 1} trailing',
        '{"_mailscope": "app owns this key"}',
    ],
)
def test_non_objects_and_taken_keys_are_not_touched(payload):
    assert envelope.inject(payload, FIELDS) is payload


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a":1,"_mailscope":"not an object"}',
        b'{"a":1,"_mailscope":{"traceparent":5}}',
        b'{"a":1,"_mailscope":{"unknown":"field"}}',
        b'{"a":1,"_mailscope":{}}',
        b'{"a":1,"_mailscope":{"enqueued_at":true}}',
        b'{"a":1,"_mailscope":{"enqueued_at":1},"b":2}',  # not the last member
        b'{"a":{"_mailscope":{"enqueued_at":1}}}',  # nested, not ours
        b'{"a":1,"_mailscope":{"enqueued_at":1}',  # truncated
        b'{"a":1,"_mailscope":{"enqueued_at":1}}}',
        b'{"a":1 "_mailscope":{"enqueued_at":1}}',  # no comma before, not an empty object
    ],
)
def test_malformed_envelopes_pass_untouched(payload):
    assert envelope.strip(payload) == (payload, None)


def test_empty_object_and_str_payloads():
    for original in ("{}", b"{ \n }", "\n{}\n"):
        carried = envelope.inject(original, {"enqueued_at": 1700000000.5})
        assert json.loads(carried) == {"_mailscope": {"enqueued_at": 1700000000.5}}
        assert envelope.strip(carried) == (original, {"enqueued_at": 1700000000.5})


def test_carrier_and_enqueued_at_helpers():
    assert envelope.carrier(FIELDS) == {"traceparent": FIELDS["traceparent"], "tracestate": FIELDS["tracestate"]}
    assert envelope.carrier({"enqueued_at": 1}) is None
    assert envelope.carrier({"traceparent": "x", "tracestate": ""}) == {"traceparent": "x"}
    assert envelope.enqueued_at(FIELDS) == 1700000000.25
    assert envelope.enqueued_at(None) is None

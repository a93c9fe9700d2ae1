"""`mailscope report` on bad, empty and missing input: skipped and counted, never a crash."""

import gzip
import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings, strategies as st

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import SpanReader
from mailscope.report.model import ReportModel
from tests.support.launcher import REPO, base_env
from tests.support.otlp_gen import write_trace_file


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mailscope", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=base_env(), timeout=120)


def _good_lines(tmp_path, spans=60):
    path = tmp_path / "good.jsonl"
    info = write_trace_file(path, spans, seed=2, spans_per_line=10)
    return path.read_text().splitlines(), info


def _span(**override):
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "kind": 1,
            "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225600001000000"}
    span.update(override)
    return {k: v for k, v in span.items() if v is not None}


def _doc(*spans, resource=None):
    return json.dumps({"resourceSpans": [{"resource": resource or {"attributes": []},
                                          "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}]})


def test_bad_lines_and_records_are_skipped_counted_and_reported(tmp_path):
    lines, info = _good_lines(tmp_path)
    bad_lines = [
        lines[0][: len(lines[0]) // 2],  # truncated mid-write
        '{"resourceMetrics": []}',  # OTLP, but metrics
        '{"hello": "world"}',  # JSON, not OTLP
        "[1, 2, 3]", "42", "null", '"text"',
        '{"resourceSpans": {"not": "a list"}}',
        "\x00\x01 binary junk \xff",
        "[" * 5000 + "]" * 5000,  # deeper than the JSON parser's recursion limit
    ]
    bad_records = [
        '{"resourceSpans": [{"resource": {"attributes": 5}, "scopeSpans": []}]}',  # resource attributes not a list
        '{"resourceSpans": [{"scopeSpans": 7}]}',
        '{"resourceSpans": ["nope"]}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": "nope"}]}]}',
        _doc(_span(traceId=None)),  # missing trace id
        _doc(_span(startTimeUnixNano="soon")),
        _doc(_span(attributes=[{"key": "k", "value": {"intValue": "not a number"}}])),
        _doc(_span(status="broken")),
    ]
    unusable_spans = [
        _doc(_span(endTimeUnixNano="1767225599000000000")),  # ends before it starts
        _doc(_span(name=17)),
        _doc(_span(traceId="")),
        _doc(_span(endTimeUnixNano=str(10**40))),  # beyond fixed64
    ]
    # absurd attribute values are ignored, the span still counts
    huge = {"key": attr.MEMORY_RSS_DELTA, "value": {"intValue": str(10**400)}}
    inf = {"key": attr.QUEUE_WAIT, "value": {"doubleValue": "Infinity"}}
    odd_but_usable = [_doc(_span(spanId="ee" * 8, attributes=[huge, inf, {"key": attr.OPERATION, "value": {"stringValue": "queue.receive"}}]))]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines[:3] + bad_lines + lines[3:] + bad_records + unusable_spans + odd_but_usable + [""]) + "\n")
    result = run_cli(path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    skipped = report["inputs"]["skipped"]
    assert skipped["lines"] == len(bad_lines)
    assert skipped["records"] == len(bad_records)
    assert skipped["spans"] == len(unusable_spans)
    assert skipped["total"] == len(bad_lines) + len(bad_records) + len(unusable_spans)
    assert report["summary"]["spans"] == info["spans"] + 1  # every good span still counted
    receive = next(o for o in report["operations"] if o["key"] == "queue.receive")
    assert receive["count"] >= 1
    text = run_cli(path)
    assert text.returncode == 0
    assert f"{len(bad_lines)} unreadable lines, {len(bad_records)} malformed records, {len(unusable_spans)} unusable spans" in text.stdout


def test_empty_input_is_a_clear_message_and_exit_0(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli(empty)
    assert result.returncode == 0
    assert "no spans found" in result.stderr and str(empty) in result.stderr
    assert result.stdout == ""
    # only junk: still empty, and the skipped lines are mentioned
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n{}\n")
    result = run_cli(junk, "--json")
    assert result.returncode == 0
    assert "no spans found" in result.stderr and "2 unreadable" in result.stderr
    assert json.loads(result.stdout)["summary"]["spans"] == 0
    # an empty folder
    folder = tmp_path / "nothing"
    folder.mkdir()
    assert run_cli(folder).returncode == 0


def test_filters_that_match_nothing(tmp_path):
    path = tmp_path / "t.jsonl"
    write_trace_file(path, 200)
    result = run_cli(path, "--service", "no-such-service")
    assert result.returncode == 0
    assert "no spans match the filters" in result.stderr


def test_missing_file_is_a_clear_message_and_nonzero_exit(tmp_path):
    present = tmp_path / "t.jsonl"
    write_trace_file(present, 50)
    missing = tmp_path / "nope.jsonl"
    result = run_cli(present, missing)
    assert result.returncode == 1
    assert f"{missing}: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_option_values(tmp_path):
    path = tmp_path / "t.jsonl"
    write_trace_file(path, 50)
    for args in (("--since", "yesterday-ish"), ("--until", "2026-13-45"),
                 ("--since", "2026-01-02", "--until", "2026-01-01")):
        result = run_cli(path, *args)
        assert result.returncode == 2, args
        assert "mailscope report:" in result.stderr and "Traceback" not in result.stderr
    unwritable = run_cli(path, "--html", tmp_path / "no" / "such" / "dir" / "r.html")
    assert unwritable.returncode == 1 and "cannot write" in unwritable.stderr


def test_folders_and_gzip_files(tmp_path):
    folder = tmp_path / "traces"
    folder.mkdir()
    a = write_trace_file(folder / "a.jsonl", 300, seed=1)
    plain = tmp_path / "b.jsonl"
    b = write_trace_file(plain, 300, seed=2)
    with open(plain, "rb") as src, gzip.open(folder / "b.jsonl.gz", "wb") as dst:
        dst.write(src.read())
    result = run_cli(folder, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["spans"] == a["spans"] + b["spans"]
    assert report["inputs"]["files"] == 2


def test_oversized_line_is_skipped_without_reading_it_whole(tmp_path):
    lines, info = _good_lines(tmp_path)
    path = tmp_path / "long.jsonl"
    limit = max(len(line) for line in lines) + 100
    path.write_text(lines[0] + "\n" + '{"resourceSpans": [' + " " * (3 * limit) + "]}\n" + "\n".join(lines[1:]) + "\n")
    reader = SpanReader([str(path)], max_line_chars=limit)
    model = ReportModel()
    for span in reader:
        model.add(span)
    assert reader.skipped_lines == 1
    assert model.spans == info["spans"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["traceId", "spanId", "name", "startTimeUnixNano", "endTimeUnixNano", "attributes", "key",
                         "value", "stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "values",
                         "status", "code", "parentSpanId", "events", "links", "resource", "scopeSpans", "spans",
                         "scope", "kvlistValue"]), inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spans=st.lists(json_values, max_size=4), resource=json_values)
def test_arbitrary_json_never_raises(tmp_path, spans, resource):
    path = tmp_path / "fuzz.jsonl"
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}, resource]}
    path.write_text(json.dumps(doc) + "\n" + json.dumps(spans) + "\n")
    reader = SpanReader([str(path)])
    model = ReportModel()
    for span in reader:
        model.add(span)
    report = model.result({})
    assert report["summary"]["spans"] + model.invalid_spans == model.spans_read
    from mailscope.report.html import render as html
    from mailscope.report.text import render as text

    text(report)
    html(report)
    json.dumps(report)

"""Workflow operations (trigger, segment, workflow.step) and argument capture, under the real launcher."""

from __future__ import annotations

import enum
import json

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from mailscope.instrumentation.operations import captured_value
from mailscope.report import build_report
from tests.support.launcher import file_export_env, run_instrumented, write_script

ENGINE = '''
class Engine:
    def run_step(self, step_id, workflow_id, payload=None, *, dry_run=False, attempt=1):
        if step_id == "broken":
            raise RuntimeError("step failed")
        return {"step": step_id}

    @classmethod
    def replay(cls, step_id, attempt):
        return step_id


def on_signup(event_name, user_email, score=0.5):
    return "queued"


def select_segment(name, limit, **filters):
    return [f"user-{i}" for i in range(limit)]


def segment_text(name):
    return "not a collection"
'''

APP = '''
import sys
from automation.engine import Engine, on_signup, select_segment, segment_text

on_signup("signup", "jane.doe@example.com", score=0.9)
select_segment("vip-" + "x" * 200, 3, country="NZ")
segment_text("plain")
engine = Engine()
engine.run_step("welcome-1", 42, payload={"a": 1}, dry_run=True)
Engine.run_step(engine, "reminder-2", workflow_id=7)
Engine.replay("again", attempt=2)
try:
    engine.run_step("broken", 9)
except RuntimeError as exc:
    print("caught", exc)
'''

OPERATIONS = (
    "trigger=automation.engine:on_signup(event_name=app.trigger.event,user_email=app.trigger.user,"
    "score=app.trigger.score),"
    "segment=automation.engine:select_segment(name=app.segment.name,limit=app.segment.limit,country=app.country),"
    "segment=automation.engine:segment_text,"
    "workflow.step=automation.engine:Engine.run_step(step_id=email.workflow.step_id,workflow_id=email.workflow.id,"
    "payload=app.payload,dry_run=app.dry_run,attempt=app.attempt),"
    "workflow.step=automation.engine:Engine.replay(attempt=app.attempt,unknown=app.nothing)"
)


def _app(tmp_path):
    package = tmp_path / "automation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text(ENGINE)
    return write_script(tmp_path, APP)


def test_workflow_operations_end_to_end(tmp_path):
    script = _app(tmp_path)
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(traces, metrics, MAILSCOPE_OPERATIONS=OPERATIONS, OTEL_LOGS_EXPORTER="none")
    run = run_instrumented(script, env)
    assert run.returncode == 0, run.stderr
    assert "caught step failed" in run.stdout
    # the argument Engine.replay does not have: one warning, the operation still works
    assert run.stderr.count("names argument 'unknown'") == 1, run.stderr

    spans = read_spans(str(traces))
    by_name: dict = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    for name in (attr.SPAN_TRIGGER, attr.SPAN_SEGMENT, attr.SPAN_WORKFLOW_STEP):
        assert all(s["kind"] == "INTERNAL" for s in by_name[name])

    (trigger,) = by_name[attr.SPAN_TRIGGER]
    assert {k: v for k, v in trigger["attributes"].items() if not k.startswith("mailscope.memory")} == {
        attr.OPERATION: attr.OP_TRIGGER,
        attr.CODE_FUNCTION_NAME: "automation.engine.on_signup",
        "app.trigger.event": "signup",
        "app.trigger.user": "<redacted>@example.com",  # redacted; the float score is skipped
    }

    segments = {s["attributes"][attr.CODE_FUNCTION_NAME]: s["attributes"] for s in by_name[attr.SPAN_SEGMENT]}
    listed = segments["automation.engine.select_segment"]
    assert listed[attr.SEGMENT_SIZE] == 3
    assert listed["app.segment.name"] == ("vip-" + "x" * 200)[: attr.CAPTURED_VALUE_MAX_CHARS]
    assert listed["app.segment.limit"] == 3
    assert listed["app.country"] == "NZ"  # a keyword the function takes through **filters
    assert attr.SEGMENT_SIZE not in segments["automation.engine.segment_text"]  # text is not a collection

    steps = [s for s in by_name[attr.SPAN_WORKFLOW_STEP]
             if s["attributes"][attr.CODE_FUNCTION_NAME] == "automation.engine.Engine.run_step"]
    welcome, reminder, broken = sorted(steps, key=lambda s: s["start_ns"])
    assert {k: v for k, v in welcome["attributes"].items() if k.startswith(("email.workflow", "app."))} == {
        "email.workflow.step_id": "welcome-1",
        "email.workflow.id": 42,
        "app.dry_run": True,  # a bool stays a bool, not 1
        "app.attempt": 1,  # the default the call got
    }
    # called through the class, self passed explicitly: positions still line up
    assert reminder["attributes"]["email.workflow.step_id"] == "reminder-2"
    assert reminder["attributes"]["email.workflow.id"] == 7
    assert reminder["attributes"]["app.dry_run"] is False
    assert broken["status_code"] == "ERROR"
    assert broken["attributes"][attr.ERROR_TYPE] == "RuntimeError"
    assert broken["attributes"][attr.ERROR_CATEGORY]  # the error stages classified it
    (replay,) = [s for s in by_name[attr.SPAN_WORKFLOW_STEP] if s not in steps]
    assert replay["attributes"]["app.attempt"] == 2  # classmethod: cls is not an argument position

    assert b"jane.doe" not in traces.read_bytes()

    # the report lists the new operations like the others
    rows = {row["key"]: row for row in build_report([str(traces)])["operations"]}
    assert rows[attr.OP_TRIGGER]["count"] == 1
    assert rows[attr.OP_SEGMENT]["count"] == 2
    assert rows[attr.OP_WORKFLOW_STEP]["count"] == 4 and rows[attr.OP_WORKFLOW_STEP]["errors"] == 1
    assert all(rows[op]["kind"] == "operation" for op in (attr.OP_TRIGGER, attr.OP_SEGMENT, attr.OP_WORKFLOW_STEP))

    durations = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert any(f'"{attr.OP_WORKFLOW_STEP}"' in json.dumps(d) for d in durations)


def test_bad_argument_syntax_warns_once_and_leaves_the_app_alone(tmp_path):
    script = _app(tmp_path)
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    bad = "workflow.step=automation.engine:Engine.run_step(step_id=email.workflow.step_id"
    run = run_instrumented(script, file_export_env(traces, metrics, MAILSCOPE_OPERATIONS=bad, OTEL_LOGS_EXPORTER="none"))
    assert run.returncode == 0, run.stderr
    assert "caught step failed" in run.stdout
    assert run.stderr.count("ignoring MAILSCOPE_OPERATIONS") == 1, run.stderr
    assert not [s for s in read_spans(str(traces)) if s["name"].startswith("email.")]


class Plan(enum.IntEnum):
    GOLD = 3


def test_captured_values_keep_only_str_int_bool():
    assert captured_value(True, "domain") is True
    assert captured_value(0, "domain") == 0 and captured_value(0, "domain") is not False
    assert type(captured_value(Plan.GOLD, "domain")) is int
    assert captured_value("ann@example.org", "full") == "<redacted>@<redacted>"
    assert captured_value("ann@example.org", "off") == "ann@example.org"
    assert len(captured_value("y" * 500, "domain")) == attr.CAPTURED_VALUE_MAX_CHARS
    for value in (1.5, None, b"bytes", ["a"], {"a": 1}, object()):
        assert captured_value(value, "domain") is None


def test_entries_with_and_without_arguments_parse_and_bad_ones_invalidate_the_variable(caplog):
    import logging

    from mailscope.config import load_settings

    good = load_settings({"MAILSCOPE_OPERATIONS": " send=app.ses:send , segment=app.a:pick( name = app.name ,n=app.n)"})
    assert good.operations == (("send", "app.ses", "send"), ("segment", "app.a", "pick", (("name", "app.name"), ("n", "app.n"))))
    bad_entries = [
        "segment=app.a:pick(name=app.name",  # unbalanced
        "segment=app.a:pick)name=app.name(",
        "segment=app.a:pick()",
        "segment=app.a:pick(name)",
        "segment=app.a:pick(1name=app.name)",
        "segment=app.a:pick(name=app.name,name=app.other)",
        "segment=app.a:pick(name=mailscope.operation)",  # mailscope's own attributes stay mailscope's
        "segment=app.a:pick(name=app.name)x",
        "campaign=app.a:pick(name=app.name)",
    ]
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        for raw in bad_entries:
            settings = load_settings({"MAILSCOPE_OPERATIONS": f"send=app.ses:send,{raw}"})
            assert settings.operations == () and settings.invalid == ("MAILSCOPE_OPERATIONS",), raw
    warnings = [r.getMessage() for r in caplog.records if "MAILSCOPE_OPERATIONS" in r.getMessage()]
    assert len(warnings) == len(bad_entries), warnings

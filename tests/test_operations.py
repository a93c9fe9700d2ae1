"""Config-named functions (mailscope_operations): real modules on disk, imported before and after instrumenting."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import textwrap

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.instrumentation.common.failures import WITHHELD
from mailscope.instrumentation.operations import OperationsInstrumentor, module_exists
from tests.support.template_capture import Capture, exported_text

APP_PACKAGE = '''
'''
CONTENT = '''
def build_email(first_name, plan):
    return f"<p>Hello {first_name}, welcome to {plan} – ünïcode</p>"

def broken_build(first_name):
    raise ValueError(f"cannot personalize for {first_name!r}")

RATE = 3  # not callable
'''
SES = '''
import asyncio

SENT = []

async def send(message):
    await asyncio.sleep(0)
    SENT.append(message)
    return {"MessageId": "m-1"}

class Client:
    def __init__(self, region):
        self.region = region

    def send(self, message):
        SENT.append((self.region, message))
        return "ok"

    async def send_async(self, message):
        await asyncio.sleep(0)
        return self.region

    @staticmethod
    def render_subject(name):
        return f"Hi {name}"

    @classmethod
    def load_template(cls, name):
        return f"{cls.__name__}:{name}"

class Refused(Exception):
    pass

def refuse(message):
    raise Refused("553 5.1.1 <jane@example.com> refused")

class _AsyncCallable:
    async def __call__(self, message):
        return "queued"

send_later = _AsyncCallable()
'''

_counter = itertools.count()


@pytest.fixture
def app(tmp_path, monkeypatch):
    """A fresh, uniquely named app package on sys.path, not yet imported."""
    name = f"shopmail{next(_counter)}_{tmp_path.name.replace('-', '_')[:20]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(APP_PACKAGE)
    (package / "content.py").write_text(textwrap.dedent(CONTENT))
    (package / "ses.py").write_text(textwrap.dedent(SES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


@pytest.fixture
def capture():
    cap = Capture()
    yield cap
    OperationsInstrumentor().uninstrument()
    cap.shutdown()


def instrument(cap, config: str):
    targets = load_settings({"MAILSCOPE_OPERATIONS": config}).operations
    OperationsInstrumentor().instrument(operations=targets, **cap.providers)


def test_sync_personalize_wrapped_when_the_module_is_imported_after_instrumenting(app, capture):
    instrument(capture, f"personalize={app}.content:build_email")
    assert f"{app}.content" not in sys.modules  # instrumenting imported nothing
    content = __import__(f"{app}.content", fromlist=["build_email"])
    with capture.tracer.start_as_current_span("job") as root:
        html = content.build_email("Jane", plan="gold")
    assert html == "<p>Hello Jane, welcome to gold – ünïcode</p>"
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.kind == SpanKind.INTERNAL
    assert span.parent.span_id == root.get_span_context().span_id
    assert dict(span.attributes) == {
        attr.OPERATION: attr.OP_PERSONALIZE,
        attr.TEMPLATE_ENGINE: "custom",
        attr.TEMPLATE_NAME: f"{app}.content:build_email",
        attr.CONTENT_BYTES: len(html.encode("utf-8")),
    }


def test_async_send_and_methods_in_an_already_imported_module(app, capture):
    ses = __import__(f"{app}.ses", fromlist=["send"])
    instrument(capture, f"send={app}.ses:send,send={app}.ses:Client.send,send={app}.ses:Client.send_async,"
                        f"personalize={app}.ses:Client.render_subject,template.load={app}.ses:Client.load_template")
    assert asyncio.iscoroutinefunction(ses.send)  # introspection still sees a coroutine function

    async def main():
        with capture.tracer.start_as_current_span("worker"):
            return await ses.send("m"), await ses.Client("eu").send_async("m")

    assert asyncio.run(main()) == ({"MessageId": "m-1"}, "eu")
    assert ses.Client("us").send("x") == "ok"
    assert ses.Client.render_subject("Jo") == "Hi Jo"
    assert ses.Client.load_template("welcome") == "Client:welcome"
    assert ses.SENT == ["m", ("us", "x")]

    sends = capture.spans(attr.SPAN_SEND)
    assert len(sends) == 3
    worker = capture.one("worker")
    for span in sends:
        assert span.kind == SpanKind.CLIENT
        assert span.attributes[attr.OPERATION] == attr.OP_SEND
        assert span.attributes[attr.PROVIDER] == "ses"
    assert [s.parent.span_id for s in sends[:2]] == [worker.context.span_id] * 2
    assert sends[2].parent is None
    subject = capture.one(attr.SPAN_PERSONALIZE)
    assert subject.attributes[attr.TEMPLATE_NAME] == f"{app}.ses:Client.render_subject"
    load = capture.one(attr.SPAN_TEMPLATE_LOAD)
    assert load.kind == SpanKind.INTERNAL
    assert load.attributes[attr.OPERATION] == attr.OP_TEMPLATE_LOAD


def test_async_work_behind_a_plain_callable_is_covered_until_awaited(app, capture):
    ses = __import__(f"{app}.ses", fromlist=["send_later"])
    instrument(capture, f"send={app}.ses:send_later")
    pending = ses.send_later("m")
    assert capture.spans(attr.SPAN_SEND) == []  # still running
    assert asyncio.run(pending) == "queued"
    assert len(capture.spans(attr.SPAN_SEND)) == 1


def test_exceptions_reach_the_caller_unchanged_and_mark_the_span(app, capture):
    instrument(capture, f"personalize={app}.content:broken_build,send={app}.ses:refuse")
    content = __import__(f"{app}.content", fromlist=["broken_build"])
    ses = __import__(f"{app}.ses", fromlist=["refuse"])
    with pytest.raises(ValueError) as personalize_error:
        content.broken_build("Jane Doe")
    assert personalize_error.value.args == ("cannot personalize for 'Jane Doe'",)
    assert personalize_error.traceback[-1].name == "broken_build"
    with pytest.raises(ses.Refused) as send_error:
        ses.refuse("m")
    assert send_error.traceback[-1].name == "refuse"

    personalize = capture.one(attr.SPAN_PERSONALIZE)
    assert personalize.status.status_code == StatusCode.ERROR
    assert personalize.attributes[attr.ERROR_TYPE] == "ValueError"
    assert personalize.events[0].attributes[attr.EXCEPTION_MESSAGE] == WITHHELD
    assert "Jane" not in exported_text(personalize)
    send = capture.one(attr.SPAN_SEND)
    assert send.attributes[attr.ERROR_TYPE] == f"{app}.ses.Refused"
    # send errors keep their message: SMTP-style codes are what the error analysis reads
    # (addresses in it are the redaction stage's job)
    assert "5.1.1" in send.events[0].attributes[attr.EXCEPTION_MESSAGE]


def test_bad_targets_warn_once_each_and_good_ones_still_work(app, capture, caplog):
    config = (f"send=nosuchpkg_for_mailscope.mail:send,send={app}.ses:missing_function,"
              f"personalize={app}.content:RATE,send={app}.nosuchmodule:send,personalize={app}.content:build_email,"
              f"send={app}.ses:Client.nope,personalize=__main__:build,send={app}.content:build_email")
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        instrument(capture, config)
        content = __import__(f"{app}.content", fromlist=["x"])
        ses = __import__(f"{app}.ses", fromlist=["x"])
        OperationsInstrumentor().uninstrument()
        instrument(capture, config)  # the same bad targets again: no second warning
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 7, warnings
    expected_fragments = [
        "nosuchpkg_for_mailscope.mail:send skipped: module 'nosuchpkg_for_mailscope.mail' was not found",
        f"{app}.nosuchmodule:send skipped: module '{app}.nosuchmodule' was not found",
        "__main__:build skipped",
        f"{app}.ses:missing_function skipped: {app}.ses has no attribute 'missing_function'",
        f"{app}.content:RATE skipped: 'RATE' is not callable",
        f"{app}.ses:Client.nope skipped",
        f"send={app}.content:build_email skipped: the function is already named earlier",
    ]
    for fragment in expected_fragments:
        assert sum(fragment in w for w in warnings) == 1, (fragment, warnings)
    assert content.build_email("a", "b").startswith("<p>Hello a")
    assert len(capture.spans(attr.SPAN_PERSONALIZE)) == 1
    assert not hasattr(ses, "missing_function")


def test_uninstrument_restores_originals_and_hooks_left_behind_stay_inert(app, capture):
    ses = __import__(f"{app}.ses", fromlist=["x"])
    before = (ses.__dict__["send"], ses.Client.__dict__["send"], ses.Client.__dict__["render_subject"],
              ses.Client.__dict__["load_template"])
    instrument(capture, f"send={app}.ses:send,send={app}.ses:Client.send,personalize={app}.ses:Client.render_subject,"
                        f"template.load={app}.ses:Client.load_template,personalize={app}.content:build_email")
    assert ses.__dict__["send"] is not before[0]
    OperationsInstrumentor().uninstrument()
    after = (ses.__dict__["send"], ses.Client.__dict__["send"], ses.Client.__dict__["render_subject"],
             ses.Client.__dict__["load_template"])
    assert all(a is b for a, b in zip(after, before))
    # content was never imported while instrumented; importing it now must not wrap it
    content = __import__(f"{app}.content", fromlist=["x"])
    content.build_email("a", "b")
    ses.Client("x").send("m")
    assert capture.spans() == []


def test_module_lookup_does_not_import(app):
    assert module_exists(f"{app}.content")
    assert not module_exists(f"{app}.absent")
    assert not module_exists("nosuchpkg_for_mailscope")
    assert module_exists("json.decoder")
    assert app not in sys.modules and f"{app}.content" not in sys.modules

"""Emails versus web pages, for Jinja2 and Liquid: the rule MAILSCOPE_TEMPLATES applies when unset.

Inside an HTTP server request (a SERVER span, or any span below one in this
process) only email-ish template names (containing `mail`) are loads and
renders of emails; every other template is a web page and gets no span.
Outside a request (workers, scripts) every template counts, as before. The
Django engine and real WSGI servers are in test_django.py and
tests/templates/test_wsgi_apps.py.
"""

from __future__ import annotations

import jinja2
import liquid
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from mailscope import attributes as attr
from mailscope.instrumentation.templates import TemplateInstrumentor
from mailscope.instrumentation.templates.common import RequestScope
from tests.support.template_capture import Capture

TEMPLATES = {"emails/welcome.html": "Hi {{ name }}", "pages/index.html": "Index {{ name }}",
             "account/mail_settings.html": "Settings", "Newsletter_EMAIL.txt": "Hey {{ name }}"}


def engines():
    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES))
    lenv = liquid.Environment(loader=liquid.DictLoader(TEMPLATES))
    return {"jinja2": lambda name: env.get_template(name).render(name="Jane"),
            "liquid": lambda name: lenv.get_template(name).render(name="Jane")}


@pytest.mark.parametrize("engine", ["jinja2", "liquid"])
def test_only_email_names_inside_a_request_and_everything_outside(capture, engine):
    render = engines()[engine]
    with capture.tracer.start_as_current_span("GET /", kind=SpanKind.SERVER):
        with capture.tracer.start_as_current_span("view"):
            assert [render(n) for n in TEMPLATES] == ["Hi Jane", "Index Jane", "Settings", "Hey Jane"]
    in_request = sorted(s.attributes[attr.TEMPLATE_NAME] for s in capture.spans(attr.SPAN_PERSONALIZE))
    assert in_request == ["Newsletter_EMAIL.txt", "account/mail_settings.html", "emails/welcome.html"]
    assert "pages/index.html" not in {s.attributes[attr.TEMPLATE_NAME] for s in capture.spans(attr.SPAN_TEMPLATE_LOAD)}
    capture.clear()
    render("pages/index.html")  # a worker or script
    assert [s.attributes[attr.TEMPLATE_NAME] for s in capture.spans(attr.SPAN_PERSONALIZE)] == ["pages/index.html"]


def test_a_remote_parent_is_not_a_request_and_the_scope_forgets_ended_spans(capture):
    scope = RequestScope(limit=2)
    provider = capture.tracer_provider
    provider.add_span_processor(scope)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as server:
        with tracer.start_as_current_span("a"):
            with tracer.start_as_current_span("b"):
                assert len(scope.live) == 2  # the cap: "b" is not remembered, and counts as outside
                assert not scope.inside()
            assert scope.inside()
        assert scope.inside()
    assert not scope.live and not scope.inside()
    remote = trace.set_span_in_context(trace.NonRecordingSpan(server.get_span_context().__class__(
        trace_id=1, span_id=2, is_remote=True)))
    with tracer.start_as_current_span("consume", context=remote, kind=SpanKind.CONSUMER):
        assert not scope.inside()

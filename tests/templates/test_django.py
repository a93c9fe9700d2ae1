"""Django templates under mailscope_templates: real Django, templates on disk, the real SDK in memory.

Django's settings are configured once for this process with a DjangoTemplates
backend reading TEMPLATE_DIR (Django's default cached loader); tests that need
another option (`string_if_invalid`) build their own `Engine`, which goes through
the same code.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

import django
import pytest
from django.conf import settings
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.instrumentation.templates import TemplateInstrumentor
from tests.support.template_capture import Capture, exported_text

TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="mailscope-django-templates-"))
atexit.register(shutil.rmtree, TEMPLATE_DIR, True)
FILES = {
    "emails/layout.html": "<html><body><h1>{% block title %}{% endblock %}</h1>{% block body %}{% endblock %}"
                          "<footer>{% include 'emails/footer.html' %}</footer></body></html>",
    "emails/welcome.html": "{% extends 'emails/layout.html' %}{% block title %}Welcome {{ first_name }} – Grüße"
                           "{% endblock %}{% block body %}<p>{{ plan }} {{ coupon }}</p>{% if vip %}VIP{% endif %}"
                           "{% for p in products %}<li>{{ p.name }} {{ p.nickname }}</li>{% endfor %}{% endblock %}",
    "emails/footer.html": "Unsubscribe: {{ unsubscribe_url }}",
    "pages/home.html": "<h1>Home of {{ first_name }}</h1>",
    "registration/password_reset_email.html": "Reset for {{ first_name }}: {{ link }}",
}
for _name, _text in FILES.items():
    (TEMPLATE_DIR / _name).parent.mkdir(parents=True, exist_ok=True)
    (TEMPLATE_DIR / _name).write_text(_text)

if not settings.configured:
    settings.configure(TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                                   "DIRS": [str(TEMPLATE_DIR)]}])
    django.setup()

from django.template import Context, Engine, Template  # noqa: E402
from django.template import loader  # noqa: E402
from django.template.loader import get_template, render_to_string  # noqa: E402

SECRET = "jane.doe@example.com"


def context(**extra):
    values = {"first_name": "Jane", "plan": "gold", "products": [{"name": "Tea"}, {"name": "Cup"}],
              "unsubscribe_url": "https://example.com/u/1", "email": SECRET}
    values.update(extra)
    return values


@contextlib.contextmanager
def paused(cap):
    TemplateInstrumentor().uninstrument()
    try:
        yield
    finally:
        TemplateInstrumentor().instrument(**cap.providers)


def test_render_to_string_loads_once_then_from_the_cache_and_personalizes(capture):
    first = render_to_string("emails/welcome.html", context())
    second = render_to_string("emails/welcome.html", context(first_name="Ann"))
    with paused(capture):
        assert render_to_string("emails/welcome.html", context()) == first  # byte-identical
    loads = [s for s in capture.spans(attr.SPAN_TEMPLATE_LOAD) if s.attributes[attr.TEMPLATE_NAME] == "emails/welcome.html"]
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in loads] == [False, True]
    assert all(s.attributes[attr.TEMPLATE_ENGINE] == "django" for s in capture.spans())
    renders = capture.spans(attr.SPAN_PERSONALIZE)
    assert len(renders) == 2  # extends and include are part of the render, not renders of their own
    span = renders[0]
    assert span.attributes[attr.TEMPLATE_NAME] == "emails/welcome.html"
    assert span.attributes[attr.PERSONALIZATION_VARIABLES] == 5
    assert span.attributes[attr.PERSONALIZATION_MISSING] == 2
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["coupon", "vip"]  # p.nickname is no variable
    assert span.attributes[attr.CONTENT_BYTES] == len(first.encode())
    assert "Welcome Jane – Grüße" in first and "Ann" in second
    footer = [s for s in capture.spans(attr.SPAN_TEMPLATE_LOAD) if s.attributes[attr.TEMPLATE_NAME] == "emails/footer.html"]
    assert footer and footer[0].parent.span_id == span.context.span_id  # the include's load, inside the render
    for s in capture.spans():
        assert SECRET not in exported_text(s) and "Jane" not in exported_text(s)
    points = {tuple(sorted(k)): v for k, v in capture.counter_points(attr.METRIC_TEMPLATE_CACHE).items()}
    assert points[((attr.TEMPLATE_CACHE_HIT, True), (attr.TEMPLATE_ENGINE, "django"))] >= 1


def test_string_if_invalid_output_is_byte_identical_and_missing_names_are_counted(capture):
    source = "Hi {{ first_name }} {{ nickname }} {{ missing|upper }} {{ profile.age }}."
    for invalid in ("", "INVALID", "<%s?>"):
        engine = Engine(dirs=[str(TEMPLATE_DIR)], string_if_invalid=invalid)
        out = engine.from_string(source).render(Context({"first_name": "Jane", "profile": {}}))
        with paused(capture):
            plain = Engine(dirs=[str(TEMPLATE_DIR)], string_if_invalid=invalid)
            assert plain.from_string(source).render(Context({"first_name": "Jane", "profile": {}})) == out
    assert out == "Hi Jane &lt;nickname?&gt; &lt;missing?&gt; &lt;profile.age?&gt;."  # escaped, as Django does
    renders = capture.spans(attr.SPAN_PERSONALIZE)
    assert len(renders) == 3
    for span in renders:
        assert span.attributes[attr.TEMPLATE_NAME] == "<string>"
        assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["nickname", "missing"]
        assert span.attributes[attr.PERSONALIZATION_VARIABLES] == 2
    assert {s.attributes[attr.TEMPLATE_NAME] for s in capture.spans(attr.SPAN_TEMPLATE_LOAD)} == {"<string>"}


def test_select_template_is_one_load_named_after_the_template_found(capture):
    # (called through the module: a name imported before instrumenting is the original function,
    # as in any app that imports before the launcher's instrumentors run, which the launcher prevents)
    template = loader.select_template(["emails/custom_welcome.html", "emails/welcome.html"])
    assert template.origin.template_name == "emails/welcome.html"
    render_to_string(["emails/nope.html", "emails/footer.html"], {"unsubscribe_url": "u"})
    loads = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    assert [s.attributes[attr.TEMPLATE_NAME] for s in loads] == ["emails/welcome.html", "emails/footer.html"]
    assert all(s.status.status_code != StatusCode.ERROR for s in loads)
    with pytest.raises(django.template.TemplateDoesNotExist):
        get_template("emails/absent.html")
    failed = capture.spans(attr.SPAN_TEMPLATE_LOAD)[-1]
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes[attr.ERROR_TYPE].endswith("TemplateDoesNotExist")


def test_template_built_directly_and_rendered_with_a_context(capture):
    out = Template("Dear {{ name }}{{ extra }}").render(Context({"name": "Jane"}))
    assert out == "Dear Jane"
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.attributes[attr.TEMPLATE_NAME] == "<string>" and span.attributes[attr.PERSONALIZATION_MISSING] == 1


def test_an_error_in_a_render_is_the_same_object_and_the_message_is_withheld(capture):
    raised = ValueError(f"bad subscriber {SECRET}")

    class Exploding:
        def __str__(self):
            raise raised

    with pytest.raises(ValueError) as excinfo:
        Template("Hi {{ who }}").render(Context({"who": Exploding()}))
    assert excinfo.value is raised
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.status.status_code == StatusCode.ERROR and SECRET not in exported_text(span)


def test_inside_a_web_request_only_email_templates_are_personalization(capture):
    with capture.tracer.start_as_current_span("GET /signup", kind=SpanKind.SERVER):
        page = render_to_string("pages/home.html", context())
        with capture.tracer.start_as_current_span("view work"):  # a descendant of the request span
            render_to_string("registration/password_reset_email.html", context(link="https://x"))
            render_to_string("pages/home.html", context())
        render_to_string("emails/welcome.html", context())
    render_to_string("pages/home.html", context())  # a script or worker: every template counts
    names = [s.attributes[attr.TEMPLATE_NAME] for s in capture.spans(attr.SPAN_PERSONALIZE)]
    assert names == ["registration/password_reset_email.html", "emails/welcome.html", "pages/home.html"]
    assert page == "<h1>Home of Jane</h1>"


def test_mailscope_templates_alone_decides_when_set():
    cap = Capture()
    reload_settings(templates="pages/*")
    TemplateInstrumentor().instrument(**cap.providers)
    try:
        with cap.tracer.start_as_current_span("GET /", kind=SpanKind.SERVER):
            render_to_string("pages/home.html", context())
            render_to_string("emails/footer.html", context())
        assert [s.attributes[attr.TEMPLATE_NAME] for s in cap.spans(attr.SPAN_PERSONALIZE)] == ["pages/home.html"]
    finally:
        TemplateInstrumentor().uninstrument()
        reload_settings()
        cap.shutdown()

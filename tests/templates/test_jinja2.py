"""Jinja2 under mailscope_templates: real Jinja2, templates on disk, the real SDK in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import traceback

import jinja2
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from mailscope.instrumentation.templates import common as templates_common
from mailscope.instrumentation.common.failures import WITHHELD
from mailscope.instrumentation.templates import TemplateInstrumentor
from tests.support.template_capture import Capture, exported_text

LAYOUT = """<html><body>
<h1>{% block title %}Newsletter{% endblock %}</h1>
{% block body %}{% endblock %}
<footer>{% include "partials/footer.html" %}</footer>
</body></html>
"""
NEWSLETTER = """{% extends "layout.html" %}
{% block title %}Hello {{ first_name }} – Grüße{% endblock %}
{% block body %}
<p>Your plan: {{ plan }}. {{ coupon }}</p>
{% for p in products %}<li>{{ p.name }}: {{ p.price }}</li>
{% endfor %}{% endblock %}
"""
FOOTER = "Unsubscribe: {{ unsubscribe_url }}"

WRAPPED = (
    (jinja2.Environment, "get_template"),
    (jinja2.Environment, "select_template"),
    (jinja2.Environment, "from_string"),
    (jinja2.Environment, "compile"),
    (jinja2.Environment, "_load_template"),
    (jinja2.Template, "render"),
    (jinja2.Template, "render_async"),
    (jinja2.Template, "generate"),
    (jinja2.Template, "generate_async"),
    (jinja2.runtime.Undefined, "__init__"),
)


def originals():
    return {(owner.__name__, name): owner.__dict__[name] for owner, name in WRAPPED}


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "partials").mkdir()
    (tmp_path / "layout.html").write_text(LAYOUT)
    (tmp_path / "newsletter.html").write_text(NEWSLETTER)
    (tmp_path / "partials" / "footer.html").write_text(FOOTER)
    return tmp_path


@pytest.fixture
def capture():
    cap = Capture()
    before = originals()
    TemplateInstrumentor().instrument(**cap.providers)
    try:
        yield cap
    finally:
        TemplateInstrumentor().uninstrument()
        cap.shutdown()
    assert originals() == before


def context(**extra):
    values = {
        "first_name": "Jane",
        "plan": "gold",
        "products": [{"name": f"Item {i}", "price": f"{i}.99"} for i in range(3)],
        "unsubscribe_url": "https://example.com/u/123",
    }
    values.update(extra)
    return values


@contextlib.contextmanager
def paused(cap):
    """Run a block without mailscope, then instrument again with the same providers."""
    TemplateInstrumentor().uninstrument()
    try:
        yield
    finally:
        TemplateInstrumentor().instrument(**cap.providers)


def render_uninstrumented(cap, templates, name, **values):
    """What the app gets without mailscope."""
    with paused(cap):
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
        return env.get_template(name).render(**values)


def _cache_points(cap):
    return {tuple(sorted(k)): v for k, v in cap.counter_points(attr.METRIC_TEMPLATE_CACHE).items()}


def test_load_is_a_miss_then_a_hit_and_a_changed_file_is_a_miss_again(capture, templates):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), auto_reload=True)
    first = env.get_template("newsletter.html")
    second = env.get_template("newsletter.html")
    assert first is second
    path = templates / "newsletter.html"
    path.write_text(NEWSLETTER + "<!-- v2 -->")
    later = time.time() + 5
    os.utime(path, (later, later))  # a newer mtime, whatever the file system's resolution
    third = env.get_template("newsletter.html")
    assert third is not first

    loads = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in loads] == [False, True, False]
    for span in loads:
        assert span.kind == SpanKind.INTERNAL
        assert span.attributes[attr.OPERATION] == attr.OP_TEMPLATE_LOAD
        assert span.attributes[attr.TEMPLATE_NAME] == "newsletter.html"
        assert span.attributes[attr.TEMPLATE_ENGINE] == "jinja2"
        assert span.status.status_code == StatusCode.UNSET
    engine_hit = (attr.TEMPLATE_CACHE_HIT, True), (attr.TEMPLATE_ENGINE, "jinja2")
    engine_miss = (attr.TEMPLATE_CACHE_HIT, False), (attr.TEMPLATE_ENGINE, "jinja2")
    assert _cache_points(capture) == {engine_hit: 1, engine_miss: 2}


def test_cache_counter_survives_instrumenting_again_with_the_same_meter_provider(capture, templates):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    env.get_template("layout.html")
    for _ in range(2):
        with paused(capture):
            pass  # uninstrument, then instrument again with the same providers
        env.get_template("layout.html")
    points = _cache_points(capture)
    assert sum(points.values()) == 3, points
    assert points[((attr.TEMPLATE_CACHE_HIT, True), (attr.TEMPLATE_ENGINE, "jinja2"))] == 2


def test_render_records_variables_missing_names_and_utf8_size(capture, templates):
    expected = render_uninstrumented(capture, templates, "newsletter.html", **context())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    with capture.tracer.start_as_current_span("campaign") as root:
        output = env.get_template("newsletter.html").render(context())
    assert output == expected  # byte-identical to the uninstrumented render
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.parent.span_id == root.get_span_context().span_id
    a = span.attributes
    assert a[attr.OPERATION] == attr.OP_PERSONALIZE
    assert a[attr.TEMPLATE_NAME] == "newsletter.html"
    assert a[attr.TEMPLATE_ENGINE] == "jinja2"
    assert a[attr.PERSONALIZATION_VARIABLES] == len(context())
    assert a[attr.PERSONALIZATION_MISSING] == 1
    assert list(a[attr.PERSONALIZATION_MISSING_NAMES]) == ["coupon"]
    assert a[attr.CONTENT_BYTES] == len(output.encode("utf-8")) > len(output)  # non-ASCII counted as bytes
    # extends/include loads happen during the render, as its children
    loads = {s.attributes[attr.TEMPLATE_NAME]: s for s in capture.spans(attr.SPAN_TEMPLATE_LOAD)}
    assert set(loads) == {"newsletter.html", "layout.html", "partials/footer.html"}
    assert loads["layout.html"].parent.span_id == span.context.span_id
    assert loads["partials/footer.html"].parent.span_id == span.context.span_id


def test_variables_count_follows_dict_semantics(capture):
    template = jinja2.Environment().from_string("{{ a }}{{ b }}")
    template.render({"a": 1, "b": 2}, b=3, c=4)
    template.render(a=1)
    template.render([("a", 1)])  # an iterable of pairs is not consumed by mailscope
    counts = [s.attributes.get(attr.PERSONALIZATION_VARIABLES) for s in capture.spans(attr.SPAN_PERSONALIZE)]
    assert counts == [3, 1, None]
    outputs = [template.render([("a", 1)]), template.render(iter([("a", 1), ("b", 2)]))]
    assert outputs == ["1", "12"]


UNDEFINED_CASES = {
    # kind: (template, expected missing names)
    jinja2.Undefined: ("{{ first_name }}|{{ coupon | default('none') }}|{{ user.nickname }}|{{ plan }}",
                       ["first_name", "coupon"]),
    jinja2.ChainableUndefined: ("{{ profile.address.city }}|{{ first_name }}|{{ user.nickname }}",
                                ["profile", "first_name"]),
    jinja2.DebugUndefined: ("{{ first_name }}|{% if coupon is defined %}x{% endif %}", ["first_name", "coupon"]),
}


@pytest.mark.parametrize("kind", list(UNDEFINED_CASES), ids=lambda k: k.__name__)
def test_missing_variables_under_each_lenient_undefined_kind(capture, kind):
    source, expected_names = UNDEFINED_CASES[kind]
    values = {"user": {"name": "Jane"}, "plan": "gold"}
    with paused(capture):
        expected = jinja2.Environment(undefined=kind).from_string(source).render(values)
    output = jinja2.Environment(undefined=kind).from_string(source).render(values)
    assert output == expected
    span = capture.one(attr.SPAN_PERSONALIZE)
    # `user.nickname` is an undefined attribute of a defined variable: not a missing variable
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == expected_names
    assert span.attributes[attr.PERSONALIZATION_MISSING] == len(expected_names)
    assert span.status.status_code == StatusCode.UNSET


def _frames(exc):
    return [(f.filename, f.name) for f in traceback.extract_tb(exc.__traceback__)
            if "/mailscope/" not in f.filename and "/instrumentation/" not in f.filename]


def test_strict_undefined_error_reaches_the_app_unchanged_and_marks_the_span(capture):
    source = "Hello {{ first_name }}, {{ plan }}"
    with paused(capture), pytest.raises(jinja2.UndefinedError) as plain:
        jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source).render(plan="gold")
    with pytest.raises(jinja2.UndefinedError) as traced:
        jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source).render(plan="gold")
    assert str(traced.value) == str(plain.value) == "'first_name' is undefined"
    # the same frames as without mailscope, apart from mailscope's own wrapper frames
    assert _frames(traced.value) == _frames(plain.value)
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "jinja2.exceptions.UndefinedError"
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["first_name"]
    event = span.events[0]
    assert event.name == attr.EXCEPTION_EVENT
    assert event.attributes[attr.EXCEPTION_MESSAGE] == "'first_name' is undefined"  # engine messages name, never values


class Refused(ValueError):
    pass


def test_exception_inside_a_render_is_the_same_object_and_its_message_is_withheld(capture):
    raised = Refused("invalid subscriber 'Jane Doe <jane@example.com>'")

    def explode(value):
        raise raised

    env = jinja2.Environment()
    env.filters["explode"] = explode
    template = env.from_string("Hi {{ name | explode }}")
    with pytest.raises(Refused) as excinfo:
        template.render(name="Jane Doe")
    assert excinfo.value is raised
    assert traceback.extract_tb(excinfo.value.__traceback__)[-1].name == "explode"
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE].endswith("templates.test_jinja2.Refused")
    event = span.events[0]
    assert event.attributes[attr.EXCEPTION_MESSAGE] == WITHHELD
    assert "explode" in event.attributes[attr.EXCEPTION_STACKTRACE]
    text = exported_text(span)
    assert "Jane" not in text and "jane@example.com" not in text


def test_syntax_error_and_not_found_mark_load_spans(capture, templates):
    (templates / "broken.html").write_text("{% if first_name %}no endif")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    with pytest.raises(jinja2.TemplateSyntaxError) as syntax:
        env.get_template("broken.html")
    assert syntax.value.lineno == 1
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("missing.html")
    with pytest.raises(jinja2.TemplatesNotFound):
        env.select_template(["missing-a.html", "missing-b.html"])
    with pytest.raises(jinja2.TemplateSyntaxError):
        env.from_string("{{ unclosed ")
    spans = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    got = [(s.attributes[attr.TEMPLATE_NAME], s.attributes[attr.ERROR_TYPE]) for s in spans]
    assert got == [
        ("broken.html", "jinja2.exceptions.TemplateSyntaxError"),
        ("missing.html", "jinja2.exceptions.TemplateNotFound"),
        ("missing-a.html", "jinja2.exceptions.TemplatesNotFound"),
        ("<string>", "jinja2.exceptions.TemplateSyntaxError"),
    ]
    for span in spans:
        assert span.status.status_code == StatusCode.ERROR
        assert attr.TEMPLATE_CACHE_HIT not in span.attributes
    assert _cache_points(capture) == {}  # failed loads have no cache outcome


def test_inline_templates_are_named_string(capture):
    jinja2.Template("Hi {{ name }}").render(name="x")
    jinja2.Environment().from_string("Bye {{ name }}").render(name="x")
    loads = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    renders = capture.spans(attr.SPAN_PERSONALIZE)
    assert [s.attributes[attr.TEMPLATE_NAME] for s in loads + renders] == ["<string>"] * 4
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in loads] == [False, False]


def test_select_and_get_or_select_give_one_span_named_by_the_chosen_template(capture, templates):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    env.select_template(["absent.html", "layout.html"])
    env.get_or_select_template("newsletter.html")
    env.get_or_select_template(["absent.html", "partials/footer.html"])
    names = [s.attributes[attr.TEMPLATE_NAME] for s in capture.spans()]
    assert names == ["layout.html", "newsletter.html", "partials/footer.html"]


def test_async_renders_in_concurrent_tasks_keep_their_own_missing_names(capture):
    env = jinja2.Environment(enable_async=True)
    template = env.from_string("{{ greeting }} {{ first_name }}{% for i in items %}{{ i }}{% endfor %}")

    async def one(values, label):
        with capture.tracer.start_as_current_span(label):
            await asyncio.sleep(0)
            return await template.render_async(**values)

    async def main():
        return await asyncio.gather(
            one({"greeting": "Hi", "items": [1, 2]}, "task-a"),
            one({"first_name": "Jo", "items": [3]}, "task-b"),
        )

    assert asyncio.run(main()) == ["Hi 12", " Jo3"]
    parents = {s.name: s.context.span_id for s in capture.spans() if s.name.startswith("task-")}
    by_parent = {s.parent.span_id: s for s in capture.spans(attr.SPAN_PERSONALIZE)}
    assert list(by_parent[parents["task-a"]].attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["first_name"]
    assert list(by_parent[parents["task-b"]].attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["greeting"]


def test_threads_rendering_at_once_keep_their_own_missing_names(capture):
    template = jinja2.Environment().from_string("{{ a }}{{ b }}{{ c }}{{ d }}")
    variables = ["a", "b", "c", "d"]
    barrier = threading.Barrier(4)
    outputs = {}

    def worker(i):
        supplied = {v: i for v in variables if v != variables[i]}  # each thread misses another one
        barrier.wait()
        with capture.tracer.start_as_current_span(f"thread-{i}"):
            outputs[i] = [template.render(supplied) for _ in range(50)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    roots = {s.context.span_id: s.name for s in capture.spans() if s.name.startswith("thread-")}
    renders = capture.spans(attr.SPAN_PERSONALIZE)
    assert len(renders) == 200
    for span in renders:
        i = int(roots[span.parent.span_id].split("-")[1])
        assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == [variables[i]]
    assert all(set(outputs[i]) == {str(i) * 3} for i in range(4))


def test_sync_render_of_an_async_environment_is_one_span(capture):
    env = jinja2.Environment(enable_async=True)
    assert env.from_string("x{{ missing }}y").render() == "xy"
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["missing"]


def test_generate_async_is_one_span_over_the_whole_iteration(capture):
    env = jinja2.Environment(enable_async=True)
    template = env.from_string("{% for i in items %}{{ i }}-{{ gone }}{% endfor %}")

    async def collect():
        return [chunk async for chunk in template.generate_async(items=["ä", "b"])]

    chunks = asyncio.run(collect())
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.attributes[attr.CONTENT_BYTES] == len("".join(chunks).encode("utf-8"))
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["gone"]


def test_generate_and_stream_cover_the_iteration_and_early_close(capture, templates):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    template = env.get_template("newsletter.html")
    whole = "".join(template.generate(context()))
    assert whole == render_uninstrumented(capture, templates, "newsletter.html", **context())
    streamed = template.stream(context())
    first = next(iter(streamed))
    del streamed  # the consumer stops early; the generator is closed
    spans = capture.spans(attr.SPAN_PERSONALIZE)
    assert len(spans) == 2
    assert spans[0].attributes[attr.CONTENT_BYTES] == len(whole.encode("utf-8"))
    assert spans[1].attributes[attr.CONTENT_BYTES] >= len(first.encode("utf-8"))
    assert spans[1].end_time is not None


def test_template_globs_choose_what_is_traced(templates):
    cap = Capture()
    TemplateInstrumentor().instrument(templates=("news*",), **cap.providers)
    try:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
        env.get_template("newsletter.html").render(context())
        env.from_string("inline").render()
    finally:
        TemplateInstrumentor().uninstrument()
    names = {(s.name, s.attributes[attr.TEMPLATE_NAME]) for s in cap.spans()}
    assert names == {(attr.SPAN_TEMPLATE_LOAD, "newsletter.html"), (attr.SPAN_PERSONALIZE, "newsletter.html")}


def test_sampled_out_renders_still_count_cache_outcomes_and_render_the_same(templates):
    cap = Capture(sampled=False)
    TemplateInstrumentor().instrument(**cap.providers)
    try:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
        output = env.get_template("newsletter.html").render(context())
    finally:
        TemplateInstrumentor().uninstrument()
    plain_env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    assert output == plain_env.get_template("newsletter.html").render(context())
    assert cap.spans() == []
    points = _cache_points(cap)
    assert sum(points.values()) == 3  # newsletter, layout, footer


def test_a_failure_inside_mailscope_is_logged_once_and_the_app_is_unaffected(capture, templates, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("mailscope bug")

    monkeypatch.setattr(templates_common, "count_variables", broken)  # render start
    monkeypatch.setattr(templates_common.KnownTemplates, "served", broken)  # load finish
    expected = render_uninstrumented(capture, templates, "newsletter.html", **context())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    with caplog.at_level(logging.ERROR, logger="mailscope"):
        outputs = [env.get_template("newsletter.html").render(context()) for _ in range(3)]
    assert outputs == [expected] * 3
    internal = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(internal) == 2, [r.getMessage() for r in internal]  # one per failing place, not per call
    # the load spans whose finishing failed were still ended (and exported); renders went untraced
    assert len(capture.spans(attr.SPAN_TEMPLATE_LOAD)) == 9
    assert capture.spans(attr.SPAN_PERSONALIZE) == []


def test_uninstrument_restores_every_original_by_identity(templates):
    before = originals()
    cap = Capture()
    TemplateInstrumentor().instrument(**cap.providers)
    during = originals()
    assert all(during[key] is not before[key] for key in during if key[1] not in ("compile", "_load_template"))
    TemplateInstrumentor().uninstrument()
    after = originals()
    assert all(after[key] is before[key] for key in before)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    env.get_template("newsletter.html").render(context())
    assert cap.spans() == []


# --- coexistence with opentelemetry-instrumentation-jinja2 ----------------------------------------
UPSTREAM_NAME_KEY = "jinja2.template_name"  # upstream's attribute, read to tell its spans apart


@pytest.mark.parametrize("second_off", ["upstream", "mailscope"])
@pytest.mark.parametrize("first_on", ["mailscope", "upstream"])
def test_upstream_jinja2_spans_are_suppressed_exactly_for_the_calls_mailscope_traces(templates, first_on, second_off):
    from opentelemetry.instrumentation.jinja2 import Jinja2Instrumentor

    (templates / "legacy.txt").write_text("Legacy {{ first_name }}")
    before = originals()
    cap = Capture()
    ours = TemplateInstrumentor()
    theirs = Jinja2Instrumentor()

    def ours_on():
        ours.instrument(templates=("newsletter.html", "layout.html", "partials/*"), **cap.providers)

    def theirs_on():
        theirs.instrument(tracer_provider=cap.tracer_provider)

    def render_all():
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
        return (env.get_template("newsletter.html").render(context()),
                env.get_template("legacy.txt").render(context()),
                env.from_string("inline {{ first_name }}").render(context()))

    try:
        expected = render_all()  # neither instrumentor is on yet
        for switch_on in ((ours_on, theirs_on) if first_on == "mailscope" else (theirs_on, ours_on)):
            switch_on()
        assert render_all() == expected
        spans = cap.spans()
        mine = [s for s in spans if s.name.startswith("email.")]
        upstream = [s for s in spans if s.name.startswith("jinja2.")]
        assert sorted({s.attributes[attr.TEMPLATE_NAME] for s in mine}) == [
            "layout.html", "newsletter.html", "partials/footer.html"]
        # upstream still traces what mailscope does not: legacy.txt and the inline template
        assert sorted((s.name, s.attributes.get(UPSTREAM_NAME_KEY)) for s in upstream) == sorted([
            ("jinja2.load", "legacy.txt"), ("jinja2.compile", "legacy.txt"), ("jinja2.render", "legacy.txt"),
            ("jinja2.compile", "<memory>"), ("jinja2.render", "<memory>"),
        ])
        # no upstream span sits between mailscope's spans of one render
        render = next(s for s in mine if s.name == attr.SPAN_PERSONALIZE)
        layout = next(s for s in mine if s.attributes[attr.TEMPLATE_NAME] == "layout.html")
        assert layout.parent.span_id == render.context.span_id

        cap.clear()
        (theirs if second_off == "upstream" else ours).uninstrument()
        assert render_all() == expected
        names = {s.name for s in cap.spans()}
        if second_off == "upstream":
            assert names == {attr.SPAN_TEMPLATE_LOAD, attr.SPAN_PERSONALIZE}
        else:
            assert names == {"jinja2.load", "jinja2.render", "jinja2.compile"}
    finally:
        theirs.uninstrument()
        ours.uninstrument()
        cap.shutdown()
    assert originals() == before


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("even printing this fails")


def test_an_exception_that_cannot_be_printed_still_reaches_the_app_and_marks_the_span(capture, caplog):
    raised = Unprintable()

    def explode(value):
        raise raised

    env = jinja2.Environment()
    env.filters["explode"] = explode
    with caplog.at_level(logging.ERROR, logger="mailscope"), pytest.raises(Unprintable) as excinfo:
        env.from_string("{{ x | explode }}").render(x=1)
    assert excinfo.value is raised
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE].endswith("Unprintable")
    assert span.end_time is not None

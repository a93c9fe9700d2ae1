"""python-liquid 2.x under mailscope_templates: real liquid, templates on disk, the real SDK in memory."""

from __future__ import annotations

import asyncio
import contextlib
import traceback

import liquid
import pytest
from liquid.exceptions import LiquidSyntaxError, TemplateNotFoundError, UndefinedError
from opentelemetry.trace import SpanKind, StatusCode

from mailscope import attributes as attr
from mailscope.instrumentation.common.failures import WITHHELD
from mailscope.instrumentation.templates import TemplateInstrumentor
from tests.support.template_capture import Capture, exported_text

NEWSLETTER = """<h1>Hello {{ first_name }} – Grüße</h1>
<p>Plan: {{ plan | upcase }} {{ coupon }}</p>
{% for product in products %}{% render 'partials/product.liquid', product: product %}{% endfor %}
<p>{{ customer.nickname }}</p>
{% include 'partials/footer.liquid' %}
"""
PRODUCT = "<li>{{ product.name }}: {{ product.price }}</li>\n"
FOOTER = "<footer>Unsubscribe: {{ unsubscribe_url }}</footer>"

WRAPPED = (
    (liquid.Environment, "get_template"),
    (liquid.Environment, "get_template_async"),
    (liquid.Environment, "from_string"),
    (liquid.BoundTemplate, "render"),
    (liquid.BoundTemplate, "render_async"),
    (liquid.Undefined, "__init__"),
)


def originals():
    return {(owner.__name__, name): owner.__dict__[name] for owner, name in WRAPPED}


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "emails" / "partials").mkdir(parents=True)
    (tmp_path / "emails" / "newsletter.liquid").write_text(NEWSLETTER)
    (tmp_path / "emails" / "partials" / "product.liquid").write_text(PRODUCT)
    (tmp_path / "emails" / "partials" / "footer.liquid").write_text(FOOTER)
    return tmp_path / "emails"


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


@contextlib.contextmanager
def paused(cap):
    TemplateInstrumentor().uninstrument()
    try:
        yield
    finally:
        TemplateInstrumentor().instrument(**cap.providers)


def context(**extra):
    values = {
        "first_name": "Jane",
        "plan": "gold",
        "customer": {"id": 7},
        "products": [{"name": f"Item {i}", "price": f"{i}.99"} for i in range(3)],
        "unsubscribe_url": "https://example.com/u/123",
    }
    values.update(extra)
    return values


def _cache_points(cap):
    return {tuple(sorted(k)): v for k, v in cap.counter_points(attr.METRIC_TEMPLATE_CACHE).items()}


def test_caching_loader_is_a_miss_then_hits_and_a_plain_loader_always_misses(capture, templates):
    caching = liquid.Environment(loader=liquid.CachingFileSystemLoader(templates))
    first = caching.get_template("newsletter.liquid")
    assert caching.get_template("newsletter.liquid") is first
    plain = liquid.Environment(loader=liquid.FileSystemLoader(templates))
    plain.get_template("newsletter.liquid")
    plain.get_template("newsletter.liquid")
    loads = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in loads] == [False, True, False, False]
    for span in loads:
        assert span.kind == SpanKind.INTERNAL
        assert span.attributes[attr.OPERATION] == attr.OP_TEMPLATE_LOAD
        assert span.attributes[attr.TEMPLATE_NAME] == "newsletter.liquid"
        assert span.attributes[attr.TEMPLATE_ENGINE] == "liquid"
    hit = (attr.TEMPLATE_CACHE_HIT, True), (attr.TEMPLATE_ENGINE, "liquid")
    miss = (attr.TEMPLATE_CACHE_HIT, False), (attr.TEMPLATE_ENGINE, "liquid")
    assert _cache_points(capture) == {hit: 1, miss: 3}


def test_render_is_identical_and_records_variables_missing_names_and_size(capture, templates):
    with paused(capture):
        expected = liquid.Environment(loader=liquid.FileSystemLoader(templates)).get_template(
            "newsletter.liquid").render(**context())
    env = liquid.Environment(loader=liquid.CachingFileSystemLoader(templates))
    template = env.get_template("newsletter.liquid")
    capture.clear()
    with capture.tracer.start_as_current_span("campaign") as root:
        output = template.render(**context())
    assert output == expected
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.parent.span_id == root.get_span_context().span_id
    a = span.attributes
    assert a[attr.TEMPLATE_NAME] == "newsletter.liquid"
    assert a[attr.TEMPLATE_ENGINE] == "liquid"
    assert a[attr.PERSONALIZATION_VARIABLES] == len(context())
    # `customer.nickname` misses below a defined variable, and forloop bookkeeping is not a variable
    assert list(a[attr.PERSONALIZATION_MISSING_NAMES]) == ["coupon"]
    assert a[attr.PERSONALIZATION_MISSING] == 1
    assert a[attr.CONTENT_BYTES] == len(output.encode("utf-8")) > len(output)
    # partial loads happen inside the render and are its children: one per {% render %}/{% include %}
    loads = capture.spans(attr.SPAN_TEMPLATE_LOAD)
    assert sorted(s.attributes[attr.TEMPLATE_NAME] for s in loads) == (
        ["partials/footer.liquid"] + ["partials/product.liquid"] * 3)
    assert {s.parent.span_id for s in loads} == {span.context.span_id}


def test_nested_template_names_agree_between_load_and_render(capture, tmp_path):
    (tmp_path / "campaigns" / "spring").mkdir(parents=True)
    (tmp_path / "campaigns" / "spring" / "offer.liquid").write_text("Offer for {{ first_name }}")
    env = liquid.Environment(loader=liquid.FileSystemLoader(tmp_path))
    env.get_template("campaigns/spring/offer.liquid").render(first_name="x")
    names = {s.name: s.attributes[attr.TEMPLATE_NAME] for s in capture.spans()}
    assert names == {attr.SPAN_TEMPLATE_LOAD: "campaigns/spring/offer.liquid",
                     attr.SPAN_PERSONALIZE: "campaigns/spring/offer.liquid"}


LENIENT = {
    liquid.Undefined: "{{ first_name }}|{{ coupon | default: 'none' }}|{{ customer.nickname }}",
    liquid.DebugUndefined: "{{ first_name }}|{{ coupon }}|{{ customer.nickname }}",
    liquid.StrictDefaultUndefined: "{{ first_name | default: 'friend' }}|{{ coupon | default: 'none' }}",
    liquid.FalsyStrictUndefined: "{% if first_name %}x{% endif %}{% if coupon %}y{% endif %}done",
}


@pytest.mark.parametrize("kind", list(LENIENT), ids=lambda k: k.__name__)
def test_missing_variables_under_each_undefined_kind_that_renders(capture, kind):
    source = LENIENT[kind]
    values = {"customer": {"id": 1}, "plan": "gold"}
    with paused(capture):
        expected = liquid.Environment(undefined=kind).from_string(source).render(**values)
    output = liquid.Environment(undefined=kind).from_string(source).render(**values)
    assert output == expected
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["first_name", "coupon"]
    assert span.attributes[attr.PERSONALIZATION_MISSING] == 2
    assert span.status.status_code == StatusCode.UNSET


def test_strict_undefined_error_reaches_the_app_unchanged_and_marks_the_span(capture):
    source = "Hello {{ first_name }}"
    with paused(capture), pytest.raises(UndefinedError) as plain:
        liquid.Environment(undefined=liquid.StrictUndefined).from_string(source).render(plan="gold")
    with pytest.raises(UndefinedError) as traced:
        liquid.Environment(undefined=liquid.StrictUndefined).from_string(source).render(plan="gold")
    assert str(traced.value) == str(plain.value)
    ours = [(f.filename, f.name) for f in traceback.extract_tb(traced.value.__traceback__)
            if "/instrumentation/" not in f.filename]
    assert ours == [(f.filename, f.name) for f in traceback.extract_tb(plain.value.__traceback__)]
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "liquid.exceptions.UndefinedError"
    assert list(span.attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["first_name"]


def test_exception_from_a_filter_is_the_same_object_with_its_message_withheld(capture):
    raised = ValueError("bad value 'Jane Doe'")

    def explode(value):
        raise raised

    env = liquid.Environment()
    env.add_filter("explode", explode)
    with pytest.raises(ValueError) as excinfo:
        env.from_string("{{ name | explode }}").render(name="Jane Doe")
    assert excinfo.value is raised
    span = capture.one(attr.SPAN_PERSONALIZE)
    assert span.attributes[attr.ERROR_TYPE] == "ValueError"
    assert span.events[0].attributes[attr.EXCEPTION_MESSAGE] == WITHHELD
    assert "Jane" not in exported_text(span)


def test_syntax_error_and_not_found_mark_load_spans(capture, templates):
    (templates / "broken.liquid").write_text("{% if first_name %}never closed")
    env = liquid.Environment(loader=liquid.FileSystemLoader(templates))
    with pytest.raises(LiquidSyntaxError):
        env.get_template("broken.liquid")
    with pytest.raises(TemplateNotFoundError):
        env.get_template("absent.liquid")
    with pytest.raises(LiquidSyntaxError):
        liquid.Template("{{ unclosed ")
    got = [(s.attributes[attr.TEMPLATE_NAME], s.attributes[attr.ERROR_TYPE], s.status.status_code)
           for s in capture.spans(attr.SPAN_TEMPLATE_LOAD)]
    assert got == [
        ("broken.liquid", "liquid.exceptions.LiquidSyntaxError", StatusCode.ERROR),
        ("absent.liquid", "liquid.exceptions.TemplateNotFoundError", StatusCode.ERROR),
        ("<string>", "liquid.exceptions.LiquidSyntaxError", StatusCode.ERROR),
    ]
    assert _cache_points(capture) == {}


def test_inline_templates_and_module_level_helpers_are_named_string(capture):
    assert liquid.Template("Hi {{ name }}").render(name="a") == "Hi a"
    assert liquid.render("Bye {{ name }}", name="b") == "Bye b"
    liquid.Environment().from_string("Named {{ x }}", name="subject-line").render(x=1)
    got = [(s.name, s.attributes[attr.TEMPLATE_NAME]) for s in capture.spans()]
    assert got == [
        (attr.SPAN_TEMPLATE_LOAD, "<string>"), (attr.SPAN_PERSONALIZE, "<string>"),
        (attr.SPAN_TEMPLATE_LOAD, "<string>"), (attr.SPAN_PERSONALIZE, "<string>"),
        (attr.SPAN_TEMPLATE_LOAD, "subject-line"), (attr.SPAN_PERSONALIZE, "subject-line"),
    ]


def test_async_load_and_concurrent_renders(capture, templates):
    env = liquid.Environment(loader=liquid.CachingFileSystemLoader(templates))

    async def one(values, label):
        with capture.tracer.start_as_current_span(label):
            template = await env.get_template_async("newsletter.liquid")
            return await template.render_async(**values)

    async def main():
        await env.get_template_async("newsletter.liquid")  # warm the cache: concurrent first loads both miss
        return await asyncio.gather(one(context(coupon="C1"), "task-a"), one(context(first_name=None), "task-b"))

    outputs = asyncio.run(main())
    assert "C1" in outputs[0] and "Jane" not in outputs[1]
    roots = {s.name: s.context.span_id for s in capture.spans() if s.name.startswith("task-")}
    renders = {s.parent.span_id: s for s in capture.spans(attr.SPAN_PERSONALIZE)}
    assert attr.PERSONALIZATION_MISSING_NAMES not in renders[roots["task-a"]].attributes
    assert renders[roots["task-a"]].attributes[attr.PERSONALIZATION_MISSING] == 0
    assert list(renders[roots["task-b"]].attributes[attr.PERSONALIZATION_MISSING_NAMES]) == ["coupon"]
    top_loads = [s for s in capture.spans(attr.SPAN_TEMPLATE_LOAD) if s.parent is None]
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in top_loads] == [False]
    task_loads = [s for s in capture.spans(attr.SPAN_TEMPLATE_LOAD) if s.parent and s.parent.span_id in roots.values()]
    assert [s.attributes[attr.TEMPLATE_CACHE_HIT] for s in task_loads] == [True, True]


def test_template_globs_choose_what_is_traced(templates):
    cap = Capture()
    TemplateInstrumentor().instrument(templates=("newsletter.*",), **cap.providers)
    try:
        env = liquid.Environment(loader=liquid.FileSystemLoader(templates))
        env.get_template("newsletter.liquid").render(**context())
    finally:
        TemplateInstrumentor().uninstrument()
    assert {(s.name, s.attributes[attr.TEMPLATE_NAME]) for s in cap.spans()} == {
        (attr.SPAN_TEMPLATE_LOAD, "newsletter.liquid"), (attr.SPAN_PERSONALIZE, "newsletter.liquid")}


def test_uninstrument_restores_every_original_by_identity(templates):
    before = originals()
    cap = Capture()
    TemplateInstrumentor().instrument(**cap.providers)
    assert all(originals()[key] is not before[key] for key in before)
    TemplateInstrumentor().uninstrument()
    assert all(originals()[key] is before[key] for key in before)
    liquid.Environment(loader=liquid.FileSystemLoader(templates)).get_template("newsletter.liquid").render()
    assert cap.spans() == []

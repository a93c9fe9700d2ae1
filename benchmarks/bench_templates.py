"""Personalization overhead: a realistic ~10 KB newsletter, 20 variables, a loop over 6 products.

Three ways, run interleaved, each with the real SDK (TracerProvider +
BatchSpanProcessor with an exporter that drops spans):
- Jinja2 uninstrumented;
- with mailscope_templates (email.personalize: variables, missing names, bytes;
  email.template.load: cache hit, cache counter through an SDK MeterProvider);
- with opentelemetry-instrumentation-jinja2 (jinja2.render / jinja2.load: the
  template name only).
Two workloads: `render` of a template object held by the app, and the usual
per-recipient `env.get_template(name).render(...)` (a cache hit plus a render:
two spans either way). The goal is mailscope's overhead <= upstream's; the
`overhead vs upstream` ratio is (mailscope - plain) / (upstream - plain).
A case switches its instrumentor on and off around its own batch, so the
instrumentations never stack; that switch costs microseconds against a batch
of tens of milliseconds.
"""

from __future__ import annotations

from benchmarks.harness import Ratio, Section, interleaved, sdk_providers

VARIABLES = (
    "first_name", "last_name", "greeting", "plan", "renewal_date", "account_id", "city", "country",
    "loyalty_points", "coupon_code", "coupon_expiry", "manager_name", "support_phone", "unsubscribe_url",
    "preferences_url", "campaign", "issue_number", "hero_title", "hero_text", "signature",
)

STYLE = "".join(
    f".block-{i} {{ margin: {i}px 0; padding: 8px 12px; font-family: Helvetica, Arial, sans-serif; color: #3{i % 10}3; }}\n"
    for i in range(40)
)

NEWSLETTER = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{{ campaign }} #{{ issue_number }}</title>"
    "<style>" + STYLE + "</style></head><body>\n"
    "<table class='block-1' width='100%'><tr><td><h1>{{ hero_title }}</h1><p>{{ hero_text }}</p></td></tr></table>\n"
    "<p class='block-2'>{{ greeting }} {{ first_name }} {{ last_name }},</p>\n"
    "<p class='block-3'>Your {{ plan }} plan renews on {{ renewal_date }} (account {{ account_id }}).\n"
    "We hope the weather in {{ city }}, {{ country }} is kind to you. You have {{ loyalty_points }} points.</p>\n"
    "<p class='block-4'>Use code <b>{{ coupon_code }}</b> before {{ coupon_expiry }}.</p>\n"
    "<table class='block-5'>{% for product in products %}\n"
    "<tr><td class='block-6'><img src='{{ product.image }}' alt='{{ product.name }}' width='120'></td>"
    "<td class='block-7'><h3>{{ product.name }}</h3><p>{{ product.blurb }}</p>"
    "<p class='block-8'>{{ product.price }} &euro; &middot; <a href='{{ product.url }}'>Shop now</a></p></td></tr>"
    "{% endfor %}</table>\n"
    + "".join(f"<p class='block-{10 + i}'>Seasonal tip {i}: water early, mulch generously, and keep an eye on "
              f"late frosts in the first weeks of spring.</p>\n" for i in range(18))
    + "<p class='block-30'>Questions? {{ manager_name }} is at {{ support_phone }}.</p>\n"
    "<p class='block-31'>{{ signature }}</p>\n"
    "<p class='block-32'><a href='{{ preferences_url }}'>Preferences</a> &middot; "
    "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>\n"
)


def _context() -> dict:
    values = {name: f"value of {name}" for name in VARIABLES}
    values["products"] = [
        {"name": f"Seed pack {i}", "blurb": "Hardy, fast-growing and happy in pots or beds. " * 2,
         "price": f"{i + 3}.90", "image": f"https://cdn.example.com/p/{i}.jpg", "url": f"https://shop.example.com/p/{i}"}
        for i in range(6)
    ]
    return values


def run(quick: bool) -> Section:
    import tempfile
    from pathlib import Path

    import jinja2
    from opentelemetry.instrumentation.jinja2 import Jinja2Instrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from mailscope.instrumentation.templates import TemplateInstrumentor

    ops, repeats = (300, 5) if quick else (2000, 15)
    directory = Path(tempfile.mkdtemp(prefix="mailscope-bench-"))
    (directory / "newsletter.html").write_text(NEWSLETTER)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), autoescape=True)
    template = env.get_template("newsletter.html")
    values = _context()
    size = len(template.render(values).encode())

    ours_provider, theirs_provider = sdk_providers()[0], sdk_providers()[0]
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    switches = {
        "plain": (lambda: None, lambda: None),
        "mailscope": (
            lambda: TemplateInstrumentor().instrument(tracer_provider=ours_provider, meter_provider=meter_provider),
            lambda: TemplateInstrumentor().uninstrument(),
        ),
        "upstream": (
            lambda: Jinja2Instrumentor().instrument(tracer_provider=theirs_provider),
            lambda: Jinja2Instrumentor().uninstrument(),
        ),
    }

    def render_case(switch):
        on, off = switches[switch]

        def case(n):
            on()
            try:
                for _ in range(n):
                    template.render(values)
            finally:
                off()

        return case

    def load_render_case(switch):
        on, off = switches[switch]

        def case(n):
            on()
            try:
                for _ in range(n):
                    env.get_template("newsletter.html").render(values)
            finally:
                off()

        return case

    section = Section(f"templates: Jinja2 newsletter personalization ({size} bytes out, 20 variables, 6 products)")
    for label, factory in (("render", render_case), ("get_template+render", load_render_case)):
        results = interleaved({name: factory(name) for name in switches}, ops, repeats)
        plain, ours, theirs = results["plain"], results["mailscope"], results["upstream"]
        section.rows += [(f"{label}: uninstrumented", plain), (f"{label}: mailscope", ours),
                         (f"{label}: opentelemetry-instrumentation-jinja2", theirs)]
        section.ratios += [
            Ratio(f"{label}: mailscope / uninstrumented", ours / plain),
            Ratio(f"{label}: upstream / uninstrumented", theirs / plain),
            Ratio(f"{label}: mailscope / upstream", ours / theirs, "<= 1.0"),
            Ratio(f"{label}: overhead vs upstream", (ours - plain) / max(theirs - plain, 1e-12), "<= 1.0"),
        ]
    section.notes.append("mailscope records per render: variables, missing count/names, bytes; upstream: the name")
    for provider in (ours_provider, theirs_provider):
        provider.shutdown()
    meter_provider.shutdown()
    return section

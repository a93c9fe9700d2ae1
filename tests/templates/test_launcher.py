"""A realistic newsletter job under the real `opentelemetry-instrument`, read back from the OTLP JSON files.

The app never imports mailscope. opentelemetry-instrumentation-jinja2 is installed
and active too (the launcher loads every instrumentor it finds), so this is also
the coexistence rule as users meet it.
"""

from __future__ import annotations

import json
import textwrap

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import base_env, file_export_env, run_instrumented, write_script

SUBSCRIBERS = [
    {"first_name": "Alice", "last_name": "Zebrowski", "email": "alice.zebrowski@example.org", "plan": "gold"},
    {"first_name": "Bartholomew", "last_name": "Quinceworth", "email": "bq.quincey@mailbox.test", "plan": "free"},
    {"last_name": "Ostrowska-Nowak", "email": "o.nowak@poczta.test", "plan": "silver"},  # no first name
]
SECRETS = [v for s in SUBSCRIBERS for k, v in s.items() if k != "plan"] + ["mailbox.test", "bq.quincey"]

TEMPLATES = {
    "emails/layout.html": """<!doctype html><html><body>
<h1>{% block title %}{% endblock %}</h1>{% block body %}{% endblock %}
</body></html>""",
    "emails/newsletter.html": """{% extends "emails/layout.html" %}
{% block title %}Spring picks for {{ first_name }}{% endblock %}
{% block body %}<p>Dear {{ first_name }} {{ last_name }}, your {{ plan }} plan renews soon.</p>
<ul>{% for product in products %}{% include "emails/partials/product.html" %}{% endfor %}</ul>
{% endblock %}""",
    "emails/partials/product.html": "<li>{{ product.name }} – {{ product.price }} €</li>\n",
    "legacy/footer.txt": "Sent to {{ email }}. Unsubscribe any time.",
    "subject.liquid": "{{ first_name | default: 'Friend' }}, {{ headline }}",
}

MAIL_MODULE = '''
OUTBOX = []

def build_subject(env, subscriber):
    return env.get_template("subject.liquid").render(headline="spring is here", **subscriber)

def send(address, subject, body):
    OUTBOX.append((address, subject, len(body)))
    return True
'''

APP = '''
import hashlib, json, sys
from pathlib import Path

import jinja2
import liquid

from newsletter_mail import OUTBOX, build_subject, send

root = Path(__file__).parent / "templates"
subscribers = json.loads(Path(sys.argv[1]).read_text())
products = [{"name": f"Seed pack {i}", "price": f"{i + 2}.50"} for i in range(6)]

env = jinja2.Environment(loader=jinja2.FileSystemLoader(root), autoescape=True)
subjects = liquid.Environment(loader=liquid.CachingFileSystemLoader(root))
digest = hashlib.sha256()
for subscriber in subscribers:
    html = env.get_template("emails/newsletter.html").render(products=products, **subscriber)
    footer = env.get_template("legacy/footer.txt").render(**subscriber)
    subject = build_subject(subjects, subscriber)
    send(subscriber["email"], subject, html + footer)
    digest.update((subject + html + footer).encode())

strict = jinja2.Environment(loader=jinja2.FileSystemLoader(root), undefined=jinja2.StrictUndefined)
try:
    strict.get_template("emails/newsletter.html").render(plan="gold", products=[])
except jinja2.UndefinedError as exc:
    print("strict render failed:", type(exc).__name__, exc)
print("sent", len(OUTBOX), "digest", digest.hexdigest())
'''


def _write_app(tmp_path):
    for name, source in TEMPLATES.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    (tmp_path / "newsletter_mail.py").write_text(textwrap.dedent(MAIL_MODULE))
    (tmp_path / "subscribers.json").write_text(json.dumps(SUBSCRIBERS))
    return write_script(tmp_path, APP)


def test_newsletter_job_under_the_launcher(tmp_path):
    script = _write_app(tmp_path)
    plain = run_instrumented(script, base_env(), tmp_path / "subscribers.json", instrument=False)
    assert plain.returncode == 0, plain.stderr

    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(
        traces, metrics,
        MAILSCOPE_TEMPLATES="emails/*,subject.liquid",
        MAILSCOPE_OPERATIONS="personalize=newsletter_mail:build_subject,send=newsletter_mail:send,"
                             "send=newsletter_mail:send_later",
    )
    result = run_instrumented(script, env, tmp_path / "subscribers.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout  # the app's results are unchanged
    assert "strict render failed: UndefinedError 'first_name' is undefined" in result.stdout
    bad_target = [line for line in result.stderr.splitlines() if "newsletter_mail:send_later" in line]
    assert len(bad_target) == 1 and "no attribute 'send_later'" in bad_target[0], result.stderr

    spans = read_spans(str(traces))
    by_id = {s["span_id"]: s for s in spans}
    mine = [s for s in spans if s["scope"].startswith("mailscope.")]
    for span in mine:
        assert span["attributes"][attr.OPERATION] in (attr.OP_TEMPLATE_LOAD, attr.OP_PERSONALIZE, attr.OP_SEND)

    # loads of the newsletter: a miss, then cache hits; the strict environment compiles its own copy
    loads = [s for s in mine if s["name"] == attr.SPAN_TEMPLATE_LOAD
             and s["attributes"][attr.TEMPLATE_NAME] == "emails/newsletter.html"]
    assert [s["attributes"][attr.TEMPLATE_CACHE_HIT] for s in loads] == [False, True, True, False]
    for span in loads:
        assert span["kind"] == "INTERNAL" and span["attributes"][attr.TEMPLATE_ENGINE] == "jinja2"

    renders = [s for s in mine if s["name"] == attr.SPAN_PERSONALIZE
               and s["attributes"].get(attr.TEMPLATE_NAME) == "emails/newsletter.html"]
    assert len(renders) == 4
    ok, failed = renders[:3], renders[3]
    assert [list(s["attributes"].get(attr.PERSONALIZATION_MISSING_NAMES, [])) for s in ok] == [[], [], ["first_name"]]
    assert [s["attributes"][attr.PERSONALIZATION_VARIABLES] for s in ok] == [5, 5, 4]
    assert all(s["attributes"][attr.CONTENT_BYTES] > 300 for s in ok)
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"][attr.ERROR_TYPE] == "jinja2.exceptions.UndefinedError"
    assert failed["attributes"][attr.PERSONALIZATION_MISSING_NAMES] == ["first_name"]
    # includes inside the product loop are child loads of the render
    children = [s for s in mine if s["parent_span_id"] == ok[0]["span_id"]]
    assert sorted({c["attributes"][attr.TEMPLATE_NAME] for c in children}) == [
        "emails/layout.html", "emails/partials/product.html"]

    # coexistence: upstream jinja2 spans only for the template mailscope does not trace
    upstream = [s for s in spans if s["name"].startswith("jinja2.")]
    assert upstream, "opentelemetry-instrumentation-jinja2 should be active under the launcher"
    assert {s["attributes"].get("jinja2.template_name") for s in upstream} == {"legacy/footer.txt"}
    assert all(s["attributes"].get(attr.TEMPLATE_NAME) != "legacy/footer.txt" for s in mine)

    # config-named functions: a custom personalize around the liquid render, and the sends
    custom = [s for s in mine if s["attributes"].get(attr.TEMPLATE_ENGINE) == "custom"]
    assert [s["attributes"][attr.TEMPLATE_NAME] for s in custom] == ["newsletter_mail:build_subject"] * 3
    subjects = [s for s in mine if s["attributes"].get(attr.TEMPLATE_NAME) == "subject.liquid"
                and s["name"] == attr.SPAN_PERSONALIZE]
    assert [by_id[s["parent_span_id"]]["attributes"][attr.TEMPLATE_ENGINE] for s in subjects] == ["custom"] * 3
    assert [list(s["attributes"].get(attr.PERSONALIZATION_MISSING_NAMES, [])) for s in subjects] == [
        [], [], ["first_name"]]
    sends = [s for s in mine if s["name"] == attr.SPAN_SEND]
    assert [(s["kind"], s["attributes"][attr.PROVIDER]) for s in sends] == [("CLIENT", "newsletter_mail")] * 3

    # no personalization value anywhere in what left the process
    exported = traces.read_text() + metrics.read_text()
    leaked = [secret for secret in SECRETS if secret in exported]
    assert leaked == []

    # metrics: the cache counter, and the duration histogram the pipeline recorded from these spans
    points = list(read_metric_points(str(metrics)))
    cache = {}
    for p in points:
        if p["name"] == attr.METRIC_TEMPLATE_CACHE:
            key = (p["attributes"][attr.TEMPLATE_ENGINE], p["attributes"][attr.TEMPLATE_CACHE_HIT])
            cache[key] = max(cache.get(key, 0), p["value"])
    assert cache[("jinja2", False)] >= 4 and cache[("jinja2", True)] >= 2
    assert cache[("liquid", False)] == 1 and cache[("liquid", True)] == 2
    durations = {(p["attributes"][attr.OPERATION], p["attributes"].get(attr.TEMPLATE_NAME),
                  p["attributes"][attr.LABEL_OUTCOME])
                 for p in points if p["name"] == attr.METRIC_OPERATION_DURATION}
    assert (attr.OP_PERSONALIZE, "emails/newsletter.html", attr.OUTCOME_OK) in durations
    assert (attr.OP_PERSONALIZE, "emails/newsletter.html", attr.OUTCOME_ERROR) in durations
    assert (attr.OP_TEMPLATE_LOAD, "emails/newsletter.html", attr.OUTCOME_OK) in durations
    assert (attr.OP_PERSONALIZE, "subject.liquid", attr.OUTCOME_OK) in durations


def test_disabling_mailscope_templates_leaves_upstream_jinja2_spans(tmp_path):
    script = _write_app(tmp_path)
    traces = tmp_path / "traces.jsonl"
    env = base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        MAILSCOPE_TRACES_FILE=traces,
        OTEL_METRICS_EXPORTER="none",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="mailscope_templates",
    )
    result = run_instrumented(script, env, tmp_path / "subscribers.json")
    assert result.returncode == 0, result.stderr
    names = {s["name"] for s in read_spans(str(traces))}
    assert {"jinja2.render", "jinja2.load", "jinja2.compile"} <= names
    assert attr.SPAN_TEMPLATE_LOAD not in names

"""Emails versus web pages in real web apps: Django and Flask served by gunicorn under the launcher.

Each app renders a page and, in the same request, renders an email from a
template and sends it over SMTP (aiosmtpd on loopback). opentelemetry-instrument
loads the upstream Django, Flask and WSGI instrumentations, which start a SERVER
span per request. With MAILSCOPE_TEMPLATES unset, inside that request only the
email-ish templates (`emails/...`, `registration/password_reset_email.html`)
are `email.template.load`/`email.personalize` spans; the pages are not. The
page rendered once when the worker boots, outside any request, still is one,
as in workers and scripts. Checked in the exported OTLP JSON, and the pages the
client received are exactly what the apps rendered.
"""

from __future__ import annotations

import json
import urllib.request

from mailscope import attributes as attr
from tests.support.launcher import file_export_env
from tests.support.smtp_server import SMTPTestServer
from tests.support.wsgi_server import serve_wsgi, wait_for_spans

RECIPIENT = "kim.lee@clients.example.org"
SENDER = "shop@store.example.com"

DJANGO_FILES = {
    "websettings.py": '''
import os
SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "weburls"
USE_TZ = True
INSTALLED_APPS = []
MIDDLEWARE = []
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
              "DIRS": [os.path.join(os.path.dirname(__file__), "templates")]}]
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["TEST_SMTP_PORT"])
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ["TEST_SENDER"]
''',
    "weburls.py": '''
from django.urls import path
import webviews
urlpatterns = [path("signup", webviews.signup), path("reset", webviews.reset)]
''',
    "webviews.py": '''
import os
from django.core.mail import send_mail
from django.shortcuts import render
from django.template.loader import render_to_string

def signup(request):
    body = render_to_string("emails/welcome.html", {"name": "Kim", "plan": "gold"})
    send_mail("Welcome", body, None, [os.environ["TEST_RECIPIENT"]])
    return render(request, "pages/signup.html", {"name": "Kim"})

def reset(request):
    body = render_to_string("registration/password_reset_email.html", {"name": "Kim", "link": "https://x/r/1"})
    send_mail("Reset", body, None, [os.environ["TEST_RECIPIENT"]])
    return render(request, "pages/reset_done.html", {})
''',
    "webwsgi.py": '''
from django.core.wsgi import get_wsgi_application
from django.template.loader import render_to_string
application = get_wsgi_application()
render_to_string("pages/signup.html", {"name": "boot"})  # outside any request: a script-like render
''',
    "templates/pages/layout.html": "<html><body>{% block content %}{% endblock %}{% include 'pages/footer.html' %}</body></html>",
    "templates/pages/footer.html": "<footer>Shop</footer>",
    "templates/pages/signup.html": "{% extends 'pages/layout.html' %}{% block content %}<h1>Welcome {{ name }}</h1>{% endblock %}",
    "templates/pages/reset_done.html": "{% extends 'pages/layout.html' %}{% block content %}Check your inbox{% endblock %}",
    "templates/emails/welcome.html": "Hello {{ name }}, your {{ plan }} plan starts today. {{ coupon }}",
    "templates/registration/password_reset_email.html": "Hi {{ name }}, reset here: {{ link }}",
}

FLASK_FILES = {
    "flaskapp.py": '''
import os, smtplib
from email.message import EmailMessage
from flask import Flask, render_template

app = Flask(__name__)

@app.route("/signup")
def signup():
    body = render_template("emails/welcome.html", name="Kim", plan="gold")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = os.environ["TEST_SENDER"], os.environ["TEST_RECIPIENT"], "Welcome"
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", int(os.environ["TEST_SMTP_PORT"]), timeout=10) as client:
        client.send_message(message)
    return render_template("pages/signup.html", name="Kim")

with app.app_context():
    render_template("pages/signup.html", name="boot")  # outside any request: a script-like render
''',
    "templates/pages/layout.html": "<html><body>{% block content %}{% endblock %}{% include 'pages/footer.html' %}</body></html>",
    "templates/pages/footer.html": "<footer>Shop</footer>",
    "templates/pages/signup.html": "{% extends 'pages/layout.html' %}{% block content %}<h1>Welcome {{ name }}</h1>{% endblock %}",
    "templates/emails/welcome.html": "Hello {{ name }}, your {{ plan }} plan starts today. {{ coupon }}",
}


def write_app(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))


def run_app(tmp_path, files, target, paths, **env_extra):
    app_dir = tmp_path / "app"
    write_app(app_dir, files)
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    with SMTPTestServer() as smtp:
        # metrics on, as users run it: the master's collection thread reads mailscope's counters under
        # their locks around the fork (mailscope.locks unlocks them in the worker)
        env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none", TEST_SMTP_PORT=smtp.port,
                              TEST_SENDER=SENDER, TEST_RECIPIENT=RECIPIENT, **env_extra)
        pages = {}
        with serve_wsgi(app_dir, target, env) as served:
            for path in paths:
                with urllib.request.urlopen(served.base + path, timeout=30) as response:
                    pages[path] = response.read().decode()
            # every send and every request's SERVER span: the request span ends after its send, when
            # the response has gone out, and can reach the file in a later batch
            spans = wait_for_spans(traces, lambda s: sum(x["name"] == attr.SPAN_SEND for x in s) >= len(paths)
                                   and all(server_spans(s, path.strip("/")) for path in paths))
        delivered = len(smtp.handler.messages)
    assert delivered == len(paths)
    assert traces.exists(), served.output
    assert RECIPIENT.encode() not in traces.read_bytes()
    return pages, spans


def server_spans(spans, route):
    return [s for s in spans if s["kind"] == "SERVER" and route in s["name"]]


def request_spans(spans, route):
    server = server_spans(spans, route)
    assert len(server) == 1, [(s["name"], s["kind"]) for s in spans]
    trace_id = server[0]["trace_id"]
    return server[0], [s for s in spans if s["trace_id"] == trace_id]


def template_spans(spans, name):
    return [s["attributes"][attr.TEMPLATE_NAME] for s in spans if s["name"] == name]


def test_django_app_pages_are_not_emails_but_its_mail_templates_are(tmp_path):
    pages, spans = run_app(tmp_path, DJANGO_FILES, "webwsgi:application", ["/signup", "/reset"],
                           DJANGO_SETTINGS_MODULE="websettings")
    assert pages == {"/signup": "<html><body><h1>Welcome Kim</h1><footer>Shop</footer></body></html>",
                     "/reset": "<html><body>Check your inbox<footer>Shop</footer></body></html>"}
    for route, email_template in (("signup", "emails/welcome.html"),
                                  ("reset", "registration/password_reset_email.html")):
        server, in_request = request_spans(spans, route)
        assert template_spans(in_request, attr.SPAN_PERSONALIZE) == [email_template]
        assert template_spans(in_request, attr.SPAN_TEMPLATE_LOAD) == [email_template]
        assert not [s for s in in_request if s["attributes"].get(attr.TEMPLATE_NAME, "").startswith("pages/")]
        personalize = next(s for s in in_request if s["name"] == attr.SPAN_PERSONALIZE)
        assert personalize["attributes"][attr.TEMPLATE_ENGINE] == "django"
        sends = [s for s in in_request if s["name"] == attr.SPAN_SEND]
        assert len(sends) == 1 and sends[0]["attributes"][attr.RECIPIENTS_COUNT] == 1
    welcome = next(s for s in spans if s["name"] == attr.SPAN_PERSONALIZE
                   and s["attributes"][attr.TEMPLATE_NAME] == "emails/welcome.html")
    assert list(welcome["attributes"][attr.PERSONALIZATION_MISSING_NAMES]) == ["coupon"]
    # the render at worker boot, outside any request, is traced as before
    boot = [s for s in spans if s["name"] == attr.SPAN_PERSONALIZE and s["attributes"][attr.TEMPLATE_NAME] == "pages/signup.html"]
    assert len(boot) == 1 and not any(s["kind"] == "SERVER" and s["trace_id"] == boot[0]["trace_id"] for s in spans)


def test_flask_app_pages_are_not_emails_but_its_mail_templates_are(tmp_path):
    pages, spans = run_app(tmp_path, FLASK_FILES, "flaskapp:app", ["/signup"])
    assert pages == {"/signup": "<html><body><h1>Welcome Kim</h1><footer>Shop</footer></body></html>"}
    server, in_request = request_spans(spans, "signup")
    assert template_spans(in_request, attr.SPAN_PERSONALIZE) == ["emails/welcome.html"]
    assert template_spans(in_request, attr.SPAN_TEMPLATE_LOAD) == ["emails/welcome.html"]
    assert [s["attributes"][attr.TEMPLATE_ENGINE] for s in in_request if s["name"] == attr.SPAN_PERSONALIZE] == ["jinja2"]
    assert len([s for s in in_request if s["name"] == attr.SPAN_SEND]) == 1
    boot = [s for s in spans if s["name"] == attr.SPAN_PERSONALIZE and s["attributes"][attr.TEMPLATE_NAME] == "pages/signup.html"]
    assert len(boot) == 1


def test_mailscope_templates_set_decides_inside_requests_too(tmp_path):
    pages, spans = run_app(tmp_path, FLASK_FILES, "flaskapp:app", ["/signup"], MAILSCOPE_TEMPLATES="pages/*")
    server, in_request = request_spans(spans, "signup")
    assert sorted(template_spans(in_request, attr.SPAN_PERSONALIZE)) == ["pages/signup.html"]

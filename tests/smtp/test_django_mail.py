"""django.core.mail with Django's SMTP backend, under the real `opentelemetry-instrument` launcher.

A real Django settings module (EMAIL_BACKEND = the SMTP backend, AUTH on) and
an aiosmtpd server on loopback. Django's backend opens an `smtplib.SMTP`
connection and calls its `login` and `sendmail`: the app prints the class it
got, and the same message sent with plain smtplib in the same process gives a
send span with the same attributes, so Django mail is covered by the smtplib
instrumentation itself, with no Django-specific code: one `smtp.connect` per
connection (send_mass_mail shares one) and one `email.send` per message.
"""

import json

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import file_export_env, run_instrumented, write_script
from tests.support.smtp_server import Behaviour, SMTPTestServer

A = {
    "SENDER": "billing@store.example.com",
    "OK_1": "kim.lee@clients.example.org",
    "OK_2": "lou@clients.example.org",
    "CC": "audit.copy@archive.example.net",
    "BCC": "hidden.copy@archive.example.net",
    "GONE": "mallory@nowhere.example.net",
}

SETTINGS = '''
import json, os
SECRET_KEY = "test-only"
USE_TZ = True
INSTALLED_APPS = []
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["TEST_SMTP_PORT"])
EMAIL_HOST_USER = "django-app"
EMAIL_HOST_PASSWORD = "right-password"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = json.loads(os.environ["TEST_ADDRESSES"])["SENDER"]
'''

APP = r'''
import json, os, smtplib

import django
django.setup()
from django.conf import settings
from django.core.mail import EmailMessage, get_connection, send_mail, send_mass_mail

A = json.loads(os.environ["TEST_ADDRESSES"])
seen = {}


def attempt(label, fn):
    try:
        seen[label] = fn()
    except Exception as exc:
        seen[label] = type(exc).__name__


attempt("send_mail", lambda: send_mail("Welcome", "Hello there", None, [A["OK_1"], A["OK_2"]]))
attempt("message", lambda: EmailMessage(
    "Invoice", "Attached", A["SENDER"], [A["OK_1"]], cc=[A["CC"]], bcc=[A["BCC"]],
    headers={"Message-ID": "<invoice-1@store.example.com>", "X-Campaign-ID": "dj-invoice"}).send())
attempt("mass", lambda: send_mass_mail([("A", "a", None, [A["OK_1"]]), ("B", "b", None, [A["OK_2"]]),
                                        ("C", "c", None, [A["GONE"]])]))


def plain_smtplib():  # the send_mail message, sent by hand
    data = EmailMessage("Welcome", "Hello there", A["SENDER"], [A["OK_1"], A["OK_2"]]).message().as_bytes(linesep="\r\n")
    with smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=10) as client:
        client.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
        client.sendmail(A["SENDER"], [A["OK_1"], A["OK_2"]], data)
    return 1


attempt("smtplib", plain_smtplib)
connection = get_connection()
connection.open()
seen["connection class"] = type(connection.connection).__module__ + "." + type(connection.connection).__qualname__
connection.close()
print("SEEN " + json.dumps(seen))
'''


def test_django_mail_is_smtplib_underneath(tmp_path):
    server = SMTPTestServer(Behaviour(refuse={A["GONE"]: f"550 5.1.1 <{A['GONE']}>: user unknown"}),
                            users={"django-app": "right-password"}).start()
    try:
        write_script(tmp_path, SETTINGS, "mailsite_settings.py")
        traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
        env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none", DJANGO_SETTINGS_MODULE="mailsite_settings",
                              TEST_SMTP_PORT=server.port, TEST_ADDRESSES=json.dumps(A),
                              PYTHONPATH=f"{tmp_path}:{file_export_env(traces, metrics)['PYTHONPATH']}",
                              MAILSCOPE_HEADER_ATTRIBUTES="X-Campaign-ID=email.campaign.id")
        result = run_instrumented(write_script(tmp_path, APP), env)
        accepted = len(server.handler.messages)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    seen = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("SEEN ")).removeprefix("SEEN "))
    assert seen == {"send_mail": 1, "message": 1, "mass": "SMTPRecipientsRefused", "smtplib": 1,
                    "connection class": "smtplib.SMTP"}
    assert accepted == 1 + 1 + 2 + 1  # the refused third message of send_mass_mail never got DATA

    for where, data in {"traces": traces.read_bytes(), "metrics": metrics.read_bytes(),
                        "output": (result.stdout + result.stderr).encode()}.items():
        for address in A.values():
            assert address.encode() not in data, (where, address)

    spans = sorted(read_spans(str(traces)), key=lambda s: s["start_ns"])
    sends = [s for s in spans if s["name"] == attr.SPAN_SEND]
    connects = [s for s in spans if s["name"] == attr.SPAN_SMTP_CONNECT]
    # send_mail, EmailMessage.send, send_mass_mail (one connection, three messages), plain smtplib, open/close
    assert len(connects) == 5 and len(sends) == 1 + 1 + 3 + 1
    assert [s["attributes"][attr.RECIPIENTS_COUNT] for s in sends] == [2, 3, 1, 1, 1, 2]
    assert [s["status_code"] == "ERROR" for s in sends] == [False, False, False, False, True, False]
    assert all(s["attributes"][attr.PROVIDER] == "smtp" and s["attributes"][attr.SERVER_PORT] > 0 for s in sends)
    assert sends[1]["attributes"]["email.campaign.id"] == "dj-invoice"
    assert attr.MESSAGE_ID_HASH in sends[1]["attributes"]
    assert sends[4]["attributes"][attr.RECIPIENTS_REFUSED] == 1
    assert sends[4]["attributes"][attr.ERROR_CATEGORY] == "recipient"

    # Django's send_mail and the same message through plain smtplib: the same span, attribute for attribute
    varying = {attr.MESSAGE_BYTES, attr.MESSAGE_ID_HASH, "mailscope.memory.rss_delta_bytes", "mailscope.memory.rss_bytes"}
    django_send, plain_send = sends[0], sends[5]
    assert {k: v for k, v in django_send["attributes"].items() if k not in varying} == \
           {k: v for k, v in plain_send["attributes"].items() if k not in varying}
    assert set(django_send["attributes"]) == set(plain_send["attributes"])
    assert {k: v for k, v in connects[0]["attributes"].items() if k not in varying} == \
           {k: v for k, v in connects[3]["attributes"].items() if k not in varying}

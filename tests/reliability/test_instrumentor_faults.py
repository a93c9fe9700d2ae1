"""An instrumentor of mailscope that fails to instrument leaves every other instrumentation loaded.

The launcher loads instrumentors in one loop, and one that raises ends it: every
instrumentor after it, mailscope's or another library's, would never load. Each
case makes one of mailscope's instrumentors raise inside `_instrument`, through
the launcher's own `opentelemetry_pre_instrument` entry point (a distribution
made for the test, on PYTHONPATH), then runs an app that renders a Jinja2
template, pushes and pops a Redis queue and sends through smtplib.
"""

from __future__ import annotations

import re

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import REPO, base_env, run_instrumented, write_script

INJECT = r'''
import importlib, os

def inject():
    module_name, _, class_name = os.environ["FAULT_INSTRUMENTOR"].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)

    def broken(self, **kwargs):
        raise RuntimeError("injected fault in " + class_name)

    cls._instrument = broken
'''

APP = r'''
import smtplib, sys
from email.message import EmailMessage
import jinja2, redis

smtp_port, redis_url = int(sys.argv[1]), sys.argv[2]
body = jinja2.Environment(loader=jinja2.DictLoader({"t.html": "Hi {{ n }}"})).get_template("t.html").render(n=1)
r = redis.Redis.from_url(redis_url)
r.lpush("email_queue", body)
r.brpop("email_queue", timeout=5)
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = "news@shop.example", "ann@example.com", "x"
msg.set_content(body)
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
    smtp.send_message(msg)
print("app done", body)
'''

FAMILIES = {  # instrumentor -> a span name only it makes
    "mailscope.instrumentation.templates:TemplateInstrumentor": attr.SPAN_PERSONALIZE,
    "mailscope.instrumentation.smtp:SMTPInstrumentor": attr.SPAN_SEND,
    "mailscope.instrumentation.queue:QueueInstrumentor": "send email_queue",
}
OTHERS = ["mailscope.instrumentation.operations:OperationsInstrumentor",
          "mailscope.instrumentation.providers:ProviderInstrumentor"]


def _fault_distribution(tmp_path):
    """A distribution on PYTHONPATH whose pre-instrument hook breaks one instrumentor."""
    site = tmp_path / "site"
    info = site / "faultinject-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: faultinject\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[opentelemetry_pre_instrument]\ninject = faultinject:inject\n")
    (site / "faultinject.py").write_text(INJECT)
    return site


@pytest.mark.parametrize("fault", list(FAMILIES) + OTHERS, ids=lambda f: f.rpartition(":")[2])
def test_one_failing_instrumentor_leaves_the_others_and_the_app_running(tmp_path, redis_url, smtp_port, fault):
    traces = tmp_path / "traces.jsonl"
    env = base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
        OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        FAULT_INSTRUMENTOR=fault, PYTHONPATH=f"{_fault_distribution(tmp_path)}:{REPO}",
    )
    result = run_instrumented(write_script(tmp_path, APP), env, smtp_port, redis_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "app done Hi 1" in result.stdout
    assert "Failed to auto initialize" not in result.stderr, result.stderr[-3000:]
    class_name = fault.rpartition(":")[2]
    logged = re.findall(r"mailscope: internal error in instrumenting with (\w+)", result.stderr)
    assert logged == [class_name], result.stderr[-3000:]

    names = {s["name"] for s in read_spans(str(traces))}
    for family, span_name in FAMILIES.items():
        assert (span_name in names) == (family != fault), (family, sorted(names))
    assert {"LPUSH", "BRPOP"} <= names  # upstream redis instrumentation, whatever order it loads in

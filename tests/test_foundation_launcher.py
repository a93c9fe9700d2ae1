"""The foundation end to end: a small app under the real `opentelemetry-instrument` launcher."""

import json
import time
import urllib.request

import pytest

from mailscope import attributes as attr
from mailscope.config import VARIABLES
from mailscope.exporters.otlp_file import SpanReader, read_spans
from tests.support.launcher import base_env, free_port, popen_instrumented, run_instrumented, write_script
from tests.support.otlp_receiver import GrpcReceiver, HttpReceiver

# The app never imports mailscope: it is what a team already runs.
APP = """
import sys
from opentelemetry import trace

tracer = trace.get_tracer("shop.app")
with tracer.start_as_current_span("handle-order") as root:
    with tracer.start_as_current_span("email.send", attributes={"mailscope.operation": "send", "email.provider": "smtp"}):
        pass
    try:
        with tracer.start_as_current_span("charge-card"):
            raise KeyError("card declined")
    except KeyError:
        pass
# one write: print("app-result", x) writes its parts separately, and an exporter writing to stdout from
# its own thread (the bad-config test sends traces there) can land between them
sys.stdout.write(f"app-result {sum(range(10))}\\n")
"""


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request):
    recv = (GrpcReceiver if request.param == "grpc" else HttpReceiver)().start()
    recv.protocol = request.param
    yield recv
    recv.stop()


def test_spans_and_metrics_arrive_over_otlp(tmp_path, receiver):
    env = base_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=receiver.protocol,
        OTEL_SERVICE_NAME="orders",
    )
    result = run_instrumented(write_script(tmp_path, APP), env)
    assert result.returncode == 0, result.stderr
    assert "app-result 45" in result.stdout

    store = receiver.store
    assert store.wait_for(lambda s: len(s.spans) >= 3), store.spans
    spans = {s["name"]: s for s in store.spans}
    assert set(spans) >= {"handle-order", "email.send", "charge-card"}
    resource = spans["handle-order"]["resource"]
    assert resource["service.name"] == "orders"
    assert resource[attr.DISTRO_NAME] == "mailscope"
    from mailscope.version import __version__

    assert resource[attr.DISTRO_VERSION] == __version__
    # The error_type stage ran on another instrumentation's failed span: the SDK
    # recorded only an exception event, the exported copy carries error.type.
    failed = spans["charge-card"]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"][attr.ERROR_TYPE] == "KeyError"
    assert attr.ERROR_TYPE not in spans["handle-order"]["attributes"]
    # Metrics arrive, including the duration the operation_metrics stage recorded.
    assert store.wait_for(lambda s: attr.METRIC_OPERATION_DURATION in s.metric_names), store.metric_names


def test_json_file_default_is_parsed_back(tmp_path):
    traces = tmp_path / "out" / "traces.jsonl"
    env = base_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="none",
        MAILSCOPE_TRACES_FILE=traces,
    )
    result = run_instrumented(write_script(tmp_path, APP), env)
    assert result.returncode == 0, result.stderr
    assert "app-result 45" in result.stdout
    assert '"resourceSpans"' not in result.stdout  # the file, not stdout
    reader = SpanReader([str(traces)])
    spans = list(reader)
    assert reader.skipped == 0
    by_name = {s["name"]: s for s in spans}
    assert by_name["email.send"]["attributes"][attr.OPERATION] == "send"
    assert by_name["email.send"]["kind"] == "INTERNAL"
    assert by_name["charge-card"]["attributes"][attr.ERROR_TYPE] == "KeyError"
    root = by_name["handle-order"]
    assert by_name["email.send"]["parent_span_id"] == root["span_id"]
    assert by_name["email.send"]["trace_id"] == root["trace_id"]


GARBAGE = {
    "MAILSCOPE_SLOW_THRESHOLDS": "email.*=fast,=",
    "MAILSCOPE_SLOW_BASELINE_FACTOR": "-2",
    "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "lots",
    "MAILSCOPE_MEMORY": "vmstat",
    "MAILSCOPE_MEMORY_SPANS": "email.[*",
    "MAILSCOPE_REDACT": "maybe",
    "MAILSCOPE_ERROR_PATTERNS_MAX": "0",
    "MAILSCOPE_MAX_TRACKED_NAMES": "1e3x",
    "MAILSCOPE_TEMPLATES": ",,",
    "MAILSCOPE_QUEUES": " ",
    "MAILSCOPE_QUEUE_REDIS_URL": "http://localhost:6379",
    "MAILSCOPE_QUEUE_ENVELOPE": "xml",
    "MAILSCOPE_OPERATIONS": "deliver=app:send",
    "MAILSCOPE_HEADER_ATTRIBUTES": "X Campaign=campaign id",
    "MAILSCOPE_TRACES_FILE": "   ",
    "MAILSCOPE_METRICS_FILE": "",
    "MAILSCOPE_LOGS_FILE": "\t",
    "MAILSCOPE_PROVIDER_ENDPOINTS": "postal=api.postal.example/send",  # not a provider mailscope reads
    "MAILSCOPE_DELIVERY_TRACKING": "yes",
    "MAILSCOPE_WEBHOOK_SENDGRID_PUBLIC_KEY": "not-a-key",
    "MAILSCOPE_WEBHOOK_SES_TOPIC_ARNS": "arn:aws:sns:[",
    "MAILSCOPE_WEBHOOK_SES_CERT_ORIGINS": "sns.us-east-1.amazonaws.com",
    "MAILSCOPE_DELIVERY_RELAYS": "smtp.relay.example=postal",
}
# Secrets are taken as given and never warned about: a warning would print them. A wrong one
# shows when the receiver refuses the provider's requests.
SECRETS = {
    "MAILSCOPE_WEBHOOK_MAILGUN_SIGNING_KEY": "garbage-mailgun-key-1234",
    "MAILSCOPE_WEBHOOK_POSTMARK_CREDENTIALS": "garbage-postmark-credentials",
}


def test_every_variable_is_covered_by_the_garbage_table():
    assert set(GARBAGE) | set(SECRETS) == {v.env for v in VARIABLES}
    assert not set(GARBAGE) & set(SECRETS)


def test_bad_config_warns_once_per_variable_and_the_app_still_exports(tmp_path):
    traces = tmp_path / "traces.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", OTEL_METRICS_EXPORTER="none", **GARBAGE, **SECRETS)
    # The traces-file variable is garbage too, so point the exporter at the file by
    # other means: run from tmp_path and let stdout carry the JSON lines.
    result = run_instrumented(write_script(tmp_path, APP), env)
    assert result.returncode == 0, result.stderr
    assert "app-result 45" in result.stdout
    for variable, value in GARBAGE.items():
        lines = [line for line in result.stderr.splitlines() if f"ignoring {variable}=" in line]
        assert len(lines) == 1, (variable, result.stderr)
        assert repr(value) in lines[0] and "using the default" in lines[0]
    for variable, value in SECRETS.items():
        assert variable not in result.stderr and value not in result.stderr + result.stdout
    # and the spans were still exported (to stdout, the default destination)
    exported = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"resourceSpans"')]
    traces.write_text("\n".join(json.dumps(d) for d in exported))
    assert {s["name"] for s in read_spans(str(traces))} >= {"handle-order", "email.send", "charge-card"}


SLOW_APP = """
import time
from opentelemetry import trace

tracer = trace.get_tracer("shop.app")
total = 0
for i in range(200):
    with tracer.start_as_current_span("work"):
        total += sum(range(2000))
print("total", total)
"""


def test_closed_collector_port_does_not_hold_the_app(tmp_path):
    script = write_script(tmp_path, SLOW_APP)
    started = time.monotonic()
    plain = run_instrumented(script, base_env(), instrument=False)
    plain_wall = time.monotonic() - started
    assert plain.returncode == 0

    export_timeout_s = 2
    env = base_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_EXPORTER_OTLP_TIMEOUT=export_timeout_s,
    )
    started = time.monotonic()
    result = run_instrumented(script, env)
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout
    # A hang detector with a wide margin, not a performance measurement: the
    # launcher's own start-up is part of both sides' tolerance.
    assert wall < 2 * plain_wall + export_timeout_s * 2 + 5, (wall, plain_wall)


PROM_APP = """
import os, sys, time
from opentelemetry import trace

tracer = trace.get_tracer("shop.app")
with tracer.start_as_current_span("email.personalize", attributes={"mailscope.operation": "personalize", "email.template.name": "welcome.html"}):
    pass
open(sys.argv[1], "w").write("ready")
deadline = time.time() + 30
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.05)
"""


def test_prometheus_endpoint_serves_operation_metrics(tmp_path):
    port = free_port()
    ready, done = tmp_path / "ready", tmp_path / "done"
    env = base_env(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_PORT=port,
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
    )
    proc = popen_instrumented(write_script(tmp_path, PROM_APP), env, ready, done)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), "app did not start"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        done.write_text("x")
        proc.wait(timeout=30)
    assert proc.returncode == 0
    lines = [line for line in body.splitlines() if line.startswith("mailscope_operation_duration_seconds_count")]
    assert lines, body[:2000]
    assert 'mailscope_operation="personalize"' in lines[0]
    assert 'email_template_name="welcome.html"' in lines[0]
    assert 'outcome="ok"' in lines[0]

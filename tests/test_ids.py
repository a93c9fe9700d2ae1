"""Telemetry leaves the app's random numbers alone, and ids stay unique across forks.

The SDK's default id generator draws from the global `random` module, so every
span would change what an app that seeded `random` draws next. Each test runs a
real app under the real launcher (or `mailscope.configure()`) with Jinja2
renders, smtplib sends to aiosmtpd and Redis queue hops between its draws.
"""

from __future__ import annotations

import json

import pytest

from mailscope.exporters.otlp_file import read_spans
from mailscope.ids import PrivateRandomIdGenerator, id_generator_for_sdk
from tests.support.launcher import base_env, file_export_env, run_instrumented, write_script
from tests.support.redis_server import RedisServer
from tests.support.smtp_server import Behaviour, SMTPTestServer

SEEDED_APP = r'''
import json, random, smtplib, sys
from email.message import EmailMessage
import jinja2, redis

if sys.argv[3] == "configure":
    import mailscope
    mailscope.configure(service_name="ids", traces_exporter="otlp_json_file", metrics_exporter="none",
                        traces_file=sys.argv[4])

smtp_port, redis_url = int(sys.argv[1]), sys.argv[2]
env = jinja2.Environment(loader=jinja2.DictLoader({"t.html": "Hi {{ name }}"}))
r = redis.Redis.from_url(redis_url)
random.seed(20261206)
draws = []
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
    for i in range(4):
        draws.append(random.random())
        body = env.get_template("t.html").render(name=f"n{i}")
        r.lpush("email_queue", body)
        draws.append(random.randrange(10**9))
        r.brpop("email_queue", timeout=5)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "news@shop.example", f"r{i}@example.com", "x"
        msg.set_content(body)
        smtp.send_message(msg)
        draws.append(random.choice("abcdefghij"))
print(json.dumps(draws))
'''


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as redis_server, \
            SMTPTestServer(Behaviour(keep_messages=False)) as smtp:
        yield smtp.port, redis_server.url


def run_seeded(tmp_path, servers, *, instrument: bool, mode: str = "launcher", **extra):
    traces = tmp_path / f"traces-{instrument}-{mode}-{len(extra)}.jsonl"
    script = write_script(tmp_path, SEEDED_APP, name="seeded.py")
    env = file_export_env(traces, tmp_path / "metrics.jsonl", **extra)
    smtp_port, redis_url = servers
    result = run_instrumented(script, env, str(smtp_port), redis_url, mode, str(traces), instrument=instrument)
    assert result.returncode == 0, result.stderr
    spans = read_spans(str(traces)) if traces.exists() else []
    return json.loads(result.stdout.splitlines()[-1]), spans


def test_a_seeded_sequence_is_the_same_with_and_without_the_launcher(tmp_path, servers):
    plain, no_spans = run_seeded(tmp_path, servers, instrument=False)
    assert no_spans == []
    instrumented, spans = run_seeded(tmp_path, servers, instrument=True)
    names = {s["name"] for s in spans}
    assert {"email.personalize", "email.send"} <= names and any(n.startswith("send ") for n in names)
    assert instrumented == plain


def test_the_check_sees_the_sdk_default_generator_consume_the_apps_numbers(tmp_path, servers):
    # the control: a user who asks for the SDK's own generator gets its behaviour back, and this
    # same comparison then fails, so the test above can fail
    plain, _ = run_seeded(tmp_path, servers, instrument=False)
    instrumented, spans = run_seeded(tmp_path, servers, instrument=True, OTEL_PYTHON_ID_GENERATOR="random")
    assert spans
    assert instrumented != plain


def test_configure_leaves_the_seeded_sequence_alone_too(tmp_path, servers):
    plain, _ = run_seeded(tmp_path, servers, instrument=False)
    configured, spans = run_seeded(tmp_path, servers, instrument=False, mode="configure")
    assert {"email.personalize", "email.send"} <= {s["name"] for s in spans}
    assert configured == plain


FORKING_APP = r'''
import os, random
from opentelemetry import trace

tracer = trace.get_tracer("forks")
random.seed(7)  # the app seeds; children inherit the state
with tracer.start_as_current_span("parent-before"):
    pass
children = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        for n in range(25):
            with tracer.start_as_current_span(f"child-{i}"):
                pass
        trace.get_tracer_provider().force_flush()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
for n in range(25):
    with tracer.start_as_current_span("parent-after"):
        pass
'''


def test_ids_stay_unique_across_forked_workers(tmp_path):
    traces = tmp_path / "forks.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces,
                   OTEL_METRICS_EXPORTER="none")
    result = run_instrumented(write_script(tmp_path, FORKING_APP), env)
    assert result.returncode == 0, result.stderr
    spans = read_spans(str(traces))
    assert len(spans) == 1 + 4 * 25 + 25
    assert len({s["span_id"] for s in spans}) == len(spans)
    assert len({s["trace_id"] for s in spans}) == len(spans)  # every span here is a root


def test_the_generator_never_touches_the_global_random_state():
    import random

    random.seed(5)
    expected = [random.random() for _ in range(3)]
    random.seed(5)
    gen = PrivateRandomIdGenerator()
    got = []
    for _ in range(3):
        gen.generate_span_id(), gen.generate_trace_id()
        got.append(random.random())
    assert got == expected
    assert gen.is_trace_id_random()


def test_a_generator_the_user_named_is_left_to_the_sdk():
    assert isinstance(id_generator_for_sdk({}), PrivateRandomIdGenerator)
    assert id_generator_for_sdk({"OTEL_PYTHON_ID_GENERATOR": "random"}) is None
    assert id_generator_for_sdk({"OTEL_PYTHON_ID_GENERATOR": "xray"}) is None

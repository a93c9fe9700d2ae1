"""The privacy matrix: one app, known addresses everywhere, every signal through every exporter.

tests/privacy/privacy_app.py runs under the real `opentelemetry-instrument`
against a real redis-server and SMTP server, with traces, metrics and logs all
on, once per (redaction mode, transport):
- `file`: the otlp_json_file exporters (MAILSCOPE_TRACES_FILE/METRICS_FILE/LOGS_FILE);
- `grpc` and `http`: OTLP to a real receiver that keeps the raw request bytes;
- and in every run, the Prometheus endpoint (OTEL_METRICS_EXPORTER=...,prometheus),
  scraped while the app waits.
Every exported byte (and the app's stderr, where mailscope's own lines would go)
is searched for each address raw, URL-encoded, JSON-escaped, quoted-printable,
and its local part with any of those separators.

`domain` and `full` must export none of them. `off` must export each one through
the signals it reaches, which shows the search finds what it is looking for.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import urllib.request

import pytest

from tests.privacy.privacy_app import ADDRESSES, HEADER_ATTRIBUTES, NAMES, RESOURCE_ATTRIBUTES
from tests.support.address_forms import address_forms, leaks
from tests.support.launcher import REPO, base_env, free_port, popen_instrumented
from tests.support.raw_otlp import RawOtlpReceiver
from tests.support.redis_server import RedisServer
from tests.support.smtp_server import Behaviour, SMTPTestServer

APP = REPO / "tests" / "privacy" / "privacy_app.py"
REFUSED = ADDRESSES["smtp.refused"]
# `make test` installs opentelemetry-instrumentation-logging (the `logs` extra's pin) here, outside the
# venv: installed in it, `opentelemetry-instrument` would load it into every other launcher test
LOGGING_INSTRUMENTATION = REPO / "build" / "extra" / "logging"

# where each address must show up when nothing is redacted (mode `off`)
EXPECTED_OFF = {
    "traces": {"queue.key", "queue.second", "header.value", "exception.text", "smtp.refused", "sql.literal", "url.path",
               "url.query", "template.name", "baggage.value", "resource.attr", "span.link", "span.event"},
    "metrics": {"queue.key", "queue.second", "template.name", "app.metric", "resource.attr"},
    "logs": {"log.message", "log.arg", "log.extra", "exception.text", "smtp.refused", "resource.attr"},
    "prometheus": {"queue.key", "queue.second", "template.name", "app.metric", "resource.attr"},
}
# where each display name must show up when nothing is redacted
NAMES_OFF = {"traces": {"exception.text", "header.value"}, "logs": {"log.message", "exception.text"}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    redis = RedisServer(tmp_path_factory.mktemp("redis")).start()
    smtp = SMTPTestServer(Behaviour(refuse={REFUSED: f"550 5.1.1 <{REFUSED}>: no such user"})).start()
    try:
        yield redis, smtp
    finally:
        smtp.stop()
        redis.close()


def _env(mode: str, transport: str, tmp_path, receiver: RawOtlpReceiver, prometheus_port: int,
         log_handler: str = "sdk") -> dict:
    push = "otlp_json_file" if transport == "file" else "otlp"
    env = base_env(
        OTEL_TRACES_EXPORTER=push,
        OTEL_METRICS_EXPORTER=f"{push},prometheus",
        OTEL_LOGS_EXPORTER=push,
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=prometheus_port,
        OTEL_RESOURCE_ATTRIBUTES=RESOURCE_ATTRIBUTES,
        MAILSCOPE_REDACT=mode,
        MAILSCOPE_HEADER_ATTRIBUTES=HEADER_ATTRIBUTES,
        MAILSCOPE_QUEUE_ENVELOPE="json",
        MAILSCOPE_TEMPLATES="*",
    )
    if log_handler == "sdk":  # the SDK's own handler, deprecated since 1.45 but what most setups still use
        env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    else:  # the handler of opentelemetry-instrumentation-logging, which the launcher loads from PYTHONPATH
        env["PYTHONPATH"] = f"{LOGGING_INSTRUMENTATION}{os.pathsep}{env['PYTHONPATH']}"
    if transport == "file":
        env.update(MAILSCOPE_TRACES_FILE=str(tmp_path / "traces.jsonl"), MAILSCOPE_METRICS_FILE=str(tmp_path / "metrics.jsonl"),
                   MAILSCOPE_LOGS_FILE=str(tmp_path / "logs.jsonl"))
    else:
        env.update(OTEL_EXPORTER_OTLP_PROTOCOL="grpc" if transport == "grpc" else "http/protobuf",
                   OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint if transport == "grpc" else receiver.http_endpoint)
    return env


def _scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read()


def _run(mode: str, transport: str, tmp_path, servers, log_handler: str = "sdk") -> dict[str, bytes]:
    """Run the app once; return every exported byte by signal (and the app's stderr)."""
    redis, smtp = servers
    prometheus_port = free_port()
    with RawOtlpReceiver() as receiver:
        env = _env(mode, transport, tmp_path, receiver, prometheus_port, log_handler)
        app = popen_instrumented(APP, env, redis.url, smtp.port, cwd=tmp_path,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready = app.stdout.readline()
            scrapes = [_scrape(prometheus_port), _scrape(prometheus_port)] if ready.strip() == "ready" else []
            out, err = app.communicate("", timeout=120)  # closing stdin lets the app exit and flush
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
        assert ready.strip() == "ready" and app.returncode == 0, (ready, out, err[-4000:])
        if transport == "file":
            exported = {signal: (tmp_path / f"{signal}.jsonl").read_bytes() for signal in ("traces", "metrics", "logs")}
        else:
            exported = {signal: b"\n".join(bodies) for signal, bodies in receiver.requests.items()}
    exported["prometheus"] = b"\n# EOF-SCRAPE\n".join(scrapes)
    exported["stderr"] = err.encode()
    return exported


def _series(scrape: bytes) -> list[str]:
    """The series of one Prometheus scrape: each sample line without its value."""
    return [line.rsplit(" ", 1)[0] for line in scrape.decode().splitlines() if line and not line.startswith("#")]


def _found(blob: bytes) -> set[str]:
    return {place for place, address in ADDRESSES.items() if any(f in blob for f in address_forms(address))}


def _names_found(blob: bytes) -> set[str]:
    """Places whose display name is in `blob`, whole or any one of its words."""
    return {place for place, name in NAMES.items() if any(word.encode() in blob for word in name.split())}


@pytest.mark.parametrize("transport", ["file", "grpc", "http"])
@pytest.mark.parametrize("mode", ["domain", "full", "off"])
def test_no_address_leaves_the_process_in_any_signal(mode, transport, tmp_path, servers):
    exported = _run(mode, transport, tmp_path, servers)
    for signal in EXPECTED_OFF:
        assert exported[signal], f"{transport}: no {signal} were exported"
    if mode == "off":
        for signal, expected in EXPECTED_OFF.items():
            missing = expected - _found(exported[signal])
            assert not missing, f"{transport} {signal}: with redaction off these addresses should be exported: {missing}"
        for signal, expected in NAMES_OFF.items():
            missing = expected - _names_found(exported[signal])
            assert not missing, f"{transport} {signal}: with redaction off these names should be exported: {missing}"
        return
    named = {where: _names_found(blob) for where, blob in exported.items() if _names_found(blob)}
    assert not named, f"{transport}: display names left the process: {named}"
    found = leaks(ADDRESSES.values(), exported)
    if found:  # where, and the bytes around the first hit
        where, _, form = found[0]
        at = exported[where].find(form)
        context = exported[where][max(0, at - 300): at + 200]
        pytest.fail(f"{sorted({(w, a) for w, a, _ in found})}\nfirst in {where}: ...{context!r}...")
    marker = b"<redacted>@example.org" if mode == "domain" else b"<redacted>@<redacted>"
    for signal in EXPECTED_OFF:  # the run is the one meant: addresses reached every signal, masked
        assert marker in exported[signal], f"{transport} {signal}: no redacted address at all"
    # the two queues' series became one (a duplicate series would break the scrape)
    for scrape in exported["prometheus"].split(b"\n# EOF-SCRAPE\n"):
        series = _series(scrape)
        assert len(series) == len(set(series)), sorted(s for s in series if series.count(s) > 1)
        depth = [s for s in series if s.startswith("mailscope_queue_depth{") and "email_queue:" in s]
        assert len(depth) == 1, depth


def _logs_extra_pin() -> str:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["logs"]
    (pin,) = [re.fullmatch(r"opentelemetry-instrumentation-logging==(\S+)", item).group(1) for item in extras]
    return pin


@pytest.mark.parametrize("mode", ["domain", "off"])
def test_logs_through_the_logging_instrumentation_handler_are_redacted(mode, tmp_path, servers):
    """SDK 1.45 deprecates OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED for the handler of
    opentelemetry-instrumentation-logging (`mailscope[logs]`). Its records reach the same log record
    processors, so mailscope redacts them too. Without the SDK's variable only that handler makes log
    records: with redaction off, the addresses in the logs show that it ran."""
    (dist,) = LOGGING_INSTRUMENTATION.glob("opentelemetry_instrumentation_logging-*.dist-info")
    assert dist.name == f"opentelemetry_instrumentation_logging-{_logs_extra_pin()}.dist-info", "stale build/extra"
    exported = _run(mode, "file", tmp_path, servers, log_handler="instrumentation")
    if mode == "off":
        missing = EXPECTED_OFF["logs"] - _found(exported["logs"])
        assert not missing, f"with redaction off these addresses should be in the logs: {missing}"
        return
    found = leaks(ADDRESSES.values(), exported)
    assert not found, sorted({(where, address) for where, address, _ in found})
    assert not _names_found(exported["logs"]), _names_found(exported["logs"])
    assert b"<redacted>@example.org" in exported["logs"]

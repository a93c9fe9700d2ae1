"""`mailscope report --jaeger URL` against a real Jaeger v2 (build/jaeger, memory storage).

The generated trace file is sent to Jaeger's OTLP/HTTP receiver as it is (each
line is an OTLP JSON export request), then the report is made twice, from
Jaeger and from the file, and the two documents must be equal but for the
fields that say where the spans came from.
"""

from __future__ import annotations

import http.server
import json
import math
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from mailscope.report import build_report, build_report_from_jaeger
from mailscope.report.model import Filters
from tests.support.collector import GoService, jaeger_binary
from tests.support.launcher import REPO, base_env, free_port
from tests.support.otlp_gen import START_NS, write_trace_file

JAEGER_YAML = REPO / "otel-config" / "jaeger" / "config.yaml"
SINCE = "2025-12-31T23:00:00Z"  # the generated file starts 2026-01-01T00:00:00Z
UNTIL = "2026-01-02T00:00:00Z"
VOLATILE = ("generated_at", "inputs")


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jaeger")
    otlp_http, query, health = free_port(), free_port(), free_port()
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{otlp_http}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{query}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
        "JAEGER_METRICS_HOST": "127.0.0.1",
        "JAEGER_METRICS_PORT": str(free_port()),
    }
    service = GoService("jaeger", [jaeger_binary(), "--config", JAEGER_YAML], env=env, workdir=tmp,
                        ready_url=f"http://127.0.0.1:{query}/api/services")
    try:
        yield f"http://127.0.0.1:{query}", f"http://127.0.0.1:{otlp_http}/v1/traces"
    finally:
        service.stop()


@pytest.fixture(scope="module")
def loaded(jaeger, tmp_path_factory):
    """A generated file with two services, every line posted to Jaeger; waits until Jaeger has it all."""
    query_url, otlp_url = jaeger
    path = tmp_path_factory.mktemp("traces") / "traces.jsonl"
    written = write_trace_file(path, 4000, seed=21, services=2, error_rate=0.08, spans_per_line=150)
    for line in path.read_text().splitlines():
        request = urllib.request.Request(otlp_url, data=line.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    filters = Filters(since_ns=START_NS - 3600 * 10**9, until_ns=START_NS + 24 * 3600 * 10**9)
    deadline = time.monotonic() + 60
    while True:  # Jaeger's batch processor hands spans to storage a moment later
        report = build_report_from_jaeger(query_url, filters, progress=open("/dev/null", "w"))
        if report["summary"]["spans"] == written["spans"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert report["summary"]["spans"] == written["spans"]
    return path, written


def _stable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in VOLATILE}


def assert_same_report(a: dict, b: dict, where: str = "") -> None:
    """Equal documents, but for the last bits of float sums: Jaeger hands the spans over in another
    order than the file, and a float sum (a total, a mean, a least-squares fit) depends on the order."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (where, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            assert_same_report(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), (where, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_report(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mailscope", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=base_env(), timeout=300)


def test_the_report_from_jaeger_equals_the_report_from_the_file(jaeger, loaded):
    query_url, _ = jaeger
    path, written = loaded
    from_jaeger = run_cli("--jaeger", query_url, "--since", SINCE, "--until", UNTIL, "--json")
    assert from_jaeger.returncode == 0, from_jaeger.stderr
    assert "read from Jaeger" in from_jaeger.stderr  # progress on stderr
    from_file = run_cli(path, "--since", SINCE, "--until", UNTIL, "--json")
    assert from_file.returncode == 0, from_file.stderr
    jaeger_doc, file_doc = json.loads(from_jaeger.stdout), json.loads(from_file.stdout)
    assert jaeger_doc["inputs"]["traces_read"] == written["traces"]
    assert jaeger_doc["summary"]["spans"] == written["spans"] and jaeger_doc["errors"]["total"] > 0
    assert_same_report(_stable(jaeger_doc), _stable(file_doc))


def test_small_pages_split_the_window_and_count_every_trace_once(jaeger, loaded):
    query_url, _ = jaeger
    path, written = loaded
    filters = Filters(since_ns=START_NS - 3600 * 10**9, until_ns=START_NS + 24 * 3600 * 10**9)
    paged = build_report_from_jaeger(query_url, filters, progress=open("/dev/null", "w"), page_traces=40)
    assert paged["inputs"]["requests"] > written["traces"] // 40  # the window was split many times
    assert paged["inputs"]["traces_read"] == written["traces"]
    assert_same_report(_stable(paged), _stable(build_report([str(path)], filters)))


def test_filters_apply_as_they_do_to_files(jaeger, loaded):
    query_url, _ = jaeger
    path, _ = loaded
    service = "newsletter-worker-1"
    args = ("--service", service, "--since", "2026-01-01T00:00:30Z", "--until", "2026-01-01T00:01:30Z",
            "--operation", "email.*")
    from_jaeger = run_cli("--jaeger", query_url, *args, "--json")
    from_file = run_cli(path, *args, "--json")
    assert from_jaeger.returncode == 0 == from_file.returncode, from_jaeger.stderr + from_file.stderr
    jaeger_doc, file_doc = json.loads(from_jaeger.stdout), json.loads(from_file.stdout)
    assert jaeger_doc["summary"]["services"] == [service] and jaeger_doc["summary"]["spans"] > 0
    assert_same_report(_stable(jaeger_doc), _stable(file_doc))


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        status, body = (500, b"upstream broke") if "fail" in self.path else (200, b"<html>not an API</html>")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def garbage_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unusable_jaeger_gives_one_line_and_a_nonzero_exit(jaeger, garbage_server):
    query_url, _ = jaeger
    cases = {
        "unreachable": (f"http://127.0.0.1:{free_port()}", "cannot reach Jaeger"),
        "http error": (garbage_server + "/fail", "answered HTTP 500"),
        "not json": (garbage_server, "is not JSON"),
        "not the api": (query_url + "/no/such/prefix", "is not JSON (is "),  # Jaeger serves its UI page there
    }
    for case, (url, message) in cases.items():
        result = run_cli("--jaeger", url, "--since", SINCE, "--until", UNTIL)
        assert result.returncode == 1, case
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, (case, result.stderr)

"""Helpers for queue tests that run apps under the launcher: environment and Prometheus scraping."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.launcher import base_env

DEPTH, AGE = "mailscope_queue_depth", "mailscope_queue_oldest_age_seconds"


def queue_env(tmp_path, name, **extra):
    """Launcher environment: traces to `<tmp_path>/<name>.jsonl`, JSON envelope, queues `email_*`."""
    settings = {
        "OTEL_SERVICE_NAME": name,
        "OTEL_TRACES_EXPORTER": "otlp_json_file",
        "MAILSCOPE_TRACES_FILE": tmp_path / f"{name}.jsonl",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "MAILSCOPE_QUEUE_ENVELOPE": "json",
        "MAILSCOPE_QUEUES": "email_*",
    }
    return base_env(**{**settings, **extra})


def scrape(port: int) -> dict:
    """{(metric name, destination): value} from an app's Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            destination = sample.labels.get("messaging_destination_name")
            if destination is not None:
                values[(sample.name, destination)] = sample.value
    return values


def scrape_until(port: int, predicate, timeout: float = 30.0) -> dict:
    """Scrape until `predicate(values)` holds (or give up after `timeout`); return the last values."""
    deadline = time.monotonic() + timeout
    while True:
        values = scrape(port)
        if predicate(values) or time.monotonic() > deadline:
            return values
        time.sleep(0.1)

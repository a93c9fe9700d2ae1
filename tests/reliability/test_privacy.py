"""No subscriber address leaves the process: the whole demo, 1,000 known addresses, failures included.

`python -m examples.demo --subscribers 1000` runs the newsletter producer and
worker under `opentelemetry-instrument` against a real redis-server and the
demo's SMTP sink, whose refusals quote the recipient (`550 5.1.1 <address>:
...`, `452 4.2.2 <address>: ...`). While it runs, both services' Prometheus
endpoints are scraped repeatedly. Afterwards the 1,000 addresses are read from
the service's own database and searched for - raw, URL-encoded (both forms),
JSON-escaped, and the local part on its own - in the raw bytes of the trace
files, every metrics scrape, the services' logs (mailscope's own log output goes
to their stderr) and the demo's output (which includes `mailscope report`).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import urllib.request

from tests.support.launcher import REPO, free_port
from tests.support.address_forms import address_forms

SUBSCRIBERS = 1000


def test_no_subscriber_address_leaves_the_process(tmp_path):
    out = tmp_path / "out"
    ports = {"producer": free_port(), "worker": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_", "NEWSLETTER_"))}
    # failures that quote addresses on (the demo's defaults), the knobs that only cost time off
    env.update(NEWSLETTER_THROTTLE_PER_SECOND="0", NEWSLETTER_SLOW_SHARE="0", NEWSLETTER_LEAK_KB="0",
               NEWSLETTER_INVALID_SHARE="0.08", NEWSLETTER_FULL_SHARE="0.1")
    scrapes: list[bytes] = []
    done = threading.Event()

    def scrape():
        while not done.is_set():
            for port in ports.values():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                        scrapes.append(response.read())
                except OSError:
                    pass
            done.wait(0.3)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "examples.demo", "--subscribers", str(SUBSCRIBERS), "--campaigns", "1",
             "--output", str(out), "--producer-port", str(ports["producer"]), "--worker-port", str(ports["worker"]),
             "--timeout", "240"],
            cwd=str(REPO), env=env, capture_output=True, timeout=300,
        )
    finally:
        done.set()
        scraper.join(5)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

    with sqlite3.connect(out / "data" / "newsletter.db") as db:
        addresses = [row[0] for row in db.execute("SELECT email FROM subscribers")]
    assert len(addresses) == SUBSCRIBERS
    # the search finds these addresses where they legitimately are: the app's own database
    database = (out / "data" / "newsletter.db").read_bytes()
    assert all(any(form in database for form in address_forms(a)) for a in addresses[:50])

    traces = sorted((out / "traces").glob("*.jsonl"))
    logs = sorted((out / "logs").glob("*.log"))
    assert {p.name for p in traces} == {"producer.jsonl", "worker.jsonl"}
    assert {"producer.log", "worker.log"} <= {p.name for p in logs}
    # the run is the one meant: refusals quoting addresses happened, and were exported as spans
    worker_spans = (out / "traces" / "worker.jsonl").read_bytes()
    assert b"5.1.1" in worker_spans and b"mailscope.error.fingerprint" in worker_spans
    assert sum(b"mailscope_operation_duration_seconds" in s for s in scrapes) >= 2, len(scrapes)

    exported = {p.name: p.read_bytes() for p in traces}
    exported.update({f"scrape {i}": s for i, s in enumerate(scrapes)})
    exported.update({f"logs/{p.name}": p.read_bytes() for p in logs if p.name in ("producer.log", "worker.log")})
    exported["demo output"] = demo.stdout + demo.stderr
    leaks = []
    for address in addresses:
        for form in address_forms(address):
            for where, blob in exported.items():
                if form in blob:
                    leaks.append((where, form))
    assert not leaks, leaks[:20]

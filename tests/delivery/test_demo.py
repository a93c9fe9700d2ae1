"""The demo with delivery feedback: the sink plays a provider that posts signed Mailgun-style
events (delivered, late bounces, complaints) to the `mailscope webhooks serve` the demo starts.

Checked: every delivery span sits under a send span of the worker's trace file, late bounces are
classified as recipient errors, the report shows the DELIVERY section with every event in its
send's trace, and no subscriber address is in any exported byte of the receiver.
"""

import re
import subprocess
import sys
from pathlib import Path

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_spans

REPO = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(rb"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def test_the_demo_shows_delivery_events_in_their_send_traces(tmp_path):
    output = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "examples.demo", "--subscribers", "80", "--output", str(output)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    traces = output / "traces"
    sends = {s["span_id"]: s for s in read_spans(str(traces / "worker.jsonl")) if s["name"] == attr.SPAN_SEND}
    hooks = output / "delivery" / "webhooks.jsonl"  # the receiver's own file, next to the services' traces
    assert sorted(p.name for p in traces.glob("*.jsonl")) == ["producer.jsonl", "worker.jsonl"]
    deliveries = [s for s in read_spans(str(hooks)) if s["name"] == attr.SPAN_DELIVERY]
    assert deliveries
    statuses = {s["attributes"][attr.DELIVERY_STATUS] for s in deliveries}
    assert {"delivered", "bounced"} <= statuses
    for span in deliveries:
        send = sends[span["parent_span_id"]]
        assert span["trace_id"] == send["trace_id"]
        assert span["attributes"][attr.MESSAGE_ID_HASH] == send["attributes"][attr.MESSAGE_ID_HASH]
        if span["attributes"][attr.DELIVERY_STATUS] == "bounced":
            assert span["attributes"][attr.ERROR_CATEGORY] == "recipient"
    line = next(l for l in done.stdout.splitlines() if l.startswith("DELIVERY  "))
    assert line == f"DELIVERY  {len(deliveries)} provider events, {len(deliveries)} in their send's trace"
    assert "accepted -> delivered: p50 " in done.stdout
    assert f"[demo] delivery events (webhooks receiver): {hooks}" in done.stdout
    for exported in (hooks, output / "logs" / "webhooks.log"):
        assert ADDRESS.findall(exported.read_bytes()) == [], exported

"""The newsletter demo service on its own: a plain app, and a sink that answers like a real server.

- examples/newsletter never imports mailscope (it must work, and be instrumented, without it).
- The sink's knobs produce genuine SMTP replies, seen by a plain smtplib client over a real
  connection: unknown recipients 550 5.1.1, full mailboxes 452 4.2.2 (RCPT) and 552 5.2.2 (after
  DATA), throttling 451 4.7.1 then 421 4.7.0 with the connection dropped, slow acceptance.
- The producer and the worker, uninstrumented, against a real redis-server and the sink: every
  queued email reaches exactly one final outcome, transient failures are retried and end in the
  dead-letter list; strict templates turn the missing variable into failed renders.
"""

from __future__ import annotations

import ast
import json
import shutil
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.newsletter import settings as newsletter_settings
from examples.newsletter import sink
from tests.support.launcher import base_env, free_port

REPO = Path(__file__).resolve().parents[1]
SERVICE = REPO / "examples" / "newsletter"


def test_the_demo_service_never_imports_mailscope():
    modules = sorted(SERVICE.glob("*.py"))
    assert {"producer.py", "worker.py", "sink.py", "models.py", "settings.py"} <= {m.name for m in modules}
    for module in modules:
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "mailscope"], module.name


def _addresses_by_fate(settings, count=400):
    """Deterministic addresses the sink treats as unknown, full at RCPT, full at DATA, and fine."""
    fates = {"unknown": [], "full_rcpt": [], "full_data": [], "ok": []}
    low = settings.invalid_share + settings.full_share / 2
    high = settings.invalid_share + settings.full_share
    for i in range(count):
        address = f"reader{i}@mail.example.com"
        f = sink.address_fraction(address)
        fate = "unknown" if f < settings.invalid_share else "full_rcpt" if f < low else "full_data" if f < high else "ok"
        fates[fate].append(address)
    return fates


@pytest.fixture
def knob_sink():
    started = []

    def start(**knobs):
        settings = newsletter_settings.load({k: str(v) for k, v in knobs.items()})
        port = free_port()
        controller, handler = sink.start(settings, "127.0.0.1", port)
        started.append(controller)
        return settings, port, handler

    yield start
    for controller in started:
        controller.stop()


def _message(to: str) -> bytes:
    return f"From: news@shop.example\r\nTo: {to}\r\nSubject: hi\r\n\r\nhello\r\n".encode()


def test_sink_refuses_unknown_recipients_and_full_mailboxes(knob_sink):
    settings, port, handler = knob_sink(NEWSLETTER_INVALID_SHARE=0.2, NEWSLETTER_FULL_SHARE=0.2)
    fates = _addresses_by_fate(settings)
    assert all(len(v) >= 5 for v in fates.values()), {k: len(v) for k, v in fates.items()}
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
            client.sendmail("news@shop.example", [fates["unknown"][0]], _message(fates["unknown"][0]))
        code, text = unknown.value.recipients[fates["unknown"][0]]
        assert code == 550 and text.startswith(b"5.1.1 ")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as full:
            client.sendmail("news@shop.example", [fates["full_rcpt"][0]], _message(fates["full_rcpt"][0]))
        code, text = full.value.recipients[fates["full_rcpt"][0]]
        assert code == 452 and text.startswith(b"4.2.2 ")
        with pytest.raises(smtplib.SMTPDataError) as storage:
            client.sendmail("news@shop.example", [fates["full_data"][0]], _message(fates["full_data"][0]))
        assert storage.value.smtp_code == 552 and storage.value.smtp_error.startswith(b"5.2.2 ")
        # a message to a known and an unknown recipient is delivered to the known one
        refused = client.sendmail(
            "news@shop.example", [fates["ok"][0], fates["unknown"][1]], _message(fates["ok"][0])
        )
        assert list(refused) == [fates["unknown"][1]]
    assert handler.snapshot() == {"550 5.1.1": 2, "452 4.2.2": 1, "552 5.2.2": 1, "delivered": 1}


def test_sink_without_knobs_accepts_everything(knob_sink):
    _, port, handler = knob_sink()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for i in range(20):
            assert client.sendmail("news@shop.example", [f"reader{i}@mail.example.com"], _message("x")) == {}
    assert handler.snapshot() == {"delivered": 20}


def test_sink_throttles_then_drops_a_client_that_keeps_pushing(knob_sink):
    _, port, handler = knob_sink(NEWSLETTER_THROTTLE_PER_SECOND=3)
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    replies = []
    try:
        for i in range(8):  # far faster than 3 a second
            try:
                client.sendmail("news@shop.example", [f"reader{i}@mail.example.com"], _message("x"))
                replies.append(250)
            except smtplib.SMTPSenderRefused as exc:
                replies.append((exc.smtp_code, exc.smtp_error.split(b" ")[0].decode()))
                if exc.smtp_code == 421:
                    break
    finally:
        client.close()
    assert replies[:3] == [250, 250, 250]
    assert (451, "4.7.1") in replies
    assert replies[-1] == (421, "4.7.0")
    assert handler.snapshot()["421 4.7.0"] == 1


def test_sink_is_slow_for_the_configured_share(knob_sink):
    _, port, handler = knob_sink(NEWSLETTER_SLOW_SHARE=0.25, NEWSLETTER_SLOW_MS=50)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for i in range(12):
            client.sendmail("news@shop.example", [f"reader{i}@mail.example.com"], _message("x"))
    assert handler.snapshot() == {"delivered": 12, "slow": 3}


@pytest.fixture
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_producer_and_worker_plain_run_reach_a_final_outcome_for_every_email(tmp_path, redis_url, knob_sink):
    import redis

    knobs = {
        "NEWSLETTER_INVALID_SHARE": "0.1", "NEWSLETTER_FULL_SHARE": "0.2", "NEWSLETTER_MAX_ATTEMPTS": "2",
        "NEWSLETTER_LEAK_KB": "64", "NEWSLETTER_MISSING_VARIABLE": "1", "NEWSLETTER_STRICT_TEMPLATES": "1",
    }
    settings, smtp_port, handler = knob_sink(**knobs)
    env = base_env(
        REDIS_URL=redis_url, SMTP_PORT=smtp_port, NEWSLETTER_DATA_DIR=tmp_path, NEWSLETTER_QUEUE="news:queue", **knobs
    )
    produced = subprocess.run(
        [sys.executable, "-m", "examples.newsletter.producer", "--seed", "40", "--campaigns", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    events = [json.loads(line[7:]) for line in produced.stdout.splitlines() if line.startswith("event: ")]
    queued = next(e for e in events if e["event"] == "campaign_queued")
    # strict templates: premium subscribers' renders fail on the missing referral_code
    assert queued["render_failed"] > 0 and queued["queued"] + queued["render_failed"] == queued["recipients"]
    assert "UndefinedError" in produced.stderr

    worker = subprocess.Popen(
        [sys.executable, "-m", "examples.newsletter.worker"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    outcomes = []
    try:
        deadline = time.monotonic() + 60
        final = 0
        while final < queued["queued"] and time.monotonic() < deadline:
            line = worker.stdout.readline()
            if line.startswith("event: "):
                event = json.loads(line[7:])
                if event["event"] == "message":
                    outcomes.append(event)
                    final += event["outcome"] in ("delivered", "bounced", "gave_up")
    finally:
        worker.terminate()
        worker.wait(20)
    assert worker.returncode == 0
    by_outcome = {o: sum(e["outcome"] == o for e in outcomes) for o in ("delivered", "bounced", "gave_up", "retry")}
    assert by_outcome["delivered"] + by_outcome["bounced"] + by_outcome["gave_up"] == queued["queued"]
    assert by_outcome["delivered"] == handler.snapshot()["delivered"]
    assert by_outcome["bounced"] >= 1 and by_outcome["gave_up"] >= 1
    assert by_outcome["retry"] == by_outcome["gave_up"]  # 452 retried once (2 attempts), then given up
    client = redis.Redis.from_url(redis_url)
    assert client.llen("news:queue") == 0
    dead = [json.loads(raw) for raw in client.lrange("news:queue:dlq", 0, -1)]
    assert len(dead) == by_outcome["gave_up"] and all(job["attempt"] == 2 for job in dead)

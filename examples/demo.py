"""`make demo`: the newsletter service, instrumented, end to end, then the debugging report.

    python -m examples.demo [--subscribers 60] [--campaigns 1] [--output demo-output]

What it does:
1. starts a private redis-server (temp dir, free loopback port, no persistence)
   and the demo's SMTP sink (examples/newsletter/sink.py) with failure knobs on;
2. runs the worker and the producer under `opentelemetry-instrument` with the
   embedded defaults: traces to OTLP JSON files (OTEL_TRACES_EXPORTER=otlp_json_file,
   MAILSCOPE_TRACES_FILE), metrics on a Prometheus endpoint per process
   (OTEL_METRICS_EXPORTER=prometheus), MAILSCOPE_QUEUE_ENVELOPE=json so queue
   wait and producer->worker traces work;
3. triggers the campaigns and shows progress until every message reached a
   final outcome (delivered, bounced, or given up after retries);
4. stops everything it started;
5. prints `mailscope report` for the trace files and says where they are.

Delivery feedback: the worker runs with MAILSCOPE_DELIVERY_TRACKING=on and the sink
as a Mailgun relay (MAILSCOPE_DELIVERY_RELAYS), so each message carries its send's
trace context in X-Mailgun-Variables; the sink then posts signed Mailgun events
(delivered, late bounces, complaints) to `mailscope webhooks serve`, which the demo
starts under opentelemetry-instrument before the sink and stops after it. The
report's DELIVERY section shows them in the traces of their sends.

With `--otlp ENDPOINT` (an agent Collector's OTLP gRPC endpoint, e.g.
http://127.0.0.1:4317), both processes send traces and metrics there instead:
OTEL_TRACES_EXPORTER=otlp and OTEL_METRICS_EXPORTER=otlp, no trace files, no
/metrics endpoints, no report at the end (the traces are in the Collector's
backend). `make stack` and tests/stack run the demo this way.

With `--prometheus URL` (a Prometheus that scrapes --producer-port and
--worker-port), it waits after each campaign until that Prometheus has scraped
both processes, so the numbers of every campaign reach it.

This runner is not part of the service and is not instrumented; the service
(examples/newsletter) never imports mailscope.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUEUE_NAME = "newsletter:email-queue"
SERVICES = ("producer", "worker")
FINAL_OUTCOMES = ("delivered", "bounced", "gave_up")

# The failure knobs `make demo` turns on (any NEWSLETTER_* set in the environment wins).
DEMO_KNOBS = {
    "NEWSLETTER_INVALID_SHARE": "0.05",  # unknown recipients: 550 5.1.1
    "NEWSLETTER_FULL_SHARE": "0.08",  # full mailboxes: 452 4.2.2 / 552 5.2.2
    "NEWSLETTER_THROTTLE_PER_SECOND": "20",  # 451 4.7.1, then 421 4.7.0
    "NEWSLETTER_SLOW_SHARE": "0.1",  # one message in ten...
    "NEWSLETTER_SLOW_MS": "400",  # ...takes the SMTP server 400 ms more
    "NEWSLETTER_MISSING_VARIABLE": "1",  # template v2 refers to referral_code, never supplied
    "NEWSLETTER_LEAK_KB": "512",  # the worker never frees a copy of each sent message
    "NEWSLETTER_MAX_ATTEMPTS": "3",
    "NEWSLETTER_LATE_BOUNCE_SHARE": "0.04",  # accepted, then bounced by the receiving server (a webhook event)
    "NEWSLETTER_COMPLAINT_SHARE": "0.05",  # delivered, then marked as spam (a webhook event)
}

# mailscope settings for the demo: queue wait and producer->worker traces through the JSON
# envelope; the sends the sink slows down cross the send threshold; a blocking BRPOP that waits
# for work (its 1 s timeout) is not slow; the campaign id travels from the message header onto
# send spans; the producer's own per-recipient step (profile and product lookups, then three
# renders) is a `personalize` operation, so the report's journey shows its database time.
DEMO_MAILSCOPE = {
    "MAILSCOPE_OPERATIONS": "personalize=examples.newsletter.content:Personalizer.personalize",
    "MAILSCOPE_QUEUE_ENVELOPE": "json",
    "MAILSCOPE_SLOW_THRESHOLDS": "email.send=250,BRPOP=5000",
    "MAILSCOPE_HEADER_ATTRIBUTES": "X-Campaign-ID=email.campaign.id",
    # the send's trace context travels to the sink, which plays a provider posting event webhooks
    # (Mailgun-style) to `mailscope webhooks serve`: delivery events join the send traces
    "MAILSCOPE_DELIVERY_TRACKING": "on",
}


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoError(RuntimeError):
    pass


class Service:
    """A child process whose `event: {json}` stdout lines are collected; the rest goes to a log."""

    def __init__(self, name: str, cmd: list[str], env: dict, log_path: Path, stdin: bool = False):
        self.name = name
        self.log_path = log_path
        self.events: queue.Queue = queue.Queue()
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=str(ROOT),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("event: "):
                try:
                    self.events.put(json.loads(line[len("event: "):]))
                    continue
                except ValueError:
                    pass
            self._log.write(line)
            self._log.flush()

    def send_line(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float):
        if self.proc.poll() is not None and self.events.empty():
            self._reader.join(1)
            if self.events.empty():
                raise DemoError(f"{self.name} exited with code {self.proc.returncode}; see {self.log_path}")
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, event: str, deadline: float) -> dict:
        while time.monotonic() < deadline:
            item = self.next_event(0.2)
            if item is not None and item.get("event") == event:
                return item
        raise DemoError(f"{self.name} did not report {event!r} in time; see {self.log_path}")

    def stop(self, graceful) -> int:
        try:
            if self.proc.poll() is None:
                try:
                    graceful(self)
                except OSError:  # it already went away (broken pipe)
                    pass
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            self._reader.join(2)
            self._log.close()
        return self.proc.returncode


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("redis-server")
    if not exe:
        raise DemoError("redis-server is not installed (as root, `make demo` installs it; or: apt-get install redis-server)")
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            client.close()
            return proc, port
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise DemoError("redis-server did not start") from None
            time.sleep(0.05)


def child_env(
    name: str, *, redis_port: int, smtp_port: int, metrics_port: int, traces: Path, data: Path, otlp: str | None = None
) -> dict:
    env = dict(os.environ)
    for key, value in DEMO_KNOBS.items():
        env.setdefault(key, value)
    for key, value in DEMO_MAILSCOPE.items():
        env.setdefault(key, value)
    env.update(
        # the embedded defaults: traces to a file, metrics on a Prometheus endpoint
        OTEL_SERVICE_NAME=f"newsletter-{name}",
        OTEL_TRACES_EXPORTER="otlp_json_file",
        MAILSCOPE_TRACES_FILE=str(traces / f"{name}.jsonl"),
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="500",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        NEWSLETTER_QUEUE=QUEUE_NAME,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        NEWSLETTER_DATA_DIR=str(data),
        MAILSCOPE_DELIVERY_RELAYS=f"127.0.0.1:{smtp_port}=mailgun",  # the sink is the provider's relay
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    if otlp:  # the production path: everything over OTLP gRPC to an agent Collector
        for key in ("MAILSCOPE_TRACES_FILE", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"):
            env.pop(key)
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp,
        )
        env.setdefault("OTEL_METRIC_EXPORT_INTERVAL", "2000")
    return env


def start_webhooks(instrument: str, env: dict, logs: Path, deadline: float) -> Service:
    """`mailscope webhooks serve` under opentelemetry-instrument: the delivery-event receiver."""
    port, key = free_port(), secrets.token_hex(16)
    env = dict(env, MAILSCOPE_WEBHOOK_MAILGUN_SIGNING_KEY=key)
    service = Service("webhooks", [instrument, str(BIN / "mailscope"), "webhooks", "serve", "--port", str(port)], env,
                      logs / "webhooks.log")
    service.port, service.key = port, key
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if service.proc.poll() is not None or time.monotonic() > deadline:
                service.stop(lambda s: s.proc.kill())
                raise DemoError(f"the webhooks receiver did not start; see {logs / 'webhooks.log'}") from None
            time.sleep(0.1)
    metrics = env.get("OTEL_EXPORTER_PROMETHEUS_PORT")
    where = f", metrics on http://127.0.0.1:{metrics}/metrics" if metrics else ""
    say(f"webhooks: opentelemetry-instrument mailscope webhooks serve --port {port} (POST /mailgun{where})")
    return service


def scrape_count(port: int) -> int:
    """mailscope samples the process serves on its /metrics endpoint right now (0 if unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode("utf-8", "replace")
    except OSError:
        return 0
    return sum(1 for line in body.splitlines() if line.startswith("mailscope_"))


def wait_for_prometheus(url: str, ports: list[int], after: float, deadline: float) -> bool:
    """Wait until `url` (a Prometheus) has scraped every port at or after unix time `after`."""
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for port in sorted(pending):
            query = urllib.parse.urlencode({"query": f'timestamp(up{{instance="127.0.0.1:{port}"}})'})
            try:
                with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{query}", timeout=5) as response:
                    result = json.load(response)["data"]["result"]
            except (OSError, ValueError, KeyError):
                continue
            if result and float(result[0]["value"][1]) >= after:
                pending.discard(port)
        if pending:
            time.sleep(0.25)
    return not pending


class Progress:
    def __init__(self):
        self.outcomes: Counter = Counter()
        self.codes: Counter = Counter()
        self._last = 0.0

    def add(self, event: dict) -> None:
        self.outcomes[event["outcome"]] += 1
        if event.get("code") and event["outcome"] != "delivered":
            self.codes[f"{event['code']} {event.get('status') or ''}".strip()] += 1

    @property
    def final(self) -> int:
        return sum(self.outcomes[k] for k in FINAL_OUTCOMES)

    def line(self, expected: int) -> str:
        o = self.outcomes
        return (
            f"{self.final}/{expected} messages done: {o['delivered']} delivered, {o['bounced']} bounced, "
            f"{o['gave_up']} given up after retries ({o['retry']} retries)"
        )

    def maybe_show(self, expected: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 1.0:
            self._last = now
            say("  " + self.line(expected))


def print_report(traces: Path, *more: Path) -> None:
    files = sorted(traces.glob("*.jsonl")) + [p for p in more if p.exists()]
    mailscope_cli = BIN / "mailscope"
    if importlib.util.find_spec("mailscope.report") is not None and mailscope_cli.exists():
        say(f"mailscope report {traces}")
        print(flush=True)
        done = subprocess.run([str(mailscope_cli), "report", str(traces), *(str(p) for p in more if p.exists())],
                              text=True, capture_output=True)
        if done.returncode == 0:
            print(done.stdout, end="" if done.stdout.endswith("\n") else "\n", flush=True)
            return
        say(f"mailscope report failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    say("short summary (the full report comes from `mailscope report`):")
    summarize(files)


def summarize(files: list[Path]) -> None:
    """A short fallback summary read straight from the OTLP JSON files."""
    from mailscope.exporters.otlp_file import SpanReader

    names: Counter = Counter()
    errors: Counter = Counter()
    slow: Counter = Counter()
    traces = set()
    for span in SpanReader([str(f) for f in files]):
        names[span["name"]] += 1
        traces.add(span["trace_id"])
        attrs = span["attributes"]
        if span["status_code"] == "ERROR":
            key = attrs.get("mailscope.error.category") or attrs.get("error.type") or "error"
            errors[f"{span['name']}: {key}"] += 1
        if attrs.get("mailscope.slow"):
            slow[span["name"]] += 1
    print(f"  {sum(names.values())} spans in {len(traces)} traces")
    for name, count in names.most_common(12):
        print(f"  {count:6d}  {name}")
    for title, table in (("errors", errors), ("slow spans", slow)):
        if table:
            print(f"  {title}:")
            for key, count in table.most_common(8):
                print(f"  {count:6d}  {key}")


def run(args) -> int:
    started = time.monotonic()
    deadline = started + args.timeout
    output = Path(args.output).resolve()
    traces = output / "traces"
    delivery = output / "delivery"  # the webhooks receiver's traces: its events, in the send traces
    logs = output / "logs"
    data = output / "data"
    for folder in (traces, data, delivery):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in (traces, logs, data, delivery):
        folder.mkdir(parents=True, exist_ok=True)

    from examples.newsletter import settings as newsletter_settings
    from examples.newsletter import sink

    ports = {"producer": args.producer_port or free_port(), "worker": args.worker_port or free_port()}
    instrument = str(BIN / "opentelemetry-instrument")
    stack: list = []  # what to stop, last started first
    progress = Progress()
    expected = 0
    try:
        workdir = Path(tempfile.mkdtemp(prefix="mailscope-demo-redis-"))
        stack.append(("redis temp dir", lambda: shutil.rmtree(workdir, ignore_errors=True)))
        redis_proc, redis_port = start_redis(workdir)
        stack.append(("redis-server", lambda: (redis_proc.terminate(), redis_proc.wait(10))))
        say(f"redis-server on 127.0.0.1:{redis_port} (no persistence)")

        smtp_port = free_port()
        hooks = start_webhooks(instrument, child_env("webhooks", redis_port=redis_port, smtp_port=smtp_port,
                                                     metrics_port=args.webhooks_port or free_port(),
                                                     traces=delivery, data=data, otlp=args.otlp),
                               logs, deadline)
        stop_hooks = lambda: hooks.stop(lambda s: s.proc.send_signal(signal.SIGINT))  # noqa: E731
        env0 = child_env("sink", redis_port=redis_port, smtp_port=smtp_port, metrics_port=0, traces=traces, data=data)
        env0.update(NEWSLETTER_WEBHOOK_URL=f"http://127.0.0.1:{hooks.port}/mailgun", NEWSLETTER_WEBHOOK_KEY=hooks.key)
        controller, handler = sink.start(newsletter_settings.load(env0), "127.0.0.1", smtp_port)
        stack.append(("SMTP sink", lambda: (controller.stop(), stop_hooks())))  # its events' receiver with it
        knobs = ", ".join(f"{k.removeprefix('NEWSLETTER_').lower()}={env0[k]}" for k in DEMO_KNOBS)
        say(f"SMTP sink (aiosmtpd) on 127.0.0.1:{smtp_port}; knobs: {knobs}")

        services = {}
        for name in ("worker", "producer"):
            env = child_env(
                name, redis_port=redis_port, smtp_port=smtp_port, metrics_port=ports[name], traces=traces, data=data,
                otlp=args.otlp,
            )
            module = f"examples.newsletter.{name}"
            extra = ["--stdin", "--seed", str(args.subscribers)] if name == "producer" else []
            services[name] = Service(
                name, [instrument, sys.executable, "-m", module, *extra], env, logs / f"{name}.log", stdin=name == "producer"
            )
            where = (
                f"traces and metrics over OTLP to {args.otlp}" if args.otlp
                else f"metrics on http://127.0.0.1:{ports[name]}/metrics, traces to {traces / (name + '.jsonl')}"
            )
            say(f"{name}: opentelemetry-instrument python -m {module} ({where})")
        producer, worker = services["producer"], services["worker"]
        stack.append(("worker", lambda: worker.stop(lambda s: s.proc.terminate())))
        stack.append(("producer", lambda: producer.stop(lambda s: (s.send_line("quit"), s.proc.stdin.close()))))
        worker.wait_for("ready", deadline)
        producer.wait_for("ready", deadline)

        for number in range(1, args.campaigns + 1):
            producer.send_line("run")
            queued = producer.wait_for("campaign_queued", deadline)
            expected += queued["queued"]
            missing = f", {queued['render_failed']} could not be rendered" if queued["render_failed"] else ""
            say(
                f"campaign {number}: {queued['recipients']} recipients in segment, {queued['queued']} personalized "
                f"and queued in {queued['seconds']:.1f}s{missing}"
            )
            while progress.final < expected:
                if time.monotonic() > deadline:
                    raise DemoError(f"timed out after {args.timeout:.0f}s: {progress.line(expected)}")
                event = worker.next_event(0.2)
                if event is not None and event.get("event") == "message":
                    progress.add(event)
                progress.maybe_show(expected)
            progress.maybe_show(expected, force=True)
            if args.prometheus:
                done_at = time.time()
                if not wait_for_prometheus(args.prometheus, list(ports.values()), done_at, deadline):
                    say(f"warning: {args.prometheus} did not scrape both services in time")

        if not args.otlp:
            served = {name: scrape_count(port) for name, port in ports.items()}
            say("Prometheus endpoints: " + ", ".join(f"{n} serves {c} mailscope_* samples" for n, c in served.items()))
        if handler.events is not None:
            handler.events.flush(max(1.0, deadline - time.monotonic()))
            say("delivery events the sink posted to the receiver: "
                + ", ".join(f"{k}: {v}" for k, v in sorted(handler.events.posted.items())))
        stats = handler.snapshot()
        say(
            "SMTP sink replies: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items(), key=lambda kv: (kv[0] != "delivered", kv[0])))
        )
    except DemoError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        for what, stop in reversed(stack):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                say(f"could not stop {what}: {exc}")
        if stack:
            say(f"stopped {', '.join(what for what, _ in reversed(stack) if what != 'redis temp dir')}")

    for name in SERVICES:
        code = services[name].proc.returncode
        if code not in (0, None):
            say(f"{name} exited with code {code}; see {logs / (name + '.log')}")
            return 1
    say(f"done in {time.monotonic() - started:.1f}s")
    if args.otlp:
        say(f"traces and metrics went over OTLP to {args.otlp} (logs in {logs})")
        return 0
    print(flush=True)
    delivery_traces = delivery / "webhooks.jsonl"
    print_report(traces, delivery_traces)
    print(flush=True)
    say(f"trace files: {', '.join(str(p) for p in sorted(traces.glob('*.jsonl')))}")
    if delivery_traces.exists():
        say(f"delivery events (webhooks receiver): {delivery_traces}")
    more = f" {delivery_traces}" if delivery_traces.exists() else ""
    say(f"again: {BIN / 'mailscope'} report {traces}{more}   (logs in {logs})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=60)
    parser.add_argument("--campaigns", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "demo-output"))
    parser.add_argument("--producer-port", type=int, default=0, help="producer's Prometheus endpoint (0: a free one)")
    parser.add_argument("--worker-port", type=int, default=0, help="worker's Prometheus endpoint (0: a free one)")
    parser.add_argument("--otlp", help="send traces and metrics over OTLP gRPC to this endpoint (an agent Collector)")
    parser.add_argument("--webhooks-port", type=int, default=0,
                        help="the delivery-event receiver's Prometheus endpoint (0: a free one)")
    parser.add_argument("--prometheus", help="URL of a Prometheus scraping both ports: wait for its scrapes")
    parser.add_argument("--timeout", type=float, default=100.0, help="give up after this many seconds")
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:  # everything started was stopped on the way out
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

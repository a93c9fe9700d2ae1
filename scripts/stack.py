"""`make stack`: the production path on this host, without Docker.

Starts Jaeger v2, two gateway Collectors and an agent Collector (build/jaeger and
build/otelcol-mailscope from the shipped configs, tests/support/stack.py), a Prometheus from the
shipped prometheus.yml when the `prometheus` binary is installed, runs the demo through them
(`python -m examples.demo --otlp`), prints where to look, and keeps everything running until
Ctrl-C, then stops all it started.

    python scripts/stack.py [--subscribers 60] [--campaigns 2] [--sampling 25] [--decision-wait 10s]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.jaeger import JaegerQuery  # noqa: E402
from tests.support.prometheus_server import PrometheusServer, prometheus_binary  # noqa: E402
from tests.support.stack import LocalStack  # noqa: E402


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _interrupt(*_args):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=60)
    parser.add_argument("--campaigns", type=int, default=2)
    parser.add_argument("--sampling", type=float, default=25, help="TAIL_SAMPLING_PERCENTAGE of the gateways")
    parser.add_argument("--decision-wait", default="10s", help="TAIL_SAMPLING_DECISION_WAIT of the gateways")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="mailscope-stack-"))
    say(f"logs and configs in {workdir}")
    stack = LocalStack(workdir, sampling_percentage=args.sampling, decision_wait=args.decision_wait)
    prom = None
    try:
        say(f"Jaeger v2 (query API {stack.jaeger_url}), agent (OTLP {stack.agent_otlp}), "
            f"{len(stack.gateways)} gateways: running")
        if prometheus_binary():
            prom = PrometheusServer(workdir / "prometheus", config_text=stack.prometheus_folder(workdir / "prometheus"))
        else:
            say("prometheus is not installed (apt-get install prometheus): no Prometheus")
        started = time.time()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_"))}
        demo = subprocess.run(
            [sys.executable, "-m", "examples.demo", "--subscribers", str(args.subscribers),
             "--campaigns", str(args.campaigns), "--otlp", stack.agent_otlp, "--output", str(workdir / "demo")],
            cwd=ROOT, env=env,
        )
        if demo.returncode != 0:
            say(f"the demo failed (exit {demo.returncode})")
        wait = float(args.decision_wait.rstrip("s")) + 5
        say(f"waiting {wait:.0f}s for the gateways' sampling decisions...")
        time.sleep(wait)
        jaeger = JaegerQuery(stack.jaeger_url)
        errors, slow, total = [], [], set()
        for service in ("newsletter-producer", "newsletter-worker"):
            for span in jaeger.find_spans(service, started - 60, time.time() + 60):
                total.add(span["trace_id"])
                if span["status_code"] == "ERROR":
                    errors.append(span["trace_id"])
                if span["attributes"].get("mailscope.slow") == {"boolValue": True}:
                    slow.append(span["trace_id"])
        say(f"Jaeger kept {len(total)} traces. Query API: {stack.jaeger_url}/api/v3/traces"
            f"?query.service_name=newsletter-worker&query.start_time_min=...&query.start_time_max=..."
            f"&query.num_traces=20 (the UI is a placeholder page in this build)")
        for label, ids in (("with errors", errors), ("with slow spans", slow)):
            for trace_id in list(dict.fromkeys(ids))[:3]:
                say(f"  a trace {label}: {stack.jaeger_url}/api/traces/{trace_id}")
        if prom is not None:
            say(f"Prometheus (gateway exporter, alert rules): {prom.url}")
        say(f"report: {ROOT / '.venv/bin/mailscope'} report --jaeger {stack.jaeger_url} --service newsletter-worker")
        say("running until Ctrl-C")
        signal.signal(signal.SIGTERM, _interrupt)
        while all(s.running() for s in stack.services):
            time.sleep(1)
        say("a service exited; see the logs in " + str(workdir))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if prom is not None:
            prom.stop()
        stack.stop()
        say("stopped Jaeger, the gateways, the agent" + (" and Prometheus" if prom is not None else ""))


if __name__ == "__main__":
    sys.exit(main())

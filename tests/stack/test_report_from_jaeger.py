"""`mailscope report --jaeger` on the stack run equals the report of the agent's file, cut to what Jaeger kept.

The agent's file holds every span the services sent; tail sampling kept a share
of the traces. Restricted to exactly the spans Jaeger holds, the file must give
the same `--json` document as Jaeger's query API, service by service (Jaeger
also holds its own traces). Volatile fields (generation time, where the input
came from) and the last bits of float sums (the spans arrive in another order)
aside.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.report.test_jaeger import assert_same_report
from tests.support.launcher import REPO, base_env

pytestmark = pytest.mark.timeout(600)

SERVICES = ("newsletter-producer", "newsletter-worker")


def _kept_part_of_the_file(stack_run, path) -> int:
    """Write the agent file's spans that Jaeger holds to `path`; return how many."""
    kept = {(trace, span) for trace, spans in stack_run.kept.items() for span in spans}
    written = 0
    with open(stack_run.stack.truth_path, encoding="utf-8") as source, open(path, "w", encoding="utf-8") as out:
        for line in source:
            if not line.strip():
                continue
            doc = json.loads(line)
            for resource_spans in doc.get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    spans = [s for s in scope_spans.get("spans", []) if (s["traceId"].lower(), s["spanId"].lower()) in kept]
                    scope_spans["spans"] = spans
                    written += len(spans)
            out.write(json.dumps(doc) + "\n")
    return written


def _report(*args) -> dict:
    result = subprocess.run([sys.executable, "-m", "mailscope", "report", *map(str, args), "--json"],
                            capture_output=True, text=True, cwd=REPO, env=base_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("service", SERVICES)
def test_the_report_from_jaeger_equals_the_report_of_the_kept_spans(stack_run, tmp_path, service):
    path = tmp_path / "kept.jsonl"
    assert _kept_part_of_the_file(stack_run, path) == sum(len(spans) for spans in stack_run.kept.values())
    window = ("--since", str(int(stack_run.started) - 60), "--until", str(int(time.time()) + 60))
    from_jaeger = _report("--jaeger", stack_run.stack.jaeger_url, "--service", service, *window)
    from_file = _report(path, "--service", service, *window)
    assert from_jaeger["summary"]["spans"] > 100
    if service == "newsletter-worker":
        assert from_jaeger["errors"]["total"] > 0 and from_jaeger["slow"]["total"] > 0  # kept by the policies
    assert from_jaeger["inputs"]["traces_read"] > 0
    volatile = ("generated_at", "inputs")
    assert_same_report({k: v for k, v in from_jaeger.items() if k not in volatile},
                       {k: v for k, v in from_file.items() if k not in volatile})

"""`make demo`: run the example service under opentelemetry-instrument with the embedded defaults."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-output"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    traces = OUT / "traces.jsonl"
    traces.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        OTEL_SERVICE_NAME="mailscope-demo",
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="none",
        MAILSCOPE_TRACES_FILE=str(traces),
    )
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "opentelemetry-instrument"), sys.executable, "-m", "examples.hello_sqlite"]
    print("running:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, env=env, cwd=ROOT, check=True)
    names = {}
    with open(traces, encoding="utf-8") as handle:
        for line in handle:
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        names[span["name"]] = names.get(span["name"], 0) + 1
    print(f"{sum(names.values())} spans exported to {traces}")
    for name, count in sorted(names.items()):
        print(f"  {count:5d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

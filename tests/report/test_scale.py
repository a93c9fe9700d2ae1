"""The report streams: peak memory does not grow with the number of spans.

Peak RSS of the real CLI (a subprocess) on 25k and on 150k spans: holding the
spans would cost hundreds of MB more for the larger file; streaming costs only
the bounded tables. (The 1M-span time and peak RSS are measured by
`python -m benchmarks report`.)
"""

import json
import subprocess
import sys

from tests.support.launcher import REPO, base_env
from tests.support.otlp_gen import write_trace_file

PEAK = """
import resource, sys
from mailscope.cli import main
code = main(["report", "--json", *sys.argv[1:]])
sys.stderr.write("peak_kib=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def peak_rss_kib(path) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, cwd=REPO,
                            env=base_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    peak = int(result.stderr.rsplit("peak_kib=", 1)[1].split()[0])
    return peak, json.loads(result.stdout)


def test_peak_memory_is_flat_in_the_number_of_spans(tmp_path):
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    n_small = write_trace_file(small, 25_000, seed=1)["spans"]
    n_large = write_trace_file(large, 150_000, seed=1)["spans"]
    peak_small, r_small = peak_rss_kib(small)
    peak_large, r_large = peak_rss_kib(large)
    assert r_small["summary"]["spans"] == n_small and r_large["summary"]["spans"] == n_large
    growth_mib = (peak_large - peak_small) / 1024
    # 125k more spans: a list of flattened spans would add several hundred MiB
    assert growth_mib < 25, (peak_small, peak_large)

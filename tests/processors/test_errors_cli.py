"""`mailscope classify` as users run it: a subprocess reading stdin, writing JSON lines."""

import io
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from mailscope.processors.errors import classify, read_messages
from tests.errors_corpus import load_corpus, variants

MAILSCOPE = str(Path(sys.executable).parent / "mailscope")


def corpus_lines(k=2, seed=5):
    rng = random.Random(seed)
    return [v.replace("\n", " ") for row in load_corpus() for v in variants(row, k, rng)]


def run_cli(lines, **env):
    environ = {**os.environ, **env}
    proc = subprocess.run(
        [MAILSCOPE, "classify"], input="\n".join(lines) + "\n", capture_output=True, text=True,
        env=environ, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_cli_writes_one_json_object_per_line_matching_the_api():
    lines = corpus_lines()
    out = run_cli(lines)
    assert len(out) == len(lines)
    for line, got in zip(lines, out):
        assert set(got) == {"category", "retryable", "pattern", "fingerprint"}
        want = classify(line)
        assert (got["category"], got["retryable"], got["pattern"], got["fingerprint"]) == tuple(want[:4][i] for i in (0, 1, 2, 3))
        assert "@" not in got["pattern"]


def test_fingerprints_are_identical_across_processes_and_hash_seeds():
    lines = corpus_lines(k=1, seed=9)
    runs = [run_cli(lines, PYTHONHASHSEED=seed) for seed in ("0", "1", "4242")]
    assert runs[0] == runs[1] == runs[2]
    assert [r["fingerprint"] for r in runs[0]] == [classify(line).fingerprint for line in lines]


def test_cli_streams_in_bounded_memory():
    """100k distinct lines: output arrives while input is still being written, and the
    process does not grow with the number of lines (every cache is bounded)."""
    total = 100_000
    proc = subprocess.Popen(
        [MAILSCOPE, "classify"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1 << 16,
    )
    watched = psutil.Process(proc.pid)
    rss = {}
    written = [0]
    seen_while_writing = [None]

    base = corpus_lines(k=3, seed=2)

    def feed():
        rng = random.Random(1)
        for i in range(total):
            # every line distinct: a fresh address and id, so no cache can hold them all
            proc.stdin.write(f"{base[i % len(base)]} for u{i}@example.org id-{rng.getrandbits(48):x}\n")
            written[0] = i + 1
        proc.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    count = 0
    for line in proc.stdout:
        count += 1
        if count == 1:
            seen_while_writing[0] = written[0] < total
        if count in (20_000, total - 1):
            rss[count] = watched.memory_info().rss
    writer.join()
    assert proc.wait(timeout=60) == 0
    assert count == total
    assert seen_while_writing[0], "no output before all input was written: not streaming"
    growth = rss[total - 1] - rss[20_000]
    assert growth < 10 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB between 20k and 100k lines"


def test_read_messages_bounds_long_lines_and_bad_bytes():
    stream = io.TextIOWrapper(io.BytesIO(b"a" * 100 + b"\nshort\r\n\xff tail"), encoding="utf-8")
    assert list(read_messages(stream, max_chars=10)) == ["a" * 10, "short", "\ufffd tail"]

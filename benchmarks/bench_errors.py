"""Error tagging and redaction: cost per message, accuracy, and grouping against Drain.

Rows (CPU time per op, interleaved repeats):
  classify (warm)      mailscope.processors.errors.classify over a realistic mix: every
                       corpus template (tests/data/send_errors.tsv) filled with fresh
                       addresses, hosts, ids and numbers, shuffled; caches warm. No message
                       is classified twice; the templates without variable parts repeat.
  mask only            the masking pass alone on the same messages.
  classify (cold)      both caches (exact message, and pattern + type) cleared before every
                       message: masking, categorisation and fingerprint of a never-seen pattern.
  drain3               Drain (drain3, number/IP/hex masking) add_log_message on the same mix.
  redact, no address   redact() on typical exported strings without an '@' (the common case).
  redact, addresses    redact() on strings that hold addresses.
  redaction stage      RedactionStage on a clean 10-attribute span draft (nothing to redact).
  redact, blobs        a 10 KB and a 100 KB run of word characters followed by `@`: the scan is
                       anchored on the `@`, so 10x the text costs about 10x, not 100x.
Ratios: classify warm in us per message (goal <= 20), and Drain / classify (informational).
Notes: category / retryable / grouping accuracy on both labelled corpora, grouping on
generated generic logs (mailscope vs Drain), and (full run only) `mailscope classify`
streaming 1M lines: wall time and peak RSS at 100k vs 1M lines.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.harness import CPU_CLOCK, Ratio, Section, interleaved


def _messages(count: int, seed: int = 1):
    from tests.errors_corpus import load_corpus, variants

    rng = random.Random(seed)
    rows = load_corpus()
    out = []
    while len(out) < count:
        for row in rows:
            out.append((variants(row, 1, rng)[0], row.error_type))
    rng.shuffle(out)
    return out[:count]


def _accuracy_notes() -> list[str]:
    from tests.errors_corpus import CORPUS, grouping_accuracy, load_corpus, variants
    from mailscope.processors.errors import classify

    notes = []
    for label, path in (("corpus", CORPUS), ("unseen corpus", CORPUS.with_name("send_errors_unseen.tsv")),
                        ("probe corpus", CORPUS.with_name("send_errors_probe.tsv"))):
        rows = load_corpus(path)
        rng = random.Random(7)
        cat = ret = 0
        truth, pred = [], []
        for row in rows:
            results = [classify(v, row.error_type) for v in variants(row, 6, rng)]
            cat += results[0].category in row.categories
            ret += row.retryable is None or results[0].retryable == row.retryable
            truth += [row.line] * len(results)
            pred += [r.fingerprint for r in results]
        notes.append(
            f"{label} ({len(rows)} templates x 6 variants): category {cat / len(rows):.3f}, "
            f"retryable {ret / len(rows):.3f}, grouping {grouping_accuracy(truth, pred):.3f}"
        )
    return notes


def _generic_notes(lines_per_system: int) -> list[str]:
    from tests.errors_corpus import grouping_accuracy
    from tests.generic_logs import SYSTEMS, UNSEEN_SYSTEMS, drain_clusters, fill
    from mailscope.processors.errors import classify

    notes = []
    for label, systems, seed in (("generic logs (tuned on)", SYSTEMS, 3), ("generic logs (unseen)", UNSEEN_SYSTEMS, 11)):
        rng = random.Random(seed)
        ours, drain = [], []
        for templates in systems.values():
            weights = [rng.uniform(0.2, 3.0) for _ in templates]
            truth, lines = [], []
            for _ in range(lines_per_system):
                index = rng.choices(range(len(templates)), weights)[0]
                truth.append(index)
                lines.append(fill(templates[index], rng))
            ours.append(grouping_accuracy(truth, [classify(line).fingerprint for line in lines]))
            drain.append(grouping_accuracy(truth, drain_clusters(lines)))
        notes.append(
            f"{label}, {len(systems)} systems x {lines_per_system} lines, mean grouping accuracy: "
            f"mailscope {sum(ours) / len(ours):.3f}, Drain {sum(drain) / len(drain):.3f} "
            f"(per system mailscope/Drain: " + ", ".join(f"{o:.2f}/{d:.2f}" for o, d in zip(ours, drain)) + ")"
        )
    return notes


def _stream_note(total: int) -> str:
    """`mailscope classify` on `total` distinct lines: wall time and RSS early vs at the end."""
    import psutil

    base = [m.replace("\n", " ") for m, _ in _messages(2000, seed=3)]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mailscope"), "classify"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1 << 16,
    )
    watched = psutil.Process(proc.pid)

    def feed():
        rng = random.Random(2)
        for i in range(total):
            proc.stdin.write(f"{base[i % len(base)]} u{i}@example.org id-{rng.getrandbits(48):x}\n")
        proc.stdin.close()

    started = time.perf_counter()
    writer = threading.Thread(target=feed)
    writer.start()
    rss_early = rss_late = peak = 0
    count = 0
    for _ in proc.stdout:
        count += 1
        if count % 50_000 == 0:
            rss = watched.memory_info().rss
            peak = max(peak, rss)
            if count == 100_000:
                rss_early = rss
            rss_late = rss
    writer.join()
    proc.wait()
    elapsed = time.perf_counter() - started
    return (
        f"mailscope classify streamed {count:,} distinct lines in {elapsed:.1f} s "
        f"({elapsed / count * 1e6:.1f} us/line incl. JSON and pipes); RSS {rss_early / 1e6:.1f} MB at 100k lines, "
        f"{rss_late / 1e6:.1f} MB at the end, peak sampled {peak / 1e6:.1f} MB"
    )


def run(quick: bool) -> Section:
    from opentelemetry.sdk.trace import ReadableSpan

    from mailscope.processors import errors as errors_module
    from mailscope.processors.draft import SpanDraft
    from mailscope.processors.error_patterns import mask
    from mailscope.processors.errors import classify
    from mailscope.processors.redact import RedactionStage, redact
    from tests.generic_logs import drain_clusters

    ops, repeats = (2000, 3) if quick else (20000, 7)
    mix = _messages(ops)
    # the warm case never sees the same message twice (fresh values), only the same patterns
    fresh = _messages(ops * (repeats + 2), seed=11)
    position = [0]
    plain = ["email.send", "smtp.connect", "newsletter-worker", "127.0.0.1", "jinja2", "welcome.html",
             "process emails:outbound", "GET /track/open", "SELECT id FROM subscribers WHERE list_id = %s"]
    with_addresses = ["550 5.1.1 <jane.doe@example.org>: Recipient address rejected",
                      "{'bob+x@example.com': (452, b'4.2.2 mailbox full')}", "notify jane@example.org"]
    stage = RedactionStage("domain")
    span = ReadableSpan(name="email.send", attributes={f"k{i}": f"value {i}" for i in range(8)} | {"n": 3, "b": True},
                        start_time=1, end_time=2)

    from drain3 import TemplateMiner

    def case_classify(n):
        start = position[0]
        position[0] = (start + n) % (len(fresh) - n)
        for message, kind in fresh[start : start + n]:
            classify(message, kind)

    def case_mask(n):
        for message, _ in mix[:n]:
            mask(message)

    def case_cold(n):
        cache, messages = errors_module._cache, errors_module._messages
        saved = dict(cache), dict(messages)
        for message, kind in mix[:n]:
            cache.clear()
            messages.clear()
            classify(message, kind)
        cache.update(saved[0])  # leave the warm case its warm caches
        messages.update(saved[1])

    miner_holder = {}

    def case_drain(n):
        miner = miner_holder.get("m")
        if miner is None:
            drain_clusters(["warm up"])  # imports
            from drain3.masking import MaskingInstruction
            from drain3.template_miner_config import TemplateMinerConfig

            config = TemplateMinerConfig()
            config.masking_instructions = [
                MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
                MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-fA-F0-9]+)((?=[^A-Za-z0-9])|$)", "HEX"),
                MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
            ]
            config.profiling_enabled = False
            miner = miner_holder["m"] = TemplateMiner(config=config)
        for message, _ in mix[:n]:
            miner.add_log_message(message)

    def case_redact_plain(n):
        for i in range(n):
            redact(plain[i % len(plain)])

    def case_redact_addresses(n):
        for i in range(n):
            redact(with_addresses[i % len(with_addresses)])

    blob_small = "QUJD" * 2_500 + "@x " + "bob@example.org"   # 10 KB
    blob_large = "QUJD" * 25_000 + "@x " + "bob@example.org"  # 100 KB

    def case_blob_small(n):
        for _ in range(n // 10 or 1):
            redact(blob_small)

    def case_blob_large(n):
        for _ in range(n // 10 or 1):
            redact(blob_large)

    def case_stage(n):
        for _ in range(n):
            stage(SpanDraft(span))

    results = interleaved(
        {
            "classify (warm, realistic mix)": case_classify,
            "mask only": case_mask,
            "classify (cold: pattern cache cleared per message)": case_cold,
            "drain3 add_log_message (same mix)": case_drain,
            "redact(), string without '@'": case_redact_plain,
            "redact(), string with addresses": case_redact_addresses,
            "RedactionStage on a clean 10-attribute span": case_stage,
            "redact(), 10 KB word-character blob + '@' (per 10 ops)": case_blob_small,
            "redact(), 100 KB word-character blob + '@' (per 10 ops)": case_blob_large,
        },
        ops,
        repeats,
        clock=CPU_CLOCK,
    )
    section = Section("errors: classification, redaction, grouping vs Drain")
    section.rows = list(results.items())
    warm = results["classify (warm, realistic mix)"]
    section.ratios = [
        Ratio("classify warm, us per message", warm * 1e6, "<= 20"),
        Ratio("drain3 add_log_message / classify warm", results["drain3 add_log_message (same mix)"] / warm),
        Ratio("classify cold / warm", results["classify (cold: pattern cache cleared per message)"] / warm),
        Ratio("redact 100 KB blob / 10 KB blob (linear: ~10)",
              results["redact(), 100 KB word-character blob + '@' (per 10 ops)"]
              / results["redact(), 10 KB word-character blob + '@' (per 10 ops)"], "<= 20"),
    ]
    reference = time.process_time()
    for _ in range(200):
        sum(range(10_000))
    reference = (time.process_time() - reference) / 200
    section.notes.append(f"machine speed reference: sum(range(10_000)) takes {reference * 1e6:.0f} us here "
                         "(about 50-100 us on a current desktop CPU)")
    section.notes.extend(_accuracy_notes())
    section.notes.extend(_generic_notes(500 if quick else 2000))
    if not quick:
        section.notes.append(_stream_note(1_000_000))
    return section

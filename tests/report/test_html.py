"""The `--html` page renders in headless Chromium, and shows the same data as `--json`."""

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from html.parser import HTMLParser

import pytest

from tests.support import chromium
from tests.support.launcher import REPO, base_env
from tests.support.otlp_gen import write_trace_file
from tests.support.png import decode

PALETTE_0 = (0x4E, 0x79, 0xA7)  # the first chart colour of the page


class Marks(HTMLParser):
    """Collects the report data script and every chart mark's data-* attributes from a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.marks = defaultdict(list)
        self.data = None
        self._in_data = False
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "script" and a.get("id") == "report-data":
            self._in_data = True
            self.data = ""
        for cls in ("lat-cell", "lat-p95", "err-bar", "journey-seg"):
            if a.get("class") == cls:
                self.marks[cls].append(a)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    assert os.path.exists(chromium.CHROMIUM), "Debian chromium is required (make test installs it)"
    tmp = tmp_path_factory.mktemp("html")
    traces = tmp / "traces.jsonl"
    write_trace_file(traces, 6000, seed=21, error_rate=0.08, leak_bytes_per_send=16384)
    page = tmp / "report.html"
    result = subprocess.run([sys.executable, "-m", "mailscope", "report", str(traces), "--json", "--html", str(page)],
                            capture_output=True, text=True, cwd=REPO, env=base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return tmp, page, json.loads(result.stdout)


def test_page_is_self_contained(page):
    _, path, _ = page
    text = path.read_text()
    for fetch in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert fetch not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace("'http://www.w3.org/2000/svg'", ""), fetch


def test_embedded_data_and_drawn_charts_match_the_json(page):
    tmp, path, report = page
    dom = Marks()
    dom.feed(chromium.dump_dom(path, tmp))
    assert json.loads(dom.data) == report  # the page's own data is the --json document
    assert dom.body.get("data-charts") == "drawn"  # the script ran to the end

    # latency distribution: one cell per bin per operation, counts as in the JSON
    cells = defaultdict(list)
    for m in dom.marks["lat-cell"]:
        cells[m["data-op"]].append(int(m["data-count"]))
    ops = report["operations"][:20]
    assert list(cells) == [o["key"] for o in ops]
    for o in ops:
        assert cells[o["key"]] == o["latency_histogram"]
    p95 = {m["data-op"]: float(m["data-p95"]) for m in dom.marks["lat-p95"]}
    assert p95 == {o["key"]: o["latency_ms"]["p95"] for o in ops}

    # error patterns over time: the bars add up to each series' counts
    drawn = Counter()
    for m in dom.marks["err-bar"]:
        drawn[m["data-series"]] += int(m["data-count"])
    series = report["errors"]["timeline"]["series"]
    assert series and drawn == Counter({s["key"]: sum(s["counts"]) for s in series})
    assert sum(drawn.values()) == report["errors"]["total"]

    # journey breakdown: one segment per stage with a share, the same shares
    segs = {m["data-stage"]: float(m["data-share"]) for m in dom.marks["journey-seg"]}
    expected = {s["stage"]: s["share"] for s in report["journey"]["stages"] if s["share"] > 0}
    assert segs.keys() == expected.keys()
    for stage, share in expected.items():
        assert abs(segs[stage] - share) < 1e-12


def test_screenshot_is_not_blank(page):
    tmp, path, _ = page
    width, height, channels, rows = decode(chromium.screenshot(path, tmp, size=(1200, 1400)))
    assert (width, height) == (1200, 1400)
    colours = Counter()
    for row in rows[::4]:
        for x in range(0, len(row), channels * 4):
            colours[row[x:x + 3]] += 1
    total = sum(colours.values())
    commonest = colours.most_common(1)[0][1]
    assert len(colours) > 50  # text, tables and charts, not a flat page
    assert commonest / total < 0.9
    # the charts are painted: the first chart colour (journey bar, latency cells) is on screen
    chart = sum(n for rgb, n in colours.items() if all(abs(a - b) <= 2 for a, b in zip(rgb, PALETTE_0)))
    assert chart > 20, chart

"""Headless Debian Chromium for tests: screenshots and the DOM after the page's scripts ran."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def _run(page: Path, workdir: Path, extra: list[str], timeout: float) -> subprocess.CompletedProcess:
    profile = workdir / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def screenshot(page: Path, workdir: Path, size=(1280, 1800), timeout: float = 90) -> bytes:
    png = workdir / "screenshot.png"
    result = _run(page, workdir, [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}"], timeout)
    assert png.exists(), result.stderr.decode(errors="replace")[-2000:]
    return png.read_bytes()


def dump_dom(page: Path, workdir: Path, timeout: float = 90) -> str:
    result = _run(page, workdir, ["--dump-dom"], timeout)
    assert result.returncode == 0 and result.stdout, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode("utf-8")

"""Servers shared by the reliability tests of one module: a redis-server and an accepting SMTP server."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer
from tests.support.smtp_server import Behaviour, SMTPTestServer


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="module")
def smtp_port():
    with SMTPTestServer(Behaviour(keep_messages=False)) as server:
        yield server.port


# --- the 1,000,000-span run, started in the background as soon as it is collected -----------
# It is CPU-bound for a minute or two, and most other reliability tests wait on sockets and
# timeouts, so it overlaps with them on a two-core machine instead of adding to the wall time.
MILLION_TEST = "test_load_million.py::test_a_million_spans_stay_within_bounded_memory"
_million: dict = {}


def million_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "tests.reliability.million_spans", "1000000", "--names", "10000",
            "--messages", "100000"]


def pytest_collection_modifyitems(session, config, items):
    import subprocess

    from tests.support.launcher import REPO, base_env

    if any(item.nodeid.endswith(MILLION_TEST) for item in items) and "proc" not in _million:
        _million["proc"] = subprocess.Popen(
            million_command(), cwd=str(REPO), env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


def pytest_sessionfinish(session, exitstatus):
    proc = _million.get("proc")
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def million_run():
    """(returncode, stdout, stderr) of the background run (started here if it was not)."""
    import subprocess

    from tests.support.launcher import REPO, base_env

    proc = _million.get("proc")
    if proc is None:
        proc = _million["proc"] = subprocess.Popen(
            million_command(), cwd=str(REPO), env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    stdout, stderr = proc.communicate(timeout=900)
    return proc.returncode, stdout, stderr

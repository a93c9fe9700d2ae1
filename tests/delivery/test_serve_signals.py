"""`mailscope webhooks serve` stops cleanly on SIGTERM and SIGINT, whatever signals its parent ignored.

A shell starts a background job with SIGINT ignored, and Python keeps an
inherited SIG_IGN: the receiver then never stopped on SIGINT (a fresh-clone test
run in the background timed out waiting for it). docker and systemd stop a
service with SIGTERM, whose default action skips the exit handlers that flush
the last events' spans. Either signal must end the process normally.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.support.delivery_receiver import HOST
from tests.support.launcher import INSTRUMENT, VENV_BIN, base_env, free_port


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_receiver_exits_normally_on_a_stop_signal(signum):
    port = free_port()
    env = base_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    receiver = subprocess.Popen(
        [INSTRUMENT, str(VENV_BIN / "mailscope"), "webhooks", "serve", "--host", HOST, "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ignore_sigint,  # as a shell's background job
    )
    try:
        assert "listening on" in receiver.stdout.readline()
        receiver.send_signal(signum)
        out, err = receiver.communicate(timeout=60)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    assert "Traceback" not in err

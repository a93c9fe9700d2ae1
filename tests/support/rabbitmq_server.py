"""A real RabbitMQ broker for tests (Debian's `rabbitmq-server`): loopback, free ports, temp dir.

    with RabbitMQServer(tmp_path) as server:
        server.url                     # amqp://guest:guest@127.0.0.1:<port>//

Everything it needs lives under its directory: Mnesia database, logs, the Erlang
cookie (HOME), an empty plugin list. It runs its own Erlang port mapper (epmd) on a
free port, so it neither needs nor disturbs one already running, and stops both
again. Starting takes a few seconds (about 7 s on the 2-core test machine).

Pytest: `from tests.support.rabbitmq_server import rabbitmq_server` and ask for the
`rabbitmq_server` fixture.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.launcher import free_port

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script itself, not Debian's su wrapper
EPMD = "/usr/bin/epmd"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQServer:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.port = free_port()
        self.epmd_port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict:
        base = self.directory
        return {
            **os.environ,
            "HOME": str(base),
            "RABBITMQ_NODENAME": f"mailscope{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "mnesia" / "feature_flags"),
            "RABBITMQ_QUORUM_DIR": str(base / "mnesia" / "quorum"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
        }

    def start(self, timeout: float = 90.0) -> "RabbitMQServer":
        for sub in ("mnesia", "log"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "enabled_plugins").write_text("[].\n")
        self._log = open(self.directory / "server.out", "wb")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER], env=self._env(), cwd=str(self.directory),
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"rabbitmq-server did not start: {(self.directory / 'server.out').read_text()[-3000:]}")

    def _answers(self) -> bool:
        """The broker speaks AMQP: it answers the protocol header with a Connection.Start frame."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(AMQP_HEADER)
                return sock.recv(1)[:1] == b"\x01"
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # the script and the Erlang VM it started
                process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        subprocess.run([EPMD, "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()

    def __enter__(self) -> "RabbitMQServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def rabbitmq_server(tmp_path):
    server = RabbitMQServer(tmp_path / "rabbitmq").start()
    try:
        yield server
    finally:
        server.stop()

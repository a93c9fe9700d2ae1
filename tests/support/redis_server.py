"""A real `redis-server` for tests and benchmarks: loopback, free port, temp dir, no persistence.

    server = RedisServer().start()     # or RedisServer(tmp_path).start()
    server.url                         # redis://127.0.0.1:<port>/0
    server.stop(); server.start()      # stop mid-test, come back on the same port
    server.close()                     # stop and remove the temp dir it created

Pytest: `from tests.support.redis_server import redis_server` and ask for the
`redis_server` fixture (one server per test, stopped afterwards).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.launcher import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, directory: Path | str | None = None, port: int | None = None):
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="redis-"))
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _command(self) -> list[str]:
        return [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]

    def start(self, timeout: float = 15.0) -> "RedisServer":
        """Start (or restart on the same port). A fresh port is picked if the first one was taken."""
        if self.running:
            return self
        keep_port = self.port is not None
        for attempt in range(5):
            if not keep_port:
                self.port = free_port()
            self.directory.mkdir(parents=True, exist_ok=True)
            self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready(timeout):
                return self
            self.stop()
            if keep_port and attempt >= 2:
                break
        log = (self.directory / "redis.log")
        raise RuntimeError(f"redis-server did not start: {log.read_text() if log.exists() else 'no log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.close()

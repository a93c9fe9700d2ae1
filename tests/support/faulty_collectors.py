"""Collectors that misbehave, for reliability tests: all on loopback, all real sockets.

- `BlackHole()`: a TCP listener that accepts connections and never answers (nor
  closes them): the exporter's request hangs until its own timeout.
- `FaultyHttpReceiver(mode)`: an OTLP/HTTP (protobuf) receiver whose behaviour can be
  switched while the app runs: `"ok"` stores what it gets (like
  `otlp_receiver.HttpReceiver`), `"error"` answers `status` (503 by default, a
  retryable code) without storing, `"slow"` waits `delay` seconds before storing
  and answering. Counts every request it saw (`requests`) and records when the
  first successful export after a switch to `"ok"` arrived (`first_ok_after_switch`).
- `closed_port()`: a loopback port nothing listens on.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.support.launcher import free_port
from tests.support.otlp_receiver import Store


def closed_port() -> int:
    return free_port()


class BlackHole:
    """Accepts TCP connections on loopback and never reads or answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # held open, never read

    def start(self) -> "BlackHole":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class FaultyHttpReceiver:
    def __init__(self, mode: str = "ok", status: int = 503, delay: float = 1.0):
        self.store = store = Store()
        self.mode = mode
        self.status = status
        self.delay = delay
        self.requests = 0
        self.failed_requests = 0
        self.switched_at: float | None = None
        self.first_ok_after_switch: float | None = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests += 1
                mode = receiver.mode
                if self.path != "/v1/traces":
                    self._answer(200, b"")  # metrics and logs are not what these tests look at
                    return
                if mode == "error":
                    receiver.failed_requests += 1
                    self._answer(receiver.status, b"collector unavailable")
                    return
                if mode == "slow":
                    time.sleep(receiver.delay)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                if receiver.switched_at is not None and receiver.first_ok_after_switch is None:
                    receiver.first_ok_after_switch = time.monotonic()
                store.add_traces(request)
                self._answer(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status, payload):
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def switch(self, mode: str) -> None:
        self.switched_at = time.monotonic()
        self.first_ok_after_switch = None
        self.mode = mode

    def start(self) -> "FaultyHttpReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A real OTLP receiver that keeps every request's raw bytes, for all three signals.

    with RawOtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint, ...}   # or receiver.http_endpoint
        ...
        receiver.requests["logs"]        # [bytes, ...]: serialized Export*ServiceRequest bodies

gRPC (the three Export methods, served without decoding: a generic handler hands
over the protobuf bytes as they arrived) and HTTP/protobuf (`POST /v1/traces`,
`/v1/metrics`, `/v1/logs`; gzip bodies are inflated) on loopback ports. It
answers every export with success. For privacy tests that search what left the
process byte by byte; tests that want decoded spans use tests/support/otlp_receiver.py.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from concurrent import futures

import grpc

SIGNALS = ("traces", "metrics", "logs")
_SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}


class RawOtlpReceiver:
    def __init__(self):
        self.requests: dict[str, list[bytes]] = {signal: [] for signal in SIGNALS}
        self._lock = threading.Lock()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service, signal in _SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(self._grpc_export(signal))  # no (de)serializers: bytes
            self._grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self.grpc_endpoint = f"http://127.0.0.1:{self.grpc_port}"

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                signal = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/v1/") and signal in SIGNALS:
                    receiver._store(signal, body)
                    self.send_response(200)
                else:
                    self.send_response(404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self._http.server_address[1]
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _grpc_export(self, signal: str):
        def export(request: bytes, context) -> bytes:
            self._store(signal, request)
            return b""  # an empty Export*ServiceResponse: full success

        return export

    def _store(self, signal: str, body: bytes) -> None:
        with self._lock:
            self.requests[signal].append(bytes(body))

    def start(self) -> "RawOtlpReceiver":
        self._grpc.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> "RawOtlpReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

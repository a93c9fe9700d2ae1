"""A real OTLP receiver for tests: gRPC and HTTP/protobuf on loopback ports.

Built from opentelemetry-proto's service definitions; it stores what it gets,
decoded into the same flattened shape `mailscope.exporters.otlp_file` produces,
so tests read spans the same way whichever way they were exported.
"""

from __future__ import annotations

import http.server
import threading
import time
from concurrent import futures

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from mailscope.exporters.otlp_file import key_values


def _flatten_trace_request(request) -> list[dict]:
    # MessageToDict gives OTLP JSON except that ids are base64; convert to hex.
    import base64

    doc = MessageToDict(request)
    spans = []
    for rs in doc.get("resourceSpans", []):
        resource = key_values((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            scope = (ss.get("scope") or {}).get("name", "")
            for span in ss.get("spans", []):
                def hexid(value):
                    return base64.b64decode(value).hex() if value else None

                status = span.get("status") or {}
                spans.append(
                    {
                        "trace_id": hexid(span.get("traceId")),
                        "span_id": hexid(span.get("spanId")),
                        "parent_span_id": hexid(span.get("parentSpanId")),
                        "name": span["name"],
                        "kind": span.get("kind", "SPAN_KIND_UNSPECIFIED").replace("SPAN_KIND_", ""),
                        "start_ns": int(span.get("startTimeUnixNano", 0)),
                        "end_ns": int(span.get("endTimeUnixNano", 0)),
                        "attributes": key_values(span.get("attributes")),
                        "events": [
                            {"name": e.get("name", ""), "attributes": key_values(e.get("attributes"))}
                            for e in span.get("events", [])
                        ],
                        "status_code": status.get("code", "STATUS_CODE_UNSET").replace("STATUS_CODE_", ""),
                        "status_message": status.get("message", ""),
                        "resource": resource,
                        "scope": scope,
                    }
                )
    return spans


def _metric_names(request) -> list[str]:
    return [m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


class Store:
    def __init__(self):
        self.spans: list[dict] = []
        self.metric_names: list[str] = []
        self.metric_requests = []
        self.trace_requests = 0
        self._cond = threading.Condition()

    def add_traces(self, request):
        spans = _flatten_trace_request(request)
        with self._cond:
            self.trace_requests += 1
            self.spans.extend(spans)
            self._cond.notify_all()

    def add_metrics(self, request):
        with self._cond:
            self.metric_requests.append(request)
            self.metric_names.extend(_metric_names(request))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout=20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store):
        self.store = store

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        self.store.add_traces(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store):
        self.store = store

    def Export(self, request, context):  # noqa: N802
        self.store.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcReceiver:
    def __init__(self):
        self.store = Store()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self.store), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self.store), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(grace=None)


class HttpReceiver:
    """OTLP/HTTP with protobuf bodies: POST /v1/traces and /v1/metrics."""

    def __init__(self):
        self.store = store = Store()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    request = trace_service_pb2.ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    store.add_traces(request)
                    reply = trace_service_pb2.ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    request = metrics_service_pb2.ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    store.add_metrics(request)
                    reply = metrics_service_pb2.ExportMetricsServiceResponse()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

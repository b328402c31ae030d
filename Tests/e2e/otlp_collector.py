"""A stand-in OpenTelemetry collector on loopback: takes OTLP/HTTP trace exports (protobuf), decodes
them with the opentelemetry-proto package and keeps every span."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value(any_value):
    """An attribute's value as Python has it."""
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Collector:
    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []       # dicts: trace_id, span_id, parent_span_id (hex), name, kind, attributes, resource
        self.exports = []     # (path, content type) of each export
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.exports.append((self.path, self.headers.get("Content-Type")))
                    for resource_spans in request.resource_spans:
                        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                collector.spans.append({
                                    "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                    "parent_span_id": span.parent_span_id.hex(), "name": span.name,
                                    "kind": Span.SpanKind.Name(span.kind),
                                    "attributes": {a.key: value(a.value) for a in span.attributes},
                                    "status": span.status.code, "resource": resource,
                                })
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def trace(self, trace_id):
        with self.lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    def all(self):
        with self.lock:
            return list(self.spans)

    def close(self):
        self.server.shutdown()

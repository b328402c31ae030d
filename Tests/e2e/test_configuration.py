"""`fletcher serve` with a bad setting: it says which variable and what is wrong, on one line of its
standard error, and exits with status 78 (EX_CONFIG) before it opens a database or a port."""
import os
import subprocess
import tempfile

import pytest

from conftest import BINARY


@pytest.mark.parametrize("variable, value, problem", [
    ("DATABASE_URL", "mysql://u:secret@x",
     "expected postgres://…, postgresql://…, sqlite:PATH or sqlite::memory:, got 'mysql://u:***@x'"),
    ("BASE_URL", "localhost", "expected host:port, such as 127.0.0.1:3000, got 'localhost'"),
    ("MAX_CONNECTIONS", "0", "expected a whole number from 1 to 1000, got '0'"),
    ("DATABASE_TIMEOUT_S", "0", "expected a number from 0.1 to 3600.0, got '0'"),
    ("MAX_CONCURRENT_REQUESTS", "lots", "expected a number from 1.0 to 1000000.0, got 'lots'"),
    ("LOG_FORMAT", "xml", "expected text or json, got 'xml'"),
    ("WEBHOOKS", "not json", 'expected a JSON list of {"url", "secret"?, "events", "datasets"?, "format"?, "max_in_flight"?} objects; '
     "invalid JSON at byte 0: a value was expected"),
    ("WEBHOOKS", '[{"url": "ftp://x", "format": "slack", "events": ["*"]}]',
     "entry 0: \"url\" must be an http(s) URL, got 'ftp://x'"),
    ("WEBHOOKS", '[{"url": "http://x/h", "events": ["*"]}]',
     'entry 0: "secret" is required for the standard format (whsec_ and base64 of 24 to 64 random bytes)'),
    ("WEBHOOKS", '[{"url": "http://x/h", "secret": "whsec_eHh4eHh4eHg=", "events": ["*"]}]',
     'entry 0: "secret" must hold 24 to 64 bytes; it holds 8'),
    ("WEBHOOKS", '[{"url": "http://x/h", "format": "slack", "events": []}]',
     'entry 0: "events" must be a non-empty list of event types or patterns such as "data_product.*"'),
    ("WEBHOOKS", '[{"url": "http://x/h", "format": "xml", "events": ["*"]}]',
     "entry 0: \"format\" must be one of standard, slack, cloudevents, got 'xml'"),
    ("OPENLINEAGE_URL", "ftp://x", "expected an http(s) URL such as http://marquez.example:5000 "
     "(events go to {url}/api/v1/lineage), got 'ftp://x'"),
    # Values the OpenTelemetry SDK would ignore with a warning, or stop the process on, later.
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "expected an http(s) URL such as http://collector:4318, got 'collector:4318'"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP over gRPC is not built into Fletcher; use http/protobuf and the "
     "collector's HTTP port (4318), got 'grpc'"),
    ("OTEL_PROPAGATORS", "tracecontext,baggage", "expected tracecontext or none (Fletcher reads and sends W3C traceparent "
     "only), got 'tracecontext,baggage'"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "expected otlp or none (Fletcher sends spans as OTLP over HTTP), got 'zipkin'"),
])
def test_a_bad_setting_stops_the_server_with_its_name_and_status_78(variable, value, problem):
    folder = tempfile.mkdtemp(prefix="fletcher-config-")
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "REMOTE_APIS", "DATABASE_URL")}
    environment.update({"DATABASE_URL": "sqlite::memory:", "BASE_URL": "127.0.0.1:0", variable: value})
    result = subprocess.run([BINARY, "serve"], env=environment, cwd=folder, capture_output=True, text=True, timeout=120)
    assert result.returncode == 78, result.stderr
    assert result.stderr.splitlines() == [f"fletcher: configuration error: {variable}: {problem}"]
    assert os.listdir(folder) == [], "nothing written"

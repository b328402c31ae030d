"""OpenTelemetry traces of a real `fletcher serve`: spans go to a stand-in collector on loopback
(OTLP over HTTP, decoded with opentelemetry-proto), a caller's W3C traceparent is the parent of the
request's span, the store's spans and the trigger's delivery are in the same trace, the trigger the
request queued carries it to the compute platform, and log lines carry the trace id. Polls with
deadlines; no fixed sleeps."""
import json
import os
import secrets
import tempfile
import urllib.request
import uuid

import pytest

from conftest import API
from fake_platform import Platform
from otlp_collector import Collector
from servers import Fletcher, eventually


@pytest.fixture
def collector():
    collector = Collector()
    yield collector
    collector.close()


def traced_env(collector, **extra):
    environment = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "fletcher-e2e",
                   "OTEL_BSP_SCHEDULE_DELAY": "100", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    environment.update(extra)
    return environment


def traceparent(sampled=True):
    """A new trace's id, a caller's span id, and the traceparent header naming them."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def call(server, method, path, token, body=None, headers=None):
    request = urllib.request.Request(server.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def plan_body(dataset, product):
    return {"dataset": {"id": dataset, "extra": {}},
            "data_products": [{"id": product, "compute": "cams", "name": "job", "version": "1", "eager": True}],
            "dependencies": []}


def one(spans, name):
    found = [span for span in spans if span["name"] == name]
    assert len(found) == 1, f"{name}: {[s['name'] for s in spans]}"
    return found[0]


def json_lines(server):
    lines = []
    for line in server.output().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


@pytest.fixture(params=["sqlite", "postgres"])
def database(request):
    if request.param == "sqlite":
        return "sqlite:" + os.path.join(tempfile.mkdtemp(prefix="fletcher-trace-"), "f.sqlite")
    return request.getfixturevalue("postgres_database")


def test_a_submission_is_one_trace_from_the_caller_to_the_compute_platform(database, collector):
    platform = Platform()
    server = Fletcher(database, {"cams": {"url": platform.url}}, extra_env=traced_env(collector))
    try:
        token = API(server.base).token
        trace_id, caller_span, header = traceparent()
        dataset, product = str(uuid.uuid4()), str(uuid.uuid4())
        call(server, "POST", "/api/plan", token, plan_body(dataset, product), {"traceparent": header})

        # The platform gets the trigger in the caller's trace.
        eventually(lambda: platform.requests(), what="the trigger")
        sent = platform.headers[0].get("traceparent") or platform.headers[0].get("Traceparent")
        assert sent and sent.split("-")[1] == trace_id, platform.headers[0]

        def spans_in(names):
            spans = collector.trace(trace_id)
            return spans if names <= {span["name"] for span in spans} else None
        spans = eventually(lambda: spans_in({"POST /api/plan", "store mutate", "trigger cams", "POST"}),
                           what="the submission's spans")
        request = one(spans, "POST /api/plan")
        assert request["parent_span_id"] == caller_span
        assert request["kind"] == "SPAN_KIND_SERVER"
        assert request["attributes"]["http.route"] == "/api/plan"
        assert request["attributes"]["http.response.status_code"] == 200
        assert request["resource"]["service.name"] == "fletcher-e2e"
        mutate = one(spans, "store mutate")
        assert mutate["parent_span_id"] == request["span_id"]
        assert mutate["attributes"]["fletcher.dataset_id"] == dataset
        assert mutate["attributes"]["db.system.name"] == ("sqlite" if database.startswith("sqlite") else "postgresql")
        # The trigger's delivery: queued by the request, so its child; the request sent to the
        # platform is the delivery's child, and the platform's parent.
        trigger = one(spans, "trigger cams")
        assert trigger["parent_span_id"] == request["span_id"]
        assert trigger["attributes"]["fletcher.dataset_id"] == dataset
        assert trigger["attributes"]["fletcher.data_product_id"] == product
        sent_request = [s for s in spans if s["name"] == "POST" and s["parent_span_id"] == trigger["span_id"]]
        assert len(sent_request) == 1 and sent_request[0]["kind"] == "SPAN_KIND_CLIENT"
        assert sent.split("-")[2] == sent_request[0]["span_id"]
        # Recording the delivery is a store call of the delivery.
        assert any(s["name"] == "store markDelivered" and s["parent_span_id"] == trigger["span_id"] for s in spans)

        # A plan read in another trace: named by its route, with the dataset (on PostgreSQL a warm
        # read is answered on the event loop, and is a span all the same).
        for _ in range(2):
            read_trace, _, read_header = traceparent()
            call(server, "GET", f"/api/plan/{dataset}", token, headers={"traceparent": read_header})
            read = eventually(lambda: collector.trace(read_trace), what="the read's span")
            assert [span["name"] for span in read if span["kind"] == "SPAN_KIND_SERVER"] == ["GET /api/plan/{dataset_id}"]
            server_span = one(read, "GET /api/plan/{dataset_id}")
            assert server_span["attributes"]["fletcher.dataset_id"] == dataset

        # The request's log line carries its trace id.
        eventually(lambda: any(line.get("message") == "request" and line.get("trace_id") == trace_id
                               and line.get("route") == "/api/plan" for line in json_lines(server)),
                   what="the request's log line with its trace id")
        assert all(path == "/v1/traces" and kind == "application/x-protobuf" for path, kind in collector.exports)
    finally:
        server.stop()
        platform.close()


def test_sampling_follows_the_caller_and_the_ratio(collector):
    database = "sqlite:" + os.path.join(tempfile.mkdtemp(prefix="fletcher-trace-"), "f.sqlite")
    server = Fletcher(database, extra_env=traced_env(
        collector, OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0"))
    try:
        token = API(server.base).token
        # A caller's sampled trace is followed whatever the ratio.
        sampled, _, header = traceparent(sampled=True)
        call(server, "GET", "/api/data_products?limit=1", token, headers={"traceparent": header})
        eventually(lambda: collector.trace(sampled), what="the sampled caller's spans")
        # An unsampled caller's is not recorded, nor a request without a caller's trace at ratio 0;
        # the log lines still carry the caller's trace id.
        unsampled, _, header = traceparent(sampled=False)
        call(server, "GET", "/api/data_products?limit=2", token, headers={"traceparent": header})
        call(server, "GET", "/api/data_products?limit=3", token)
        # A later sampled request's spans arrive after anything the earlier ones would have sent.
        last, _, header = traceparent(sampled=True)
        call(server, "GET", "/api/data_products?limit=4", token, headers={"traceparent": header})
        eventually(lambda: collector.trace(last), what="the last sampled caller's spans")
        assert collector.trace(unsampled) == []
        assert {span["trace_id"] for span in collector.all()} == {sampled, last}
        eventually(lambda: any(line.get("trace_id") == unsampled and line.get("trace_flags") == "0"
                               for line in json_lines(server)), what="the unsampled request's log line")
    finally:
        server.stop()


def test_with_traces_off_nothing_is_sent_and_no_trigger_carries_a_traceparent(collector):
    database = "sqlite:" + os.path.join(tempfile.mkdtemp(prefix="fletcher-trace-"), "f.sqlite")
    platform = Platform()
    # Only variables that do not turn traces on: no endpoint, no exporter.
    server = Fletcher(database, {"cams": {"url": platform.url}},
                      extra_env={"OTEL_SERVICE_NAME": "fletcher-e2e", "LOG_FORMAT": "json", "LOG_LEVEL": "info"})
    try:
        token = API(server.base).token
        trace_id, _, header = traceparent()
        call(server, "POST", "/api/plan", token, plan_body(str(uuid.uuid4()), str(uuid.uuid4())), {"traceparent": header})
        eventually(lambda: platform.requests(), what="the trigger")
        assert not any(name.lower() == "traceparent" for name in platform.headers[0])
        assert not any("trace_id" in line for line in json_lines(server))
        assert collector.all() == [] and collector.exports == []
    finally:
        server.stop()
        platform.close()

"""The stress tool (`fletcher stress`) against a real server: the original's mixed workload runs
without a failure, every kind of request is measured in its proportion, plans are driven to the end
and cleared, and the report (text and JSON) carries the figures PERFORMANCE.md is built from."""
import base64
import json
import os
import shutil
import subprocess
import tempfile

from conftest import API, BINARY, KEY
from servers import Fletcher, free_port


def run_stress(server, folder, *arguments):
    report = os.path.join(folder, "report.json")
    done = subprocess.run([BINARY, "stress", "--url", server.base, "--service", "e2e", "--quiet", "--json", report,
                           *arguments], env=dict(os.environ, FLETCHER_STRESS_KEY=KEY), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(report) as f:
        return done.stdout, json.load(f)


def test_the_mixed_workload_drives_plans_to_the_end_without_failures():
    folder = tempfile.mkdtemp(prefix="fletcher-stress-")
    server = Fletcher(f"sqlite:{folder}/stress.sqlite")
    try:
        text, report = run_stress(server, folder, "--scenario", "mixed", "--concurrency", "4", "--requests", "700",
                                  "--plans", "4")
        assert report["failed"] == 0 and report["unexpected_triggers"] == 0, report["failures"]
        assert report["requests"] == 700 and report["ok"] == 700
        kinds = report["kinds"]
        for kind in ("update", "clear", "index page", "search", "plan page"):
            assert kinds[kind]["count"] > 0 and kinds[kind]["failed"] == 0, kind
            assert 0 < kinds[kind]["min_ms"] <= kinds[kind]["p50_ms"] <= kinds[kind]["p99_ms"] <= kinds[kind]["max_ms"]
            assert kind in text
        # One visit of the three pages per four state updates (clears restart a plan; they count apart).
        # The request limit may end each of the 4 workers between two pages of a visit.
        pages = kinds["index page"]["count"]
        assert 0 <= pages - kinds["search"]["count"] <= 4 and 0 <= kinds["search"]["count"] - kinds["plan page"]["count"] <= 4
        assert abs(kinds["update"]["count"] - 4 * pages) <= 4 * 4
        # Every plan the tool drove is stored as it left it: no product failed, and each is readable.
        plans = server_plans(server)
        assert len(plans) == 4
        for plan in plans:
            assert all(p["state"] != "failed" for p in plan["data_products"])
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def server_plans(server):
    """Every plan the stress tool submitted (their extra names the tool), read whole."""
    api = API(server.base)
    found, page = [], 0
    while page is not None:
        answer = api.call("GET", f"/api/plan/search?search_by=stress&page={page}")
        found += [api.plan(row["dataset_id"]) for row in answer["rows"]]
        page = answer["next_page"]
    return found


def test_webhook_latency_is_measured_for_every_success_at_a_set_rate():
    """With --webhook-port the tool is a Standard Webhooks endpoint subscribed to every event: each
    success it sends is matched to exactly one `data_product.succeeded` delivery (deduplicated by
    webhook-id), none missing, none for a success it never sent; --rate caps the requests."""
    folder = tempfile.mkdtemp(prefix="fletcher-stress-")
    port = free_port()
    hooks = [{"url": f"http://127.0.0.1:{port}/hooks", "events": ["*"], "format": "standard",
              "secret": "whsec_" + base64.b64encode(b"stress-webhook-secret-32-bytes!!").decode()}]
    server = Fletcher(f"sqlite:{folder}/stress.sqlite", extra_env={"WEBHOOKS": json.dumps(hooks)})
    try:
        rate, concurrency = 60, 4
        text, report = run_stress(server, folder, "--scenario", "mixed", "--concurrency", str(concurrency),
                                  "--duration", "4", "--plans", "6", "--webhook-port", str(port), "--rate", str(rate))
        assert report["failed"] == 0, report["failures"]
        assert report["missing_webhooks"] == 0 and report["unexpected_webhooks"] == 0, report
        latency = report["kinds"]["webhook latency"]
        assert latency["count"] > 0 and latency["failed"] == 0
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert "webhook latency" in text
        # Every product the tool drove to success had its webhook measured: the stored plans' successes
        # since their last clear are at most the deliveries (a clear sends products back to waiting).
        succeeded = sum(p["state"] == "success" for plan in server_plans(server) for p in plan["data_products"])
        assert latency["count"] >= succeeded
        # Paced: the slots come one per 1/rate seconds from the start; each worker may hold one more.
        assert report["rate"] == rate
        assert report["requests"] <= rate * report["duration_s"] + concurrency + 1
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

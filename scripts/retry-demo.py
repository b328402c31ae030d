#!/usr/bin/env python3
"""Runs a 1,000-product plan against `fletcher simulate-compute` failing and hanging jobs, with
retries, timeouts and cancels configured, until nothing can move any more; then counts tries,
timeouts and cancels from Fletcher's history and compares them with the simulator's own counts.

    .venv-e2e/bin/python scripts/retry-demo.py [--database sqlite|postgres] [--products 1000] [--fail-rate 0.3] [--hang-rate 0.1]

PostgreSQL needs FLETCHER_TEST_POSTGRES_URL (`scripts/with-postgres.sh .venv-e2e/bin/python scripts/retry-demo.py
--database postgres`). FLETCHER_BIN picks the binary (default .build/release/fletcher, else debug).
Prints one JSON line of figures and exits 1 when the counts disagree."""
import argparse
import json
import os
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
os.environ.setdefault("FLETCHER_BIN", next(
    (p for p in (os.path.join(ROOT, ".build", c, "fletcher") for c in ("release", "debug")) if os.path.exists(p)), ""))

from conftest import API  # noqa: E402
from servers import SimulatedCompute, Fletcher, binary_tree, fresh_postgres_database, history, wait_settled  # noqa: E402



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--hang-rate", type=float, default=0.1)
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the plan to settle")
    options = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="fletcher-demo-")
    database = fresh_postgres_database() if options.database == "postgres" else f"sqlite:{folder}/demo.sqlite"
    if database is None:
        sys.exit("--database postgres needs FLETCHER_TEST_POSTGRES_URL (scripts/with-postgres.sh)")
    simulator = SimulatedCompute(options.fail_rate, options.hang_rate, options.retries, folder=folder)
    server = Fletcher(database, simulator.targets, extra_env={"LOG_LEVEL": "warning"})
    try:
        api = API(server.base)
        # A binary tree: product n depends on product (n - 1) // 2.
        dataset = str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in range(options.products)]
        api.call("POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {"demo": "retries"}},
            "data_products": [{"id": i, "compute": "cams", "name": f"job-{n}", "version": "1", "eager": True}
                              for n, i in enumerate(ids)],
            "dependencies": binary_tree(ids)})
        started = time.time()
        try:
            plan = wait_settled(api, dataset, options.timeout)
        except AssertionError as error:
            sys.exit(str(error))
        seconds = time.time() - started
        tries = timeouts = retries = failed_reports = 0
        cancels = {}
        for product in plan["data_products"]:
            for event in history(api, dataset, product["id"]):
                if event["kind"] == "state_change":
                    tries += event["to"] == "queued"
                    retries += event["reason"] == "retry"
                    timeouts += event["reason"] == "timeout"
                    failed_reports += event["to"] == "failed" and event["reason"] == "api"
                elif event.get("cancel") and event["http_status"] in (200, 404, 409):
                    cancels[event["trigger_id"]] = event["http_status"]
        stats = simulator.stats()
        states = {}
        for product in plan["data_products"]:
            states[product["state"]] = states.get(product["state"], 0) + 1
        final_failures = [p for p in plan["data_products"] if p["state"] == "failed"]
        exhausted = all(p["try"] >= options.retries + 1 for p in final_failures)
        figures = {
            "database": options.database, "products": len(ids), "seconds": round(seconds, 1), "states": states,
            "history": {"tries": tries, "retries": retries, "timeouts": timeouts, "cancels": len(cancels),
                        "cancel_statuses": sorted(set(cancels.values())), "failed_reports": failed_reports},
            "simulator": stats, "failed_products_used_their_tries": exhausted,
        }
        checks = {
            "tries == jobs_started": tries == stats["jobs_started"],
            "timeouts == jobs_hung": timeouts == stats["jobs_hung"],
            "cancels == jobs_cancelled": len(cancels) == stats["jobs_cancelled"],
            "failed_reports == jobs_failed": failed_reports == stats["jobs_failed"],
            "every product success or out of tries": exhausted and set(states) <= {"success", "failed", "waiting"},
        }
        figures["checks"] = checks
        print(json.dumps(figures))
        sys.exit(0 if all(checks.values()) else 1)
    finally:
        simulator.stop()
        server.stop()


if __name__ == "__main__":
    main()

"""Re-running everything that failed after a platform outage: a bulk clear of 10,000 failed products
over 1,000 datasets on PostgreSQL queues them through the normal rules, and the dispatcher then
delivers each exactly once without ever exceeding the platform's max_in_flight (docs/RULES.md rule
31). The time the bulk clear takes is printed (PERFORMANCE.md, "Bulk re-run"), not asserted."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import API
from servers import Fletcher
from test_dispatch import eventually

DATASETS = 1_000
PRODUCTS = 10


@pytest.fixture
def database(postgres_database):
    return postgres_database


def test_a_bulk_clear_of_ten_thousand_failed_products_queues_them_under_the_dispatchers_limits(database, platform):
    # The front process takes the API calls and dispatches nothing: the outage.
    front = Fletcher(database)
    dispatcher = None
    try:
        api = API(front.base)

        def load(index):
            dataset, ids = api.submit([(f"extract {index}.{n}", True) for n in range(PRODUCTS)], extra={"batch": index})
            api.call("PUT", f"/api/data_product/{dataset}/update", [{"id": i, "state": "failed"} for i in ids])
            return dataset

        with ThreadPoolExecutor(8) as pool:
            datasets = list(pool.map(load, range(DATASETS)))
        failed = api.call("GET", "/api/data_products?state=failed&limit=1")
        assert failed["data_products"], "products failed"

        # The guard: more matches than max_products changes nothing.
        try:
            api.call("POST", "/api/bulk/clear", {"filter": {"state": "failed"}, "max_products": 9_999})
            raise AssertionError("the guard let 10,000 products through")
        except Exception as error:  # urllib's HTTPError
            assert getattr(error, "code", None) == 409, error
        dry = api.call("POST", "/api/bulk/clear", {"filter": {"state": "failed"}, "max_products": 10_000, "dry_run": True})
        assert sum(len(result["changed"]) for result in dry["results"]) == DATASETS * PRODUCTS

        started = time.monotonic()
        done = api.call("POST", "/api/bulk/clear", {"filter": {"state": "failed"}, "max_products": 10_000})
        elapsed = time.monotonic() - started
        print(f"\nbulk clear of {DATASETS * PRODUCTS} failed products over {DATASETS} datasets: {elapsed:.2f} s")
        assert [r for r in done["results"] if r["error"] is not None] == []
        assert sum(len(result["changed"]) for result in done["results"]) == DATASETS * PRODUCTS
        # Queued through the rules: each product is queued (no parents) as its second try.
        for dataset in datasets[:: DATASETS // 20]:
            products = api.plan(dataset)["data_products"]
            assert {p["state"] for p in products} == {"queued"}
        assert api.call("GET", "/api/data_products?state=failed&limit=1")["data_products"] == []

        # The platform is back: one dispatcher delivers every new try once, four at a time at most.
        platform.delay = 0.002
        dispatcher = Fletcher(database, {"cams": {"url": platform.url, "max_in_flight": 4, "timeout_s": 10}})
        eventually(lambda: platform.jobs() >= DATASETS * PRODUCTS, timeout=600, what="10,000 deliveries")
        assert platform.most_open <= 4
        assert platform.jobs() == DATASETS * PRODUCTS
        keys = [key for _, _, key, _, _ in platform.requests()]
        assert len(set(keys)) == DATASETS * PRODUCTS
    finally:
        if dispatcher:
            dispatcher.stop()
        front.stop()

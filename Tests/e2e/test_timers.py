"""Retries, timeouts and cancels across processes (docs/RULES.md rules 22-26): 500 products on a
platform whose jobs fail, hang or are lost, two Fletcher processes on one PostgreSQL database, one
of them SIGKILLed mid-run. The history must show each try exactly once, each timeout exactly once,
a cancel delivered for each timed-out try, and no product stuck. Polls with deadlines; no fixed
sleeps."""
import json
import signal
import uuid


from chaos_platform import ChaosPlatform
from conftest import API
from servers import Fletcher, eventually, history, settled

MAX_RETRIES = 3


def test_retries_timeouts_and_cancels_happen_exactly_once_across_a_killed_process(postgres_database):
    platform = ChaosPlatform([], None, fail=0.25, hang=0.1, lost=0.1)
    # A queued timeout longer than a dead process's lease (2 x timeout_s + 1 s) and the next claim:
    # every try reaches the platform before it can time out queued.
    targets = {"cams": {"url": platform.url, "cancel_url": platform.cancel_url, "timeout_s": 1,
                        "retries": {"max": MAX_RETRIES, "delay_s": 0.3, "max_delay_s": 1.5},
                        "max_queued_s": 10, "max_running_s": 4}}
    first = second = None
    try:
        first = Fletcher(postgres_database, targets)
        second = Fletcher(postgres_database, targets)
        platform.bases = [second.base, first.base]
        api = API(second.base)
        platform.token = api.token

        # 500 products: 10 plans of 50, in chains of 5.
        datasets = []
        for _ in range(10):
            dataset = str(uuid.uuid4())
            ids = [str(uuid.uuid4()) for _ in range(50)]
            body = {"dataset": {"id": dataset, "extra": {}},
                    "data_products": [{"id": i, "compute": "cams", "name": f"p{n}", "version": "1", "eager": True}
                                      for n, i in enumerate(ids)],
                    "dependencies": [{"parent_id": ids[n], "child_id": ids[n + 1]} for n in range(49) if n % 5 != 4]}
            API(first.base if len(datasets) % 2 else second.base).call("POST", "/api/plan", body)
            datasets.append(dataset)

        # Mid-run, the first process dies without a word.
        eventually(lambda: platform.triggers >= 200, timeout=180, what="200 triggers at the platform")
        first.signal(signal.SIGKILL)
        first.process.wait()
        eventually(lambda: all(settled(api.plan(d)) for d in datasets), timeout=420, what="every product to settle")

        # Count from the history.
        queued_tries = {}   # trigger id -> (product, try)
        timeouts = []       # (product, try, trigger id)
        cancels = {}        # cancelled trigger id -> final http status
        failures = 0
        for dataset in datasets:
            plan = api.plan(dataset)
            for product in plan["data_products"]:
                events = history(api, dataset, product["id"])
                changes = [e for e in events if e["kind"] == "state_change"]
                tries = [e["try"] for e in changes if e["to"] == "queued"]
                assert tries == list(range(1, len(tries) + 1)), (product["name"], tries)
                assert product["try"] == len(tries)
                for e in changes:
                    if e["to"] == "queued":
                        assert e["trigger_id"] not in queued_tries
                        queued_tries[e["trigger_id"]] = (product["id"], e["try"])
                    if e["reason"] == "timeout":
                        timeouts.append((product["id"], e["try"], e["trigger_id"]))
                    if e["to"] == "failed" and e["reason"] == "api":
                        failures += 1
                for e in events:
                    if e["kind"] == "delivery" and e.get("cancel"):
                        if e["http_status"] in (200, 404, 409):
                            assert e["trigger_id"] not in cancels, "a cancel delivered twice"
                            cancels[e["trigger_id"]] = e["http_status"]
                # A failed product has used its retries: its last run of tries ended in failure.
                if product["state"] == "failed":
                    assert product["retry_at"] is None
                    assert product["try"] >= 1

        # Each timeout once per try, and a cancel delivered for each timed-out try.
        assert len({(p, t) for p, t, _ in timeouts}) == len(timeouts)
        assert {trigger for _, _, trigger in timeouts} == set(cancels)
        # The platform saw exactly the tries the history shows, each as one job.
        assert set(platform.jobs) == set(queued_tries)
        assert {key for key, _ in platform.cancel_requests} == set(cancels)
        # Every job that hung or was lost timed out and was stopped, and every timeout stopped a job
        # or found it ended. On a quiet machine only the stuck jobs time out; on one slow enough that
        # a job's reports come after its limit, that try times out too: its cancel stops the job or
        # finds it ended (409), and a failure report of it may land on a product already failed.
        stuck = {key for key, job in platform.jobs.items() if job["outcome"] in ("hang", "lost")}
        assert stuck <= platform.cancelled
        assert platform.cancelled.isdisjoint(platform.too_late)
        assert len(timeouts) == len(platform.cancelled) + len(platform.too_late)
        assert failures <= platform.accepted["failed"]
        if platform.cancelled == stuck and not platform.too_late:
            assert failures == platform.accepted["failed"]
        outcomes = platform.outcomes()
        assert len(timeouts) > 0 and failures > 0
        retried = sum(1 for _, t in queued_tries.values() if t > 1)
        assert retried > 0
        print(json.dumps({"tries": len(queued_tries), "retries": retried, "timeouts": len(timeouts),
                          "cancels": len(cancels), "cancels_too_late": len(platform.too_late),
                          "failures_reported": failures, "platform": outcomes,
                          "platform_reports": platform.reports}))
    finally:
        for server in (first, second):
            if server:
                server.stop()
        platform.close()

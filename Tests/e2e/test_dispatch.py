"""Fletcher processes sharing one PostgreSQL database: the trigger daemon across killed, stopped and
doubled servers, against a compute platform on loopback, and live pages hearing another process's
changes. Polls with deadlines; no fixed sleeps."""
import http.client
import json
import signal
import statistics
import time
import urllib.request

import pytest

from conftest import API
from servers import Fletcher


def eventually(condition, timeout=20, what=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def database(postgres_database):
    return postgres_database


def states(api, dataset):
    return {p["name"]: p for p in api.plan(dataset)["data_products"]}


def deliveries(api, dataset, product):
    events = api.call("GET", f"/api/data_product/{dataset}/{product}/history?limit=100")["events"]
    return [e for e in events if e["kind"] == "delivery"]


def lease_lost(server):
    """How many attempts `server` found its lease lost for (its /metrics)."""
    metrics = urllib.request.urlopen(server.base + "/metrics", timeout=10).read().decode()
    return sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith("fletcher_dispatch_attempts_total{") and 'outcome="lease_lost"' in line)


def test_a_process_killed_after_sending_loses_nothing_and_starts_one_job(database, platform):
    targets = {"cams": {"url": platform.url, "timeout_s": 1}}
    first = Fletcher(database, targets)
    second = None
    try:
        api = API(first.base)
        platform.hold.clear()          # the platform takes the request but does not answer yet
        dataset, ids = api.submit([("job", True)])
        eventually(platform.held.is_set, what="the trigger at the platform")
        first.signal(signal.SIGKILL)   # sent, not recorded
        platform.hold.set()
        second = Fletcher(database, targets)
        api = API(second.base)
        eventually(lambda: any(d["http_status"] == 202 for d in deliveries(api, dataset, ids[0])), what="redelivery")
        requests = platform.requests()
        assert len(requests) == 2
        assert requests[0][1] == requests[1][1], "the resend carries the same trigger id"
        assert [r[3] for r in requests] == [1, 2]
        assert platform.jobs() == 1
        assert states(api, dataset)["job"]["run_id"] is not None
    finally:
        first.stop()
        if second:
            second.stop()


def test_a_process_killed_between_claim_and_send_loses_nothing_and_starts_one_job(database, platform):
    """SIGKILL right after the claim committed its lease, before any request: the failpoint
    `dispatch.after_claim=kill` makes the process kill itself exactly there."""
    targets = {"cams": {"url": platform.url, "timeout_s": 1}}
    front = Fletcher(database)   # takes the API calls; dispatches nothing
    doomed = Fletcher(database, targets, extra_env={"FLETCHER_FAILPOINTS": "dispatch.after_claim=kill"})
    second = None
    try:
        api = API(front.base)
        dataset, ids = api.submit([("job", True)])
        doomed.process.wait(timeout=20)   # it hears of the trigger (NOTIFY), claims it, and dies
        assert doomed.process.returncode == -signal.SIGKILL
        assert platform.requests() == [], "nothing was sent before the kill"
        second = Fletcher(database, targets)
        # Delivered once the dead process's lease (2 x timeout + 1 s) has expired.
        eventually(lambda: any(d["http_status"] == 202 for d in deliveries(api, dataset, ids[0])), what="delivery")
        requests = platform.requests()
        assert len(requests) == 1
        assert requests[0][3] == 2, "the dead claim counted as attempt 1"
        delivered = [d for d in deliveries(api, dataset, ids[0]) if d["http_status"] == 202]
        assert delivered[0]["trigger_id"] == requests[0][1], "the trigger written when the product was queued"
        assert platform.jobs() == 1
    finally:
        for server in (front, doomed, second):
            if server:
                server.stop()


def test_a_process_stopped_past_its_lease_changes_nothing_when_it_wakes(database, platform):
    targets = {"cams": {"url": platform.url, "timeout_s": 1}}
    paused = Fletcher(database, targets)
    other = None
    try:
        api = API(paused.base)
        platform.hold.clear()
        dataset, ids = api.submit([("job", True)])
        eventually(platform.held.is_set, what="the first attempt at the platform")
        paused.signal(signal.SIGSTOP)
        platform.held.clear()
        other = Fletcher(database, targets)
        other_api = API(other.base)
        platform.hold.set()           # answers now go out (the paused process cannot read its own)
        # If the stopped process was frozen inside a transaction, the server ends its session after
        # 10 s (idle_in_transaction_session_timeout), freeing its locks.
        eventually(lambda: any(d["http_status"] == 202 for d in deliveries(other_api, dataset, ids[0])),
                   timeout=40, what="the other process's delivery")
        recorded = states(other_api, dataset)["job"]
        paused.signal(signal.SIGCONT)
        # The woken process reads its late answer (or meets its time limit) and finds its lease gone:
        # it counts the attempt as lease_lost and writes nothing (or, if the database ended a session
        # it had frozen mid-transaction, it cannot write at all and says so).
        eventually(lambda: lease_lost(paused) >= 1 or "cannot record an attempt" in paused.output(), timeout=60,
                   what="the woken process's attempt to record its answer")
        assert recorded["run_id"] is not None
        assert states(other_api, dataset)["job"]["run_id"] == recorded["run_id"]
        trigger_ids = {r[1] for r in platform.requests()}
        assert len(trigger_ids) == 1, "every attempt carries the one trigger id"
        history = deliveries(other_api, dataset, ids[0])
        assert {d["trigger_id"] for d in history} == trigger_ids, history
        delivered = [d for d in history if d["http_status"] == 202]
        assert len(delivered) == 1, history
        assert f":{other.process.pid}:" in delivered[0]["process"], history
        assert delivered[0]["attempt"] >= 2, "the stopped process's claim counted as an attempt"
        assert not [d for d in history if f":{paused.process.pid}:" in (d["process"] or "")], history
    finally:
        paused.signal(signal.SIGCONT)
        paused.stop()
        if other:
            other.stop()


def test_two_processes_never_have_more_than_max_in_flight_open(database, platform):
    targets = {"cams": {"url": platform.url, "max_in_flight": 3, "timeout_s": 5}}
    platform.delay = 0.2
    servers = [Fletcher(database, targets), Fletcher(database, targets)]
    try:
        api = API(servers[0].base)
        dataset, ids = api.submit([(f"job {i}", True) for i in range(15)])
        eventually(lambda: len(platform.requests()) == 15, what="15 deliveries")
        assert platform.most_open <= 3
        assert platform.jobs() == 15
    finally:
        for server in servers:
            server.stop()


def test_a_child_is_at_the_platform_after_its_parent_succeeds(database, platform):
    """Each child's trigger follows its parent's success (the latency is printed; its figure under load
    is scripts/perf/run.py's dispatch step)."""
    server = Fletcher(database, {"cams": {"url": platform.url}})
    try:
        api = API(server.base)
        latencies = []
        for _ in range(40):
            dataset, ids = api.submit([("parent", True), ("child", True)], edges=[(0, 1)])
            eventually(lambda: any(r[4].get("data_product_id") == ids[0] for r in platform.requests()), what="parent")
            started = time.time()
            api.update(dataset, ids[0], "success")
            arrived = eventually(
                lambda: next((r[0] for r in platform.requests() if r[4].get("data_product_id") == ids[1]), None),
                what="the child's trigger")
            latencies.append(max(0.0, arrived - started))
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(f"trigger latency over {len(latencies)} plans: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        server.stop()


def test_a_page_open_on_one_process_shows_changes_made_through_another(database):
    """A process alone sends no change notifications; a second one says hello when it starts listening,
    and then hears the first one's changes (or, for a change made before the first heard the hello,
    looks again by itself): both updates show on a page open on the second process."""
    first = Fletcher(database)
    second = None
    try:
        api = API(first.base)
        dataset, (job,) = api.submit([("job", False)])
        second = Fletcher(database)
        connection = http.client.HTTPConnection("127.0.0.1", second.port, timeout=20)
        connection.request("GET", f"/plan/{dataset}/events")
        events = connection.getresponse()
        assert events.status == 200

        def state_shown(state):
            deadline = time.time() + 15
            while time.time() < deadline:
                line = events.readline().decode()
                if line.startswith("data: ") and json.loads(line[6:])["states"].get(job) == state:
                    return
            raise AssertionError(f"the page on the second process never showed {state}")

        state_shown("waiting")
        api.update(dataset, job, "running")
        state_shown("running")
        api.update(dataset, job, "success")
        state_shown("success")
        connection.close()
    finally:
        first.stop()
        if second:
            second.stop()

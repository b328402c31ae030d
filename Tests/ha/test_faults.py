"""A slow, stalled, cut or silent path to PostgreSQL (issue 26): Fletcher reaches its database
through a fault-injecting proxy (faultproxy.py) and the tests prove that

- with 500 ms added to every answer, requests are slower but correct, and under more concurrent
  requests than the pool holds each is served or refused with the documented 503 — none waits past
  DATABASE_TIMEOUT_S for a connection, none fails otherwise — and all is normal once it is gone;
- a connection stalled in the middle of a transaction (after its write) costs its request a 503
  within a bound, not a hang or a 500; the dataset is not left locked (the server ends the stalled
  transaction: idle_in_transaction_session_timeout) and nothing of it is stored; the pool gets its
  connection back;
- a database whose every connection stalls gets 503s within the bound, and serves again once the
  bytes flow;
- a commit whose answer is lost (reset before it reaches Fletcher), or which is lost itself, is
  never acknowledged with a 200 unless it is stored; what Fletcher then serves is what is stored —
  on both write paths (the cached plan's single statement, and BEGIN … COMMIT);
- a path that goes silent (half-open) gets 503s within the bound, and service resumes over new
  connections once it heals, without a restart, with the pool whole and the listener for other
  processes' changes listening again;
- every connection reset under load: service resumes by itself, and no acknowledged write is lost.

Requests carry time limits of their own, longer than the bound asserted, so a hang is reported as
one. Polls with deadlines; no fixed sleeps as synchronisation. Needs the throwaway PostgreSQL of
scripts/with-postgres.sh (skipped without it)."""
import json
import os
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy, writes_to  # noqa: E402
from faultsupport import (API, Fletcher, call, check_served_or_unavailable, check_unavailable,  # noqa: E402
                          eventually, log_tail, metric, postgres_database, psql, stored_state, url_parts)

# How long a request may wait for a pooled connection (DATABASE_TIMEOUT_S), and the pool's size.
TIMEOUT_S = 5
POOL = 4
# How long a request's database work may go on once it has its connection (DATABASE_QUERY_TIMEOUT_S).
QUERY_TIMEOUT_S = 12
# What a request that meets a fault may take at most: the wait for a connection, its work's limit,
# and a margin.
BOUND = TIMEOUT_S + QUERY_TIMEOUT_S + 18
# PostgreSQL ends a session idle in a transaction after this long (Fletcher sets it per session).
IDLE_IN_TRANSACTION_S = 10


@pytest.fixture
def database():
    return postgres_database()


@pytest.fixture
def proxy(database):
    """A fault proxy in front of the test's database; `proxy.url` is the DATABASE_URL through it."""
    user, host, port, name, _ = url_parts(database)
    proxy = FaultProxy(host, port)
    proxy.url = f"postgres://{user}@127.0.0.1:{proxy.port}/{name}?sslmode=disable"
    yield proxy
    proxy.close()


@pytest.fixture
def start_fletcher(proxy):
    """Starts Fletcher processes on the proxy (DATABASE_TIMEOUT_S, DATABASE_QUERY_TIMEOUT_S and
    MAX_CONNECTIONS set, more settings as keyword arguments); prints the end of each one's log and
    stops it afterwards."""
    started = []

    def start(**settings):
        env = {"DATABASE_TIMEOUT_S": str(TIMEOUT_S), "DATABASE_QUERY_TIMEOUT_S": str(QUERY_TIMEOUT_S),
               "MAX_CONNECTIONS": str(POOL)}
        env.update({name: str(value) for name, value in settings.items()})
        server = Fletcher(proxy.url, extra_env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        print(f"\n--- the end of server.log (Fletcher on :{server.port}; proxy: {proxy.accepted} connections "
              f"accepted, {proxy.resets} reset) ---\n{log_tail(server)}")
        server.stop()


def update(server, token, dataset, product, state, timeout=BOUND + 10):
    return call(server.port, "PUT", f"/api/data_product/{dataset}/update", [{"id": product, "state": state}], token,
                timeout=timeout)


def read(server, dataset, timeout=BOUND + 10):
    return call(server.port, "GET", f"/api/plan/{dataset}", timeout=timeout)


def states(plan):
    return {p["id"]: p["state"] for p in plan["data_products"]}


def concurrently(*requests):
    """Runs each request (a function of no arguments) on a thread of its own; their answers, in order."""
    answers = [None] * len(requests)

    def run(n):
        answers[n] = requests[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def check_database_down(answer):
    """/health while the database does not serve: 503 saying so, within the bound."""
    assert answer.status == 503, f"/health: expected 503, got {answer}"
    assert answer.json()["database"] == "down", answer
    assert answer.seconds <= BOUND, answer


def serves_again(server, token, dataset, product, state):
    """Whether an update is served now (after a fault); any other answer must be the documented 503."""
    answer = update(server, token, dataset, product, state)
    check_served_or_unavailable(answer, BOUND)
    return answer.status == 200


def pool_idle(server):
    """Whether no request holds or waits for a pooled connection (none left stuck on a dead one)."""
    return metric(server.port, "fletcher_db_pool_connections_in_use") == 0 and \
        metric(server.port, "fletcher_db_pool_waiting") == 0


def possible_states(attempts, initial):
    """What may be stored after `attempts` [(state, status)] made in order on one product: the
    last acknowledged state, or one tried after it whose answer was not a 200 (ambiguous)."""
    acknowledged = [n for n, (_, status) in enumerate(attempts) if status == 200]
    last = acknowledged[-1] if acknowledged else -1
    return {attempts[last][0] if acknowledged else initial} | {state for state, _ in attempts[last + 1:]}


def test_added_latency_slows_requests_but_keeps_them_correct_and_bounded(proxy, start_fletcher, database):
    latency = 0.5
    workers = 3 * POOL
    server = start_fletcher()
    api = API(server.base)
    plans = [api.submit([("a", True), ("b", True)], edges=[(0, 1)]) for _ in range(workers)]
    proxy.set_latency(down=latency)

    # One request at a time: each is answered, correctly, at least the latency later.
    dataset, ids = plans[0]
    for state in ["running", "success"]:
        answer = update(server, api.token, dataset, ids[0], state)
        assert answer.status == 200, answer
        assert states(answer.json())[ids[0]] == state
        assert answer.seconds >= latency, f"the proxy added no latency: {answer}"
    answer = read(server, dataset)
    assert answer.status == 200, answer
    assert states(answer.json()) == {ids[0]: "success", ids[1]: "queued"}

    # Three times as many clients as the pool holds, each updating and reading its own plan and
    # submitting a new one (a transaction of several statements, each 500 ms slower).
    attempts = {n: [("success" if n == 0 else "queued", 200)] for n in range(workers)}
    answers = []
    lock = threading.Lock()

    def client(n):
        dataset, ids = plans[n]
        for state in ["running", "success", "running"]:
            answer = update(server, api.token, dataset, ids[0], state)
            read_back = read(server, dataset)
            with lock:
                attempts[n].append((state, answer.status))
                answers.append(("update", answer))
                answers.append(("read", read_back))
            if answer.status == 200:
                assert states(answer.json())[ids[0]] == state
                if read_back.status == 200:  # reads what it wrote
                    assert states(read_back.json())[ids[0]] == state
        body = {"dataset": {"id": str(uuid.uuid4())}, "data_products": [
            {"id": str(uuid.uuid4()), "compute": "cams", "name": "p", "version": "1", "eager": True}], "dependencies": []}
        submitted = call(server.port, "POST", "/api/plan", body, api.token, timeout=BOUND + 10)
        with lock:
            answers.append(("submit", submitted))

    started = time.time()
    concurrently(*[lambda n=n: client(n) for n in range(workers)])
    took = time.time() - started
    for kind, answer in answers:
        check_served_or_unavailable(answer, BOUND)
    served = {kind: sum(1 for k, a in answers if k == kind and a.status == 200) for kind in ("update", "read", "submit")}
    refused = sum(1 for _, a in answers if a.status == 503)
    slowest = max(a.seconds for _, a in answers)
    print(f"\nwith {latency * 1000:.0f} ms added: {len(answers)} requests from {workers} clients in {took:.1f} s; "
          f"served {served}, {refused} answered 503; slowest {slowest:.1f} s")
    assert served["update"] > 0, "no update was served under latency"

    # The latency gone, everything is normal at once: every update and read served, the pool idle.
    proxy.set_latency()
    eventually(lambda: call(server.port, "GET", "/health", timeout=30).status == 200, timeout=60,
               what="/health to answer 200")
    for n, (dataset, ids) in enumerate(plans):
        assert stored_state(database, dataset, ids[0]) in possible_states(attempts[n], "queued")
        answer = update(server, api.token, dataset, ids[0], "success")
        assert answer.status == 200, answer
        answer = read(server, dataset)
        assert answer.status == 200 and states(answer.json())[ids[0]] == "success", answer
    eventually(lambda: pool_idle(server), timeout=60, what="the pool to be idle")


def test_a_connection_stalled_mid_transaction_fails_its_request_and_unlocks_the_dataset(proxy, start_fletcher, database):
    # Without the plan cache every mutation is a transaction: BEGIN, lock, read, write, COMMIT.
    server = start_fletcher(PLAN_CACHE_PRODUCTS=0)
    api = API(server.base)
    dataset, ids = api.submit([("a", True), ("b", True)], edges=[(0, 1)])
    held = proxy.hold_transaction(writes_to(dataset))
    try:
        # The update's connection stalls once its write reached PostgreSQL, before the commit.
        stalled = update(server, api.token, dataset, ids[0], "success")
        assert held.fired.is_set(), f"the update's transaction never reached its write: {stalled}"
        print(f"\nthe update stalled mid-transaction was answered {stalled}")
        check_unavailable(stalled, BOUND)

        # The dataset is not left locked: PostgreSQL ends the stalled transaction after its idle
        # limit, and another update (served on another connection) goes through.
        started = time.time()
        eventually(lambda: serves_again(server, api.token, dataset, ids[0], "failed"),
                   timeout=IDLE_IN_TRANSACTION_S + BOUND + 30, what="another update of the dataset to be served")
        print(f"another update of the dataset served {time.time() - started:.1f} s later, the connection still stalled")
    finally:
        held.release()

    # Nothing of the stalled transaction is stored: no success, no queued child, no history of it.
    assert stored_state(database, dataset, ids[0]) == "failed"
    plan = api.plan(dataset)
    assert states(plan) == {ids[0]: "failed", ids[1]: "waiting"}
    history = api.call("GET", f"/api/data_product/{dataset}/{ids[0]}/history?limit=100")["events"]
    assert not [e for e in history if e["kind"] == "state_change" and e["to"] == "success"], history

    # The held bytes delivered (the server has closed that session meanwhile), all is normal: the
    # pool has every connection back, and as many updates at once as it holds are served.
    eventually(lambda: pool_idle(server), timeout=BOUND + 30, what="the pool to have every connection back")
    answers = concurrently(*[lambda s=s: update(server, api.token, dataset, ids[0], s)
                             for s in ["running", "success", "running"]])
    assert [a.status for a in answers] == [200, 200, 200], answers


def test_a_stalled_database_answers_503_in_time_and_serves_again_when_it_flows(proxy, start_fletcher, database):
    server = start_fletcher()
    api = API(server.base)
    dataset, ids = api.submit([("a", True), ("b", True)], edges=[(0, 1)])
    others = [api.submit([("a", True)]) for _ in range(POOL)]
    for state in ["running", "success"]:
        assert update(server, api.token, dataset, ids[0], state).status == 200
    assert read(server, dataset).status == 200

    proxy.stall()
    try:
        answers = concurrently(*[lambda d=d, i=i: update(server, api.token, d, i[0], "running") for d, i in others],
                               lambda: read(server, dataset),
                               lambda: call(server.port, "GET", "/health", timeout=BOUND + 10))
        print(f"\nwhile every connection stalled: {answers}")
    finally:
        proxy.resume()
    for answer in answers[:-1]:
        check_unavailable(answer, BOUND)
    check_database_down(answers[-1])

    # The bytes flow again, connections and all: served again without a restart.
    eventually(lambda: serves_again(server, api.token, dataset, ids[0], "running"), timeout=BOUND + 60,
               what="updates to be served again")
    eventually(lambda: call(server.port, "GET", "/health", timeout=30).status == 200, timeout=60, what="/health 200")
    for (d, i) in others:
        assert stored_state(database, d, i[0]) in ("queued", "running")
        assert update(server, api.token, d, i[0], "success").status == 200
    eventually(lambda: pool_idle(server), timeout=60, what="the pool to be idle")


@pytest.mark.parametrize("write_path", ["one statement", "transaction"])
def test_a_commit_cut_off_is_never_acknowledged_unless_stored(write_path, proxy, start_fletcher, database):
    # With the plan cache, an update of a cached plan is one statement committing on its own; without
    # it, BEGIN … COMMIT. (With the cache, an update after a commit Fletcher did not see committed
    # finds its cached plan stale and takes the transaction's way, so both are met.)
    server = start_fletcher(**({} if write_path == "one statement" else {"PLAN_CACHE_PRODUCTS": 0}))
    api = API(server.base)
    dataset, ids = api.submit([("a", True), ("b", True)], edges=[(0, 1)])
    product = ids[0]
    outcomes = []  # (what was lost, the path the trap met, Fletcher's status, whether it is stored)
    for n in range(20):
        lose = ["answer", "commit"][n % 2]
        before = stored_state(database, dataset, product)
        target = "success" if before == "running" else "running"
        trap = proxy.trap_commit(writes_to(dataset), lose=lose)
        answer = update(server, api.token, dataset, product, target)
        if not trap.fired.is_set():
            proxy.disarm(trap)
        if not trap.fired.is_set():
            # Refused before it wrote anything (the database was still taken for down after the
            # previous cut): the documented 503, and nothing changed.
            check_unavailable(answer, BOUND)
            assert stored_state(database, dataset, product) == before
            outcomes.append((lose, "refused before writing", answer.status, False))
            continue
        assert trap.done.wait(30), "the trapped commit never completed"
        stored = stored_state(database, dataset, product) == target
        # The proxy's view of the commit and the database's agree (the server said COMMIT, or the
        # statement's own answer, exactly when the change is stored).
        assert stored == bool(trap.committed), (trap, trap.transaction)
        if answer.status == 200:
            assert stored, f"a 200 for an update that is not stored ({lose} lost): {answer}"
        else:
            check_unavailable(answer, BOUND)
        # What Fletcher serves now is what is stored.
        expected = target if stored else before

        def serves_stored():
            plan = read(server, dataset)
            check_served_or_unavailable(plan, BOUND)
            return plan.status == 200 and states(plan.json())[product] == expected
        eventually(serves_stored, timeout=BOUND + 30, what=f"Fletcher to serve the stored state {expected}")
        path = "statement" if trap.transaction.begin is None else "transaction"
        outcomes.append((lose, path, answer.status, stored))

    print(f"\n{write_path}: (lost, path, status, stored): " + ", ".join(map(str, outcomes)))
    tally = {}
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    print("tally: " + json.dumps({" ".join(map(str, k)): v for k, v in tally.items()}))
    assert sum(1 for o in outcomes if o[1] != "refused before writing") >= 10, "too few commits were cut off"
    # The history has exactly the stored changes, in a chain.
    history = api.call("GET", f"/api/data_product/{dataset}/{product}/history?limit=100")["events"]
    changes = [e for e in reversed(history) if e["kind"] == "state_change"]
    for earlier, later in zip(changes, changes[1:]):
        assert later["from"] == earlier["to"], changes
    assert changes[-1]["to"] == stored_state(database, dataset, product)
    assert sum(1 for e in changes if e["to"] in ("running", "success")) == sum(1 for o in outcomes if o[3])


def test_a_silent_path_answers_503_in_time_and_service_resumes_when_it_heals(proxy, start_fletcher, database):
    server = start_fletcher()
    api = API(server.base)
    plans = [api.submit([("a", True)]) for _ in range(POOL + 2)]
    attempts = {n: [("queued", 200)] for n in range(len(plans))}
    for n, (dataset, ids) in enumerate(plans):
        answer = update(server, api.token, dataset, ids[0], "running")
        assert answer.status == 200, answer
        attempts[n].append(("running", 200))
        assert read(server, dataset).status == 200

    proxy.half_open()
    answers = concurrently(*[lambda d=d, i=i: update(server, api.token, d, i[0], "success") for d, i in plans],
                           lambda: read(server, plans[0][0]),
                           lambda: call(server.port, "GET", "/health", timeout=BOUND + 10))
    print(f"\nwhile the path was silent: {answers}")
    for n, answer in enumerate(answers[:len(plans)]):
        attempts[n].append(("success", answer.status))
    for answer in answers[:-1]:
        check_unavailable(answer, BOUND)
    check_database_down(answers[-1])
    # Still silent, a while later: refused in time again (no request left queueing behind the dead
    # connections).
    check_unavailable(update(server, api.token, plans[0][0], plans[0][1][0], "success"), BOUND)
    attempts[0].append(("success", 503))

    proxy.heal()
    healed = time.time()
    healed_at = psql(database, "SELECT now()")
    dataset, ids = plans[0]
    eventually(lambda: serves_again(server, api.token, dataset, ids[0], "failed"), timeout=BOUND + 60,
               what="updates to be served over new connections")
    attempts[0].append(("failed", 200))
    print(f"served again {time.time() - healed:.1f} s after the path healed")
    eventually(lambda: call(server.port, "GET", "/health", timeout=30).status == 200, timeout=60, what="/health 200")
    for n, (dataset, ids) in enumerate(plans):
        assert stored_state(database, dataset, ids[0]) in possible_states(attempts[n], "queued")
    # The pool is whole again: as many updates at once as it holds connections are served.
    answers = concurrently(*[lambda d=d, i=i: update(server, api.token, d, i[0], "success") for d, i in plans[:POOL - 1]])
    assert [a.status for a in answers] == [200] * (POOL - 1), answers
    eventually(lambda: pool_idle(server), timeout=60, what="the pool to be idle")
    # The listener for other processes' changes (whose connection went silent too) listens again,
    # on a new connection: live updates from other processes resume.
    listening = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fletcher listener' "
                 f"AND backend_start > '{healed_at}'")
    eventually(lambda: psql(database, listening) == "1", timeout=BOUND + 60, what="the listener to listen again")


def test_every_connection_reset_under_load_and_service_resumes_by_itself(proxy, start_fletcher, database):
    server = start_fletcher()
    api = API(server.base)
    workers = 6
    plans = [api.submit([("a", True), ("b", True)], edges=[(0, 1)]) for _ in range(workers)]
    attempts = {n: [] for n in range(workers)}
    answers = []
    done = threading.Event()
    lock = threading.Lock()

    def client(n):
        dataset, ids = plans[n]
        count = 0
        while not done.is_set():
            state = ["running", "success"][count % 2]
            answer = update(server, api.token, dataset, ids[0], state)
            read_back = read(server, dataset)
            with lock:
                attempts[n].append((state, answer.status))
                answers.append((time.time(), answer))
                answers.append((time.time(), read_back))
            count += 1

    def served():
        with lock:
            return sum(1 for _, a in answers if a.status == 200)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    resets = []
    try:
        for _ in range(3):
            target = served() + 40
            eventually(lambda: served() >= target, timeout=BOUND + 60, what="40 more requests served")
            resets.append((time.time(), proxy.reset_all()))
        target = served() + 40
        eventually(lambda: served() >= target, timeout=BOUND + 60, what="40 requests served after the last reset")
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=BOUND + 30)
    for _, answer in answers:
        check_served_or_unavailable(answer, BOUND)
    refused = sum(1 for _, a in answers if a.status == 503)
    for at, connections in resets:
        back = min((t - at for t, a in answers if t > at and a.status == 200), default=None)
        print(f"\nreset {connections} connections; served again {back:.2f} s later" if back is not None else "")
    print(f"{len(answers)} requests, {refused} answered 503")
    for n, (dataset, ids) in enumerate(plans):
        assert stored_state(database, dataset, ids[0]) in possible_states(attempts[n], "queued")
    eventually(lambda: call(server.port, "GET", "/health", timeout=30).status == 200, timeout=60, what="/health 200")
    eventually(lambda: pool_idle(server), timeout=60, what="the pool to be idle")

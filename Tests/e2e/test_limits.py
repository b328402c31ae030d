"""Limits read from the environment and honoured by a running server: MAX_CONCURRENT_REQUESTS
(beyond it, a fast 503 naming the limit) and DATABASE_TIMEOUT_S (PostgreSQL: how long a request
waits for a pooled connection before its 503). Polls with deadlines; no fixed sleeps."""
import json
import shutil
import subprocess
import tempfile
import threading

import pytest

from conftest import API
from servers import Fletcher, HeldRequest, eventually, fresh_postgres_database, send
from test_cli import postgres_tool


def test_max_concurrent_requests_from_the_environment_refuses_requests_beyond_it():
    folder = tempfile.mkdtemp(prefix="fletcher-limits-")
    server = Fletcher(f"sqlite:{folder}/limits.sqlite", extra_env={"MAX_CONCURRENT_REQUESTS": "2"})
    try:
        token = API(server.base).token
        held = [HeldRequest(server.port, token), HeldRequest(server.port, token)]
        refused = []

        def at_the_limit():
            # A request that arrives before the previous one has quite ended is refused too: send
            # another in its place.
            for n, request in enumerate(held):
                if request.answered():
                    request.connection.close()
                    held[n] = HeldRequest(server.port, token)
            status, kind, body, _ = send(server.port, "GET", "/health")
            if status == 503:
                refused.append((kind, json.loads(body)))
            return status == 503

        eventually(at_the_limit, timeout=60, what="a request refused at the limit of 2")
        kind, problem = refused[0]
        assert kind.startswith("application/problem+json")
        assert problem["status"] == 503
        assert problem["detail"] == "The server is serving its limit of 2 requests at once; retry shortly"
        # Both requests in progress end normally, and then requests are served again.
        assert [request.finish() for request in held] == [200, 200]
        eventually(lambda: send(server.port, "GET", "/health")[0] == 200, what="requests served again")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Locked:
    """A psql session holding an exclusive lock on the dataset table until `release`."""

    def __init__(self, url):
        self.session = subprocess.Popen([postgres_tool("psql"), "-X", "-q", "-At", "-d", url], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.session.stdin.write("BEGIN; LOCK TABLE dataset IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        self.session.stdin.flush()
        assert self.session.stdout.readline().strip() == "locked"

    def release(self):
        if self.session.poll() is None:
            self.session.stdin.write("ROLLBACK;\n")
            self.session.stdin.close()
            self.session.wait(timeout=30)


def waiting_on_the_lock(url, count):
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
           "AND wait_event_type = 'Lock' AND backend_type = 'client backend'")
    out = subprocess.run([postgres_tool("psql"), "-X", "-At", "-d", url, "-c", sql], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip()) >= count


class Call:
    """One request answered on a thread of its own."""

    def __init__(self, server, token, method, path, body):
        self.answer = None
        self.thread = threading.Thread(target=self._run, args=(server, token, method, path, body), daemon=True)
        self.thread.start()

    def _run(self, server, token, method, path, body):
        status, kind, payload, _ = send(server.port, method, path, body, token, headers={"Connection": "close"})
        self.answer = (status, kind, payload)

    def result(self, timeout=90):
        self.thread.join(timeout)
        assert self.answer is not None, "no answer"
        return self.answer


def test_database_timeout_from_the_environment_bounds_the_wait_for_a_connection():
    """Two servers on one database, each with two pooled connections (one of them its listener's),
    while a lock holds every write to a dataset: a server with the default DATABASE_TIMEOUT_S (5 s)
    answers a request that waits for a connection with the documented 503; one with
    DATABASE_TIMEOUT_S=3600 keeps a request that started waiting earlier waiting, and serves it
    once the lock is gone."""
    url = fresh_postgres_database()
    if url is None:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/with-postgres.sh)")
    patient = Fletcher(url, extra_env={"MAX_CONNECTIONS": "2", "DATABASE_TIMEOUT_S": "3600"})
    default = Fletcher(url, extra_env={"MAX_CONNECTIONS": "2"})
    lock = None
    try:
        patient_api, default_api = API(patient.base), API(default.base)
        datasets = [patient_api.submit([("p", True)]) for _ in range(2)] + [default_api.submit([("p", True)]) for _ in range(2)]

        def update(server, api, n):
            dataset, ids = datasets[n]
            return Call(server, api.token, "PUT", f"/api/data_product/{dataset}/update", [{"id": ids[0], "state": "running"}])

        lock = Locked(url)
        patient_blocked = update(patient, patient_api, 0)
        eventually(lambda: waiting_on_the_lock(url, 1), timeout=60, what="the first write to wait on the lock")
        patient_waiting = update(patient, patient_api, 1)   # no connection left: waits for one
        default_blocked = update(default, default_api, 2)
        eventually(lambda: waiting_on_the_lock(url, 2), timeout=60, what="the second write to wait on the lock")
        default_waiting = update(default, default_api, 3)

        status, kind, payload = default_waiting.result()
        assert status == 503
        assert kind.startswith("application/problem+json")
        assert json.loads(payload)["detail"] == "The database is unavailable; retry later"
        assert patient_waiting.answer is None, "the patient server's request gave up"
        assert not waiting_on_the_lock(url, 3), "the patient server's second write had a connection of its own"

        lock.release()
        assert patient_waiting.result()[0] == 200
        assert patient_blocked.result()[0] == 200
        assert default_blocked.result()[0] == 200
    finally:
        if lock:
            lock.release()
        patient.stop()
        default.stop()

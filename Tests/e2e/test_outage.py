"""A PostgreSQL outage under load: the test stops the (throwaway) database server while a client
keeps updating a plan, checks that requests fail fast with 503 problem+json and that /health and
/ready say the database is down, starts the database again, and checks that service resumes by
itself with no half-written plan. Polls with deadlines; no fixed sleeps."""
import http.client
import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import API
from servers import Fletcher, fresh_postgres_database
from test_crash import check_rules


def pg_ctl(*args):
    binary = os.path.join(os.environ["FLETCHER_TEST_POSTGRES_BIN"], "pg_ctl")
    prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    subprocess.run(prefix + [binary, "-D", os.environ["FLETCHER_TEST_POSTGRES_DATA"], *args], check=True,
                   stdout=subprocess.DEVNULL)


def request(server, method, path, token=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.time()
    connection.request(method, path, body=None if body is None else json.dumps(body),
                       headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), payload, time.time() - started


@pytest.mark.skipif(not os.environ.get("FLETCHER_TEST_POSTGRES_DATA"), reason="needs the throwaway PostgreSQL of scripts/test.sh")
def test_requests_fail_fast_while_the_database_is_down_and_resume_after():
    server = Fletcher(fresh_postgres_database())
    data = os.environ["FLETCHER_TEST_POSTGRES_DATA"]
    with open(os.path.join(data, "postmaster.opts")) as f:
        options = re.sub(r'"-D" "[^"]*"', "", f.read().split(" ", 1)[1]).strip()
    stopped = False
    try:
        api = API(server.base)
        dataset, ids = api.submit([("a", False), ("b", True)], edges=[(0, 1)])
        statuses = []
        done = threading.Event()

        def load():
            n = 0
            while not done.is_set():
                state = ["running", "success"][n % 2]
                status, _, _, _ = request(server, "PUT", f"/api/data_product/{dataset}/update", api.token,
                                          [{"id": ids[0], "state": state}])
                statuses.append(status)
                n += 1

        worker = threading.Thread(target=load)
        worker.start()
        deadline = time.time() + 20
        while len(statuses) < 20 and time.time() < deadline:
            time.sleep(0.01)
        pg_ctl("-m", "fast", "stop")
        stopped = True
        for _ in range(5):
            status, content_type, payload, seconds = request(server, "GET", f"/api/plan/{dataset}")
            assert status == 503 and content_type == "application/problem+json", (status, payload[:200])
            assert seconds < 2.5, f"answered after {seconds:.1f} s"
        for path in ["/health", "/ready"]:
            status, _, payload, seconds = request(server, "GET", path)
            assert status == 503 and json.loads(payload)["database"] == "down" and seconds < 2.5
        failed_while_down = statuses.count(503)
        pg_ctl("-l", os.path.join(data, "..", "server.log"), "-o", options, "-w", "start")
        stopped = False
        deadline = time.time() + 30
        while time.time() < deadline and request(server, "GET", "/health")[0] != 200:
            time.sleep(0.05)
        assert request(server, "GET", "/ready")[0] == 200
        count = len(statuses)
        deadline = time.time() + 30
        while time.time() < deadline and not (len(statuses) > count + 5 and statuses[-1] == 200):
            time.sleep(0.05)
        done.set()
        worker.join(timeout=30)
        assert failed_while_down > 0 and set(statuses) <= {200, 503}, set(statuses)
        assert statuses[-1] == 200
        plan = api.plan(dataset)
        check_rules(plan)
        assert {p["state"] for p in plan["data_products"] if p["name"] == "a"} <= {"running", "success"}
        print(f"{len(statuses)} updates, {statuses.count(503)} answered 503 while the database was down")
    finally:
        if stopped:
            pg_ctl("-l", os.path.join(data, "..", "server.log"), "-o", options, "-w", "start")
        server.stop()

"""A PostgreSQL outage under load: the test stops the (throwaway) database server while a client
keeps updating a plan, checks that requests fail fast with 503 problem+json and that /health and
/ready say the database is down, starts the database again, and checks that service resumes by
itself with no half-written plan. Polls with deadlines; no fixed sleeps."""
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import API
from servers import Fletcher, eventually, free_port, fresh_postgres_database, send
from test_crash import check_rules


def pg_ctl(*args):
    binary = os.path.join(os.environ["FLETCHER_TEST_POSTGRES_BIN"], "pg_ctl")
    prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    subprocess.run(prefix + [binary, "-D", os.environ["FLETCHER_TEST_POSTGRES_DATA"], *args], check=True,
                   stdout=subprocess.DEVNULL)


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
        answers = []  # (status, seconds) of each update, in order
        done = threading.Event()

        def load():
            n = 0
            while not done.is_set():
                state = ["running", "success"][n % 2]
                status, _, _, seconds = send(server.port, "PUT", f"/api/data_product/{dataset}/update",
                                             [{"id": ids[0], "state": state}], api.token)
                answers.append((status, seconds))
                n += 1

        worker = threading.Thread(target=load)
        worker.start()
        eventually(lambda: len(answers) >= 20, what="20 updates")
        pg_ctl("-m", "fast", "stop")
        stopped = True
        stopped_at = time.time()
        for _ in range(5):
            status, content_type, payload, seconds = send(server.port, "GET", f"/api/plan/{dataset}")
            assert status == 503 and content_type == "application/problem+json", (status, payload[:200])
            assert json.loads(payload)["status"] == 503
            assert seconds < 2.5, f"answered after {seconds:.1f} s"
        for path in ["/health", "/ready"]:
            status, _, payload, seconds = send(server.port, "GET", path)
            assert status == 503 and json.loads(payload)["database"] == "down" and seconds < 2.5
        # The update load fails fast too, the request caught in flight by the stop included.
        # The database stays away a while (OUTAGE_S, 3 s by default), long enough for the pool's
        # reconnection attempts to back off.
        outage = float(os.environ.get("OUTAGE_S", "3"))
        eventually(lambda: sum(1 for status, _ in answers if status == 503) >= 20 and time.time() - stopped_at >= outage,
                   timeout=outage + 30, what="20 updates answered 503")
        failed_while_down = sum(1 for status, _ in answers if status == 503)
        slowest = max(seconds for _, seconds in answers)
        assert slowest < 2.5, f"an update took {slowest:.1f} s"
        pg_ctl("-l", os.path.join(data, "..", "server.log"), "-o", options, "-w", "start")
        stopped = False
        restarted = time.time()
        eventually(lambda: send(server.port, "GET", "/health")[0] == 200, timeout=30, what="/health to be 200 again")
        recovered = time.time() - restarted
        assert send(server.port, "GET", "/ready")[0] == 200
        count = len(answers)
        eventually(lambda: len(answers) > count + 5 and answers[-1][0] == 200, timeout=30, what="updates to succeed again")
        done.set()
        worker.join(timeout=30)
        statuses = [status for status, _ in answers]
        assert set(statuses) <= {200, 503}, set(statuses)
        plan = api.plan(dataset)
        check_rules(plan)
        assert {p["state"] for p in plan["data_products"] if p["name"] == "a"} <= {"running", "success"}
        print(f"{len(statuses)} updates, {failed_while_down} answered 503 while the database was down "
              f"(slowest {slowest * 1000:.0f} ms); down {restarted - stopped_at:.1f} s; "
              f"healthy {recovered:.2f} s after the restart")
    finally:
        if stopped:
            pg_ctl("-l", os.path.join(data, "..", "server.log"), "-o", options, "-w", "start")
        server.stop()


class Forwarder:
    """A TCP forwarder on a loopback port of its own to `target` (host, port), started when asked:
    the database's address answers only from then on."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.listener = None
        self.sockets = []

    def start(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        if self.listener:
            self.listener.close()
        for s in self.sockets:
            s.close()


@pytest.mark.skipif(not os.environ.get("FLETCHER_TEST_POSTGRES_URL"), reason="needs the throwaway PostgreSQL of scripts/test.sh")
def test_a_server_started_before_its_database_says_why_and_serves_once_it_answers():
    url = fresh_postgres_database()
    host, port = re.match(r"postgres://[^@]+@([^:/]+):(\d+)/", url).groups()
    forwarder = Forwarder(free_port(), (host, int(port)))
    server = Fletcher(re.sub(r":\d+/", f":{forwarder.port}/", url, count=1), wait_healthy=False)
    try:
        # Listening already, and saying why it cannot serve yet.
        for path in ["/health", "/ready"]:
            status, _, payload, _ = send(server.port, "GET", path)
            health = json.loads(payload)
            assert status == 503 and health["database"] == "down", (status, health)
            eventually(lambda: "Connection refused" in json.loads(send(server.port, "GET", path)[2]).get("problem", ""),
                       what=f"{path} to name the refused connection")
        status, content_type, payload, _ = send(server.port, "POST", "/api/authenticate", {"service": "e2e", "key": "x"})
        assert status == 503 and content_type == "application/problem+json", (status, payload)
        assert "the database is not ready yet" in json.loads(payload)["detail"]
        # Said in the log at error level, with the cause.
        eventually(lambda: re.search(r"error .*Connection refused.*cannot use the database", server.output()) is not None,
                   what="the error in the log")

        forwarder.start()
        eventually(lambda: send(server.port, "GET", "/health")[0] == 200, timeout=60, what="/health to be 200")
        api = API(server.base)
        dataset, ids = api.submit([("a", False)])
        api.update(dataset, ids[0], "running")
        assert api.plan(dataset)["data_products"][0]["state"] == "running"
    finally:
        server.stop()
        forwarder.stop()

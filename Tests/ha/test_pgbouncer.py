"""Fletcher behind Debian's PgBouncer 1.18 in transaction mode, as a new user would set it up
(`pool_mode = transaction`, `ignore_startup_parameters = extra_float_digits`): run under
scripts/with-pgbouncer.sh, which `make test-ha` does.

- Without `DATABASE_POOLER=transaction` Fletcher cannot connect through it; it listens anyway,
  `/health` answers 503 naming the refused startup parameter and the setting to use, and the log
  says so at `error` level.
- With it, two processes share plans through the pooler, and a live plan page on one follows a
  change made through the other: within milliseconds through a listener straight to PostgreSQL
  (`DATABASE_LISTEN_URL`), within the poll interval (2 s) without one.

Polls with generous deadlines; no fixed sleeps."""
import json
import os
import re
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from conftest import API  # noqa: E402
from servers import Fletcher, eventually, fresh_postgres_database, send  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("FLETCHER_TEST_POSTGRES_DIRECT_URL"),
                                reason="needs PgBouncer in front of the test PostgreSQL (scripts/with-pgbouncer.sh)")


def straight(url):
    """`url`'s database on the PostgreSQL server itself, not through PgBouncer."""
    server = re.match(r"postgres://[^@]+@([^/]+)/", os.environ["FLETCHER_TEST_POSTGRES_DIRECT_URL"]).group(1)
    return re.sub(r"@[^/]+/", f"@{server}/", url, count=1)


def problem(server):
    return json.loads(send(server.port, "GET", "/health")[2]).get("problem", "")


def test_without_the_pooler_setting_fletcher_says_why_it_cannot_connect():
    server = Fletcher(fresh_postgres_database(), wait_healthy=False)
    try:
        eventually(lambda: "unsupported startup parameter" in problem(server), timeout=60,
                   what="/health to name the refused startup parameter")
        assert send(server.port, "GET", "/health")[0] == 503
        assert "set DATABASE_POOLER=transaction" in problem(server)
        eventually(lambda: re.search(r" error .*unsupported startup parameter.*cannot use the database", server.output()),
                   what="the error in the log")
    finally:
        server.stop()


class PlanEvents:
    """The `plan` events of a plan page's live stream (`GET /plan/{id}/events`), read on a thread."""

    def __init__(self, port, dataset):
        self.events = []
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.socket.sendall(f"GET /plan/{dataset}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        try:
            while chunk := self.socket.recv(65536):
                buffer += chunk
                for data in re.findall(rb"event: plan\ndata: ([^\n]*)\n\n", buffer):
                    self.events.append((time.time(), json.loads(data)))
                buffer = buffer[buffer.rfind(b"\n\n") + 2:] if b"\n\n" in buffer else buffer
        except OSError:
            pass

    def close(self):
        self.socket.close()


@pytest.mark.parametrize("listen", [True, False], ids=["listener straight to PostgreSQL", "no listener"])
def test_a_live_page_on_one_process_follows_a_change_made_through_another(listen):
    url = fresh_postgres_database()
    env = {"DATABASE_POOLER": "transaction"}
    if listen:
        env["DATABASE_LISTEN_URL"] = straight(url)
    writer, reader = Fletcher(url, extra_env=env), Fletcher(url, extra_env=env)
    page = None
    try:
        api = API(writer.base)
        dataset, ids = api.submit([("a", False), ("b", False)], edges=[(0, 1)])
        page = PlanEvents(reader.port, dataset)
        eventually(lambda: len(page.events) >= 1, timeout=60, what="the page's first event")
        lags = []
        for state in ["running", "success"]:
            seen = len(page.events)
            sent = time.time()
            api.update(dataset, ids[0], state)
            eventually(lambda: any(event["states"].get(ids[0]) == state for _, event in page.events[seen:]),
                       timeout=60, what=f"the page to show {state}")
            lags.append(next(at for at, event in page.events[seen:] if event["states"].get(ids[0]) == state) - sent)
        # Written through one process, read through the other: the same plan.
        assert API(reader.base).plan(dataset) == api.plan(dataset)
        print(f"{'with' if listen else 'without'} a listener: the page followed in "
              + ", ".join(f"{lag * 1000:.0f} ms" for lag in lags))
    finally:
        if page:
            page.close()
        writer.stop()
        reader.stop()

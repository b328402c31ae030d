"""The fault proxy itself (faultproxy.py), with psql as its client: latency is added, a stall holds
bytes and delivers them on resume, a reset cuts open sessions, a half-open path is silent and new
connections work once it heals, a commit trap loses the commit or only its answer (and says which
the server did), and a hold stops a transaction in its middle with its row lock held. The fault
tests of Fletcher rely on each of these. Needs the throwaway PostgreSQL of scripts/with-postgres.sh."""
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy, writes_to  # noqa: E402
from faultsupport import eventually, postgres_database, postgres_tool, psql, url_parts  # noqa: E402


@pytest.fixture
def setup():
    """(the database's URL, a proxy in front of it, the URL through the proxy), with a table t."""
    url = postgres_database()
    psql(url, "CREATE TABLE t (id uuid PRIMARY KEY, v int NOT NULL)")
    user, host, port, name, _ = url_parts(url)
    proxy = FaultProxy(host, port)
    yield url, proxy, f"postgres://{user}@127.0.0.1:{proxy.port}/{name}?sslmode=disable&connect_timeout=5"
    proxy.close()


def run(url, sql, timeout=60):
    """psql's (exit status, output, errors) for `sql`, its statements sent one by one."""
    done = subprocess.run([postgres_tool("psql"), "-X", "-At", "-d", url], input=sql, capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def value(url, row):
    return psql(url, f"SELECT v FROM t WHERE id = '{row}'")


def test_latency_stall_reset_and_half_open(setup):
    url, proxy, through = setup
    assert run(through, "SELECT 1;")[:2] == (0, "1")

    proxy.set_latency(down=0.3)
    started = time.time()
    assert run(through, "SELECT 2;")[:2] == (0, "2")
    assert time.time() - started >= 0.3
    proxy.set_latency()

    # A stall holds the new session's bytes: PostgreSQL never sees it start; on resume it runs.
    proxy.stall()
    accepted = proxy.accepted
    answers = []
    thread = threading.Thread(target=lambda: answers.append(run(through, "SELECT 'held';")))
    thread.start()
    eventually(lambda: proxy.accepted > accepted, what="the connection to be accepted")
    assert psql(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql' AND pid <> pg_backend_pid()") == "0"
    assert thread.is_alive()
    proxy.resume()
    thread.join(timeout=60)
    assert answers[0][:2] == (0, "held")

    # A reset cuts a session in the middle of a query.
    answers = []
    thread = threading.Thread(target=lambda: answers.append(run(through, "SELECT pg_sleep(60);")))
    thread.start()
    eventually(lambda: psql(url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
                                 "AND pid <> pg_backend_pid()") == "1", what="the query to run")
    assert proxy.reset_all() >= 1
    thread.join(timeout=30)
    assert answers[0][0] != 0 and "connection" in answers[0][2], answers

    # Half-open: a new session never starts (psql gives up on its connect_timeout); healed, new
    # ones work and the silent one stays open.
    proxy.half_open()
    assert run(through, "SELECT 3;")[0] != 0
    proxy.heal()
    assert run(through, "SELECT 4;")[:2] == (0, "4")
    assert proxy.open_connections() >= 1


@pytest.mark.parametrize("explicit", [True, False], ids=["BEGIN-COMMIT", "statement on its own"])
def test_commit_traps(setup, explicit):
    url, proxy, through = setup
    row = uuid.uuid4()
    psql(url, f"INSERT INTO t VALUES ('{row}', 0)")

    def write(v):
        sql = f"UPDATE t SET v = {v} WHERE id = '{row}';"
        return run(through, f"BEGIN;\n{sql}\nCOMMIT;\n" if explicit else sql)

    trap = proxy.trap_commit(writes_to(row), lose="commit")
    status, _, errors = write(1)
    assert trap.done.wait(30) and trap.committed is False
    assert status != 0 and "connection" in errors, errors
    assert value(url, row) == "0"

    trap = proxy.trap_commit(writes_to(row), lose="answer")
    status, _, errors = write(2)
    assert trap.done.wait(30) and trap.committed is True, trap
    assert status != 0 and "connection" in errors, errors
    assert value(url, row) == "2"

    # A trap on another row does not fire.
    other = proxy.trap_commit(writes_to(uuid.uuid4()), lose="commit")
    assert write(3)[0] == 0 and value(url, row) == "3"
    assert not other.fired.is_set()
    proxy.disarm(other)


def test_a_held_transaction_keeps_its_row_lock_until_released(setup):
    url, proxy, through = setup
    row = uuid.uuid4()
    psql(url, f"INSERT INTO t VALUES ('{row}', 0)")
    held = proxy.hold_transaction(writes_to(row))
    answers = []
    thread = threading.Thread(target=lambda: answers.append(
        run(through, f"BEGIN;\nUPDATE t SET v = 1 WHERE id = '{row}';\nCOMMIT;\n")))
    thread.start()
    assert held.done.wait(30)
    # The update ran and holds its lock; another writer waits for it.
    locked = subprocess.run([postgres_tool("psql"), "-X", "-At", "-d", url, "-c",
                             f"SET lock_timeout = '500ms'; UPDATE t SET v = 9 WHERE id = '{row}'"],
                            capture_output=True, text=True, timeout=60)
    assert "lock timeout" in locked.stderr, locked.stderr
    assert thread.is_alive()
    held.release()
    thread.join(timeout=60)
    assert answers[0][0] == 0, answers
    assert value(url, row) == "1"

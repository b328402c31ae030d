"""What the fault tests of Tests/ha share: Tests/e2e's process helpers on the import path, requests
with a time limit of their own (an unanswered request is a result, not an exception), the check of
an answer given while the database misbehaves, and reads of the truth straight from PostgreSQL."""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)

from conftest import API, BINARY, KEY  # noqa: E402,F401 — Tests/e2e/conftest.py, imported as a module
from servers import Fletcher, eventually, free_port, fresh_postgres_database, send  # noqa: E402,F401


class Answer:
    """One request's outcome: `status` is the HTTP status, None when nothing came back within the
    time limit, or "broken" when the connection failed; `seconds` is how long it took."""

    def __init__(self, status, headers, body, seconds, error=None):
        self.status, self.headers, self.body, self.seconds, self.error = status, headers, body, seconds, error

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        detail = self.error or self.body[:160].decode("utf-8", "replace")
        return f"<{self.status} after {self.seconds:.2f} s: {detail}>"


def call(port, method, path, body=None, token=None, timeout=120):
    """One request on a connection of its own, waiting at most `timeout` seconds for the answer. A
    `body` that is not bytes is sent as JSON."""
    headers = {"Connection": "close"}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.time()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload, time.time() - started)
    except TimeoutError:
        return Answer(None, {}, b"", time.time() - started, error=f"no answer within {timeout} s")
    except (OSError, http.client.HTTPException) as error:
        return Answer("broken", {}, b"", time.time() - started, error=repr(error))
    finally:
        connection.close()


def check_unavailable(answer, bound):
    """`answer` is the documented answer of a database that does not serve: 503 problem+json with
    Retry-After, within `bound` seconds."""
    assert answer.status == 503, f"expected 503, got {answer}"
    assert answer.content_type.startswith("application/problem+json"), answer.content_type
    assert answer.json()["status"] == 503, answer
    assert answer.headers.get("retry-after"), f"503 without Retry-After: {answer.headers}"
    assert answer.seconds <= bound, f"the 503 took {answer.seconds:.1f} s (bound {bound} s)"


def check_served_or_unavailable(answer, bound):
    """`answer` is a 200, or the documented 503, within `bound` seconds: no 500, no hang."""
    assert answer.status in (200, 503), f"expected 200 or 503, got {answer}"
    if answer.status == 503:
        check_unavailable(answer, bound)
    assert answer.seconds <= bound, f"answered after {answer.seconds:.1f} s (bound {bound} s): {answer}"


def postgres_database():
    """A fresh database on the test PostgreSQL server, as a URL; skips the test without one."""
    url = fresh_postgres_database()
    if url is None:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/with-postgres.sh)")
    return url


def metric(port, name):
    """The sum of a metric's samples in /metrics (None when the server does not answer)."""
    answer = call(port, "GET", "/metrics", timeout=30)
    if answer.status != 200:
        return None
    total = None
    for line in answer.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def postgres_tool(name):
    folder = os.environ.get("FLETCHER_TEST_POSTGRES_BIN")
    return os.path.join(folder, name) if folder else shutil.which(name) or name


def psql(url, sql):
    """`sql`'s result as text, asked of PostgreSQL directly (not through the proxy)."""
    return subprocess.run([postgres_tool("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def stored_state(url, dataset, product):
    """A data product's state as stored, read from PostgreSQL itself."""
    return psql(url, f"SELECT state FROM data_product WHERE dataset_id = '{dataset}' AND id = '{product}'")


def url_parts(url):
    """(user, host, port, database, query) of a postgres:// URL without a password."""
    match = re.match(r"postgres(?:ql)?://([^@/]+)@([^:/]+):(\d+)/([^?]+)(\?.*)?", url)
    user, host, port, database, query = match.groups()
    return user, host, int(port), database, query or ""


def log_tail(server, lines=25):
    """The end of a Fletcher process's log, for the test's output: its last `lines` messages, a
    message repeated in a row (times aside) shown once with its count."""
    collapsed = []  # [message, count, first line]
    for line in server.output().splitlines():
        message = re.sub(r"^\S*\d{4}-\d\d-\d\dT\S+\s+", "", line)
        if collapsed and collapsed[-1][0] == message:
            collapsed[-1][1] += 1
        else:
            collapsed.append([message, 1, line])
    shown = [line if count == 1 else f"{line}   (and {count - 1} more times)" for _, count, line in collapsed[-lines:]]
    return "\n".join(shown) if shown else "(empty)"

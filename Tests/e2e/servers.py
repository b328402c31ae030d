"""Fletcher processes for the process-level tests, on a database of their own."""
import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from conftest import BINARY, KEY


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port, method, path, body=None, token=None, headers=None):
    """One request on a connection of its own: (status, Content-Type, body bytes, seconds taken).
    A `body` that is not bytes is sent as JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.time()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), payload, time.time() - started


def eventually(condition, timeout=20, what=""):
    """Polls `condition` until it holds, and returns what it gave; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def history(api, dataset, product):
    """Every event of a data product's history, oldest first (all its pages)."""
    events, cursor = [], None
    while True:
        page = api.call("GET", f"/api/data_product/{dataset}/{product}/history?limit=100"
                        + (f"&before={cursor}" if cursor else ""))
        events += page["events"]
        cursor = page["next_cursor"]
        if not cursor:
            return list(reversed(events))


def settled(plan):
    """True when nothing in the plan can move any more on its own: no product queued, running or
    with a retry pending, and none left waiting whose parents all succeeded."""
    states = {p["id"]: p["state"] for p in plan["data_products"]}
    parents = {}
    for d in plan["dependencies"]:
        parents.setdefault(d["child_id"], []).append(d["parent_id"])
    for p in plan["data_products"]:
        if p["state"] in ("queued", "running") or p["retry_at"] is not None:
            return False
        if p["state"] == "waiting" and all(states[x] == "success" for x in parents.get(p["id"], [])):
            return False
    return True


def wait_settled(api, dataset, timeout):
    """Polls the plan until `settled`; fails after `timeout` seconds. Returns the settled plan."""
    started = time.time()
    while True:
        plan = api.plan(dataset)
        if settled(plan):
            return plan
        if time.time() - started > timeout:
            raise AssertionError("the plan did not settle in time")
        time.sleep(1)


class SimulatedCompute:
    """One `fletcher simulate-compute` process failing and hanging jobs, and the `COMPUTE_TARGETS`
    entry of a compute type `cams` sending it triggers and cancels, with retries and time limits."""

    def __init__(self, fail_rate, hang_rate, retries, run_seconds=0.3, folder=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets = {"cams": {"url": f"{self.url}/jobs", "cancel_url": f"{self.url}/cancel", "max_in_flight": 32,
                                 "retries": {"max": retries, "delay_s": 1, "max_delay_s": 8},
                                 "max_queued_s": 10, "max_running_s": 4}}
        self.folder = folder or tempfile.mkdtemp(prefix="fletcher-sim-")
        self.log = open(os.path.join(self.folder, "simulator.log"), "w")
        self.process = subprocess.Popen(
            [BINARY, "simulate-compute", "--port", str(self.port), "--service", "e2e", "--run-seconds",
             str(run_seconds), "--fail-rate", str(fail_rate), "--hang-rate", str(hang_rate)],
            env=dict(os.environ, SIMULATOR_KEY=KEY), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/stats", timeout=2)
                return
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stats(self):
        return json.loads(urllib.request.urlopen(f"{self.url}/stats", timeout=10).read())

    def stop(self):
        self.process.terminate()
        self.process.wait()


def binary_tree(ids):
    """Dependencies making product n depend on product (n - 1) // 2."""
    return [{"parent_id": ids[(n - 1) // 2], "child_id": ids[n]} for n in range(1, len(ids))]


def fresh_postgres_database():
    """A new database on the test PostgreSQL server (FLETCHER_TEST_POSTGRES_URL), as a URL."""
    base = os.environ.get("FLETCHER_TEST_POSTGRES_URL")
    if not base:
        return None
    match = re.match(r"postgres(?:ql)?://([^@/]+)@([^:/]+):(\d+)/([^?]+)(\?.*)?", base)
    user, host, port, _, query = match.groups()
    name = "fletcher_e2e_" + uuid.uuid4().hex[:12]
    createdb = shutil.which("createdb") or next(
        (os.path.join(d, "createdb") for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True)
         for d in [f"/usr/lib/postgresql/{d}/bin"] if os.path.exists(os.path.join(d, "createdb"))), "createdb")
    subprocess.run([createdb, "-h", host, "-p", port, "-U", user, name], check=True)
    return f"postgres://{user}@{host}:{port}/{name}{query or ''}"


class Fletcher:
    """One `fletcher serve` process."""

    def __init__(self, database_url, compute_targets=None, port=None, extra_env=None, wait_healthy=True):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = tempfile.mkdtemp(prefix="fletcher-proc-")
        hashed = subprocess.run([BINARY, "hash-key", "--cost", "4"], input=KEY, capture_output=True, text=True,
                                check=True).stdout.strip()
        self.env = dict(os.environ, DATABASE_URL=database_url, BASE_URL=f"127.0.0.1:{self.port}",
                        SECRET_KEY="e2e-secret-that-is-long-enough-for-hs256",
                        REMOTE_APIS=json.dumps([{"service": "e2e", "hash": hashed,
                                                 "roles": ["publish", "update", "pause", "disable"]}]),
                        LOG_LEVEL="warning", COMPUTE_TARGETS=json.dumps(compute_targets or {}))
        self.env.update(extra_env or {})
        self.start(wait_healthy)

    def start(self, wait_healthy=True):
        """Starts the process; with `wait_healthy`, returns once /health answers 200, else once it
        answers at all."""
        self.log = open(os.path.join(self.folder, "server.log"), "a")
        self.process = subprocess.Popen([BINARY, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.folder)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2)
                return
            except urllib.error.HTTPError:
                if not wait_healthy:
                    return
            except Exception:
                pass
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError(open(os.path.join(self.folder, "server.log")).read())
            time.sleep(0.1)

    def output(self):
        """What the process has logged so far."""
        with open(os.path.join(self.folder, "server.log"), errors="replace") as log:
            return log.read()

    def signal(self, number):
        self.process.send_signal(number)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class HeldRequest:
    """A POST /api/plan of a one-product plan (the product named `name`) whose head and half its
    body are sent: in progress until `finish`."""

    def __init__(self, port, token, name="p"):
        self.body = json.dumps({"dataset": {"id": str(uuid.uuid4())}, "data_products": [
            {"id": str(uuid.uuid4()), "compute": "cams", "name": name, "version": "1", "eager": False}],
            "dependencies": []}).encode()
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            self.connection.putrequest("POST", "/api/plan")
            for name, value in [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}"),
                                ("Content-Length", str(len(self.body)))]:
                self.connection.putheader(name, value)
            self.connection.endheaders()
            self.connection.send(self.body[:len(self.body) // 2])
        except OSError:
            pass    # refused at once, the limit being full: `finish` finds it answered or closed

    def answered(self):
        """Whether the server has answered already (it refused the request at the limit)."""
        return bool(select.select([self.connection.sock], [], [], 0)[0])

    def finish(self):
        """Sends the rest; the answer's status, or None when the server had already answered."""
        try:
            self.connection.send(self.body[len(self.body) // 2:])
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            self.connection.close()

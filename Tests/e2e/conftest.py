"""Fixtures for the browser tests: a Fletcher server on a fresh SQLite file, a headless Chromium,
and a small API client."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FLETCHER_BIN", os.path.join(ROOT, ".build", "debug", "fletcher"))
KEY = "e2e-key"
# A service that holds no role: it may sign in and look, not act.
VIEWER_KEY = "viewer-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class API:
    def __init__(self, base):
        self.base = base
        self.token = None
        self.token = self.call("POST", "/api/authenticate", {"service": "e2e", "key": KEY})["access_token"]

    def call(self, method, path, body=None):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def submit(self, products, edges=(), extra=None, dataset=None):
        """products: list of (name, eager) or dicts; edges: (parent index, child index). Returns (dataset id, ids)."""
        dataset = dataset or str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in products]
        body = {
            "dataset": {"id": dataset, "extra": extra if extra is not None else {}},
            "data_products": [
                {"id": ids[i], "compute": "cams", "name": p[0], "version": "1.0", "eager": p[1]}
                for i, p in enumerate(products)
            ],
            "dependencies": [{"parent_id": ids[a], "child_id": ids[b]} for a, b in edges],
        }
        self.call("POST", "/api/plan", body)
        return dataset, ids

    def plan(self, dataset):
        return self.call("GET", f"/api/plan/{dataset}")

    def update(self, dataset, product, state):
        return self.call("PUT", f"/api/data_product/{dataset}/update", [{"id": product, "state": state}])


@pytest.fixture(scope="session")
def server():
    assert os.path.exists(BINARY), f"build Fletcher first ({BINARY} is missing)"
    hashed = subprocess.run([BINARY, "hash-key", "--cost", "4"], input=KEY, capture_output=True, text=True,
                            check=True).stdout.strip()
    viewer = subprocess.run([BINARY, "hash-key", "--cost", "4"], input=VIEWER_KEY, capture_output=True, text=True,
                            check=True).stdout.strip()
    folder = tempfile.mkdtemp(prefix="fletcher-e2e-")
    port = free_port()
    env = dict(os.environ,
               DATABASE_URL=f"sqlite:{folder}/e2e.sqlite", BASE_URL=f"127.0.0.1:{port}",
               SECRET_KEY="e2e-secret-that-is-long-enough-for-hs256",
               REMOTE_APIS=json.dumps([{"service": "e2e", "hash": hashed,
                                        "roles": ["publish", "update", "pause", "disable"]},
                                       {"service": "viewer", "hash": viewer, "roles": []}]),
               LOG_LEVEL="warning")
    log = open(os.path.join(folder, "server.log"), "w")
    process = subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except Exception:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(open(os.path.join(folder, "server.log")).read())
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def api(server):
    return API(server)


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--force-prefers-reduced-motion"]:
        options.add_argument(argument)
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(driver_path) if driver_path else None, options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request):
    """A fresh database on each engine, as a DATABASE_URL (PostgreSQL's skipped without the test server)."""
    from servers import fresh_postgres_database
    if request.param == "sqlite":
        folder = tempfile.mkdtemp(prefix="fletcher-e2e-")
        yield f"sqlite:{folder}/fletcher.sqlite"
        shutil.rmtree(folder, ignore_errors=True)
    else:
        url = fresh_postgres_database()
        if url is None:
            pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
        yield url


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database, as a DATABASE_URL (skipped without the test server)."""
    from servers import fresh_postgres_database
    url = fresh_postgres_database()
    if url is None:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
    return url


@pytest.fixture
def platform():
    """A fake compute platform (fake_platform.Platform), closed afterwards."""
    from fake_platform import Platform
    platform = Platform()
    yield platform
    platform.close()

"""Fixtures for the deployment tests: Fletcher's container image run with podman, and the systemd
unit. scripts/test-deploy.sh builds the image (scripts/image.sh) and runs them."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.environ.get("FLETCHER_IMAGE", "localhost/fletcher:latest")
RELEASE_BIN = os.environ.get("FLETCHER_RELEASE_BIN", os.path.join(ROOT, ".build-release", "release", "fletcher"))
KEY = "deploy-test-key"
SECRET = "deploy-test-secret-that-is-long-enough-for-hs256"
# The uid the image's server runs as (Containerfile's USER).
IMAGE_UID = 10001


def podman_command():
    """podman as this machine runs it: runc where installed (crun refuses hybrid cgroup
    hierarchies), cgroupfs where systemd is not the init system — as scripts/image.sh."""
    command = ["podman"]
    if os.path.exists("/usr/sbin/runc"):
        command += ["--runtime", "/usr/sbin/runc"]
    if not os.path.isdir("/run/systemd/system"):
        command += ["--cgroup-manager=cgroupfs"]
    return command


PODMAN = podman_command()
# The rlimits a container may have here: raising them is not permitted on these machines.
RUN_LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman(*arguments, check=True, input=None, timeout=120):
    """Runs podman; returns the finished process (stdout and stderr as text)."""
    return subprocess.run(PODMAN + list(arguments), capture_output=True, text=True, check=check, input=input,
                          timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port, method, path, body=None, token=None):
    """One request: (status, body bytes). A `body` that is not bytes is sent as JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def health_status(port):
    """/health's status, or None while nothing answers."""
    try:
        return send(port, "GET", "/health")[0]
    except OSError:
        return None


def credentials_env(hash_with):
    """SECRET_KEY and REMOTE_APIS for one service `deploy` holding every role; `hash_with` makes the
    bcrypt hash of KEY (a command reading the key on standard input)."""
    hashed = subprocess.run(hash_with, input=KEY, capture_output=True, text=True, check=True,
                            timeout=120).stdout.strip()
    assert hashed.startswith("$2"), hashed
    return {"SECRET_KEY": SECRET,
            "REMOTE_APIS": json.dumps([{"service": "deploy", "hash": hashed,
                                        "roles": ["publish", "update", "pause", "disable"]}])}


class Client:
    """Fletcher's API on a port of this machine, logged in as the service `deploy`."""

    def __init__(self, port):
        self.port = port
        status, body = send(port, "POST", "/api/authenticate", {"service": "deploy", "key": KEY})
        assert status == 200, body
        self.token = json.loads(body)["access_token"]

    def call(self, method, path, body=None, expect=200):
        status, payload = send(self.port, method, path, body, self.token)
        assert status == expect, (status, payload[:500])
        return json.loads(payload) if payload and payload[:1] in (b"{", b"[") else payload

    def submit_plan(self):
        """A plan of three data products in a chain; returns (dataset id, product ids)."""
        dataset = str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in range(3)]
        self.call("POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {"origin": "deploy test"}},
            "data_products": [{"id": ids[i], "compute": "cams", "name": f"step {i}", "version": "1.0",
                               "eager": i == 0} for i in range(3)],
            "dependencies": [{"parent_id": ids[0], "child_id": ids[1]}, {"parent_id": ids[1], "child_id": ids[2]}],
        })
        return dataset, ids


def wait_healthy(port, process_alive, timeout=60, want=200):
    """Polls /health until it answers `want`; returns the seconds waited."""
    started = time.monotonic()
    while True:
        if health_status(port) == want:
            return time.monotonic() - started
        if time.monotonic() - started > timeout or not process_alive():
            raise AssertionError(f"/health did not answer {want} within {timeout} s")
        time.sleep(0.02)


class Container:
    """One container of the image, on the host's network (so it reaches the loopback address, and the
    tests reach it there), listening on a free port."""

    def __init__(self, env, volume=None, name=None):
        self.port = free_port()
        self.name = name or f"fletcher-deploy-{uuid.uuid4().hex[:10]}"
        arguments = ["create", "--name", self.name, "--network=host", *RUN_LIMITS,
                     "-e", f"BASE_URL=127.0.0.1:{self.port}", "-e", "LOG_LEVEL=info"]
        for key, value in env.items():
            arguments += ["-e", f"{key}={value}"]
        if volume:
            arguments += ["-v", f"{volume}:/data"]
        podman(*arguments, IMAGE)
        self.startup_seconds = None

    def start(self, want=200):
        """Starts the container; returns once /health answers `want`, and keeps how long that took
        from `podman start` on."""
        started = time.monotonic()
        podman("start", self.name)
        wait_healthy(self.port, self.running, want=want)
        self.startup_seconds = time.monotonic() - started
        return self

    def inspect(self, template):
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def running(self):
        return self.inspect("{{.State.Running}}") == "true"

    def logs(self):
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def healthcheck(self):
        """Runs the image's HEALTHCHECK once: (exit status, the health status podman recorded)."""
        result = podman("healthcheck", "run", self.name, check=False)
        return result.returncode, self.inspect("{{.State.Health.Status}}")

    def stop(self, timeout=30):
        """`podman stop` (SIGTERM, SIGKILL after `timeout` s); returns (exit code, seconds taken)."""
        started = time.monotonic()
        podman("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return int(self.inspect("{{.State.ExitCode}}")), time.monotonic() - started

    def remove(self):
        podman("rm", "-f", "-v", "-t", "0", self.name, check=False)


@pytest.fixture(scope="session")
def image():
    """The image under test (FLETCHER_IMAGE, default localhost/fletcher:latest), built by
    scripts/image.sh."""
    if shutil.which("podman") is None or podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"no image {IMAGE}: build it with scripts/image.sh")
    return IMAGE


@pytest.fixture(scope="session")
def image_credentials(image):
    """SECRET_KEY and REMOTE_APIS, the key hashed by the image's own `fletcher hash-key`."""
    return credentials_env(PODMAN + ["run", "--rm", "-i", "--network=none", *RUN_LIMITS, image, "hash-key",
                                     "--cost", "4"])


@pytest.fixture
def containers():
    """Makes containers (Container's arguments) and removes them afterwards."""
    made = []

    def make(*arguments, **keywords):
        container = Container(*arguments, **keywords)
        made.append(container)
        return container

    yield make
    for container in made:
        container.remove()


@pytest.fixture
def volume():
    """A new named podman volume, removed afterwards."""
    name = f"fletcher-deploy-{uuid.uuid4().hex[:10]}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "-f", name, check=False)


@pytest.fixture
def postgres_url():
    """A new database on the throwaway PostgreSQL of scripts/with-postgres.sh, as a DATABASE_URL."""
    base = os.environ.get("FLETCHER_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test-deploy.sh)")
    user, host, port, _, query = re.match(r"postgres(?:ql)?://([^@/]+)@([^:/]+):(\d+)/([^?]+)(\?.*)?", base).groups()
    name = "fletcher_deploy_" + uuid.uuid4().hex[:12]
    createdb = shutil.which("createdb") or os.path.join(os.environ.get("FLETCHER_TEST_POSTGRES_BIN", ""), "createdb")
    subprocess.run([createdb, "-h", host, "-p", port, "-U", user, name], check=True, timeout=60)
    return f"postgres://{user}@{host}:{port}/{name}{query or ''}"

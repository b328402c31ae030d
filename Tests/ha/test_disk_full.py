"""A full disk under PostgreSQL (issue 26). Each test starts a PostgreSQL cluster of its own (initdb
and pg_ctl as the postgres user, durable settings) with part of it on a small tmpfs, runs Fletcher
on it, and fills that filesystem with a filler file:

- data full: the database's default tablespace is on the small filesystem (its WAL is not). Writes
  then fail in PostgreSQL with "could not extend file" (SQLSTATE 53100); the test proves that every
  write is answered 200 or the documented 503 (problem+json, Retry-After) — small submissions,
  updates and a submission big enough to be streamed (COPY) alike —, that reads (the API's plan,
  the plan page, the home page) keep working, that once the filler is deleted writes are served
  again without restarting Fletcher, and that every acknowledged write is stored.
- WAL full: pg_wal is on the small filesystem (1-MB segments, all kept). PostgreSQL cannot write its
  WAL and PANICs (a database crash); the test proves that Fletcher answers 200 or the documented
  503 throughout, never a 500 or a hang, that it serves again once the space is back and PostgreSQL
  runs again (restarted by the test if it did not restart itself), without restarting Fletcher, and
  that every acknowledged write survived the crash.

Needs root (to mount a tmpfs) and PostgreSQL's server binaries; skipped, saying why, without them.
Polls with deadlines; no fixed sleeps as synchronisation. Every process, mount and folder is
removed afterwards, also when a test fails."""
import errno
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultsupport import (API, Fletcher, call, check_served_or_unavailable, eventually, free_port,  # noqa: E402
                          log_tail, psql)
from test_crash import check_rules  # noqa: E402 — docs/RULES.md rule 1, as Tests/e2e checks it

TIMEOUT_S = 5
# What a write may take at most while the disk is full (the wait for a connection, and a margin).
BOUND = TIMEOUT_S + 30


def postgres_bin():
    """The folder of PostgreSQL's server binaries, or None."""
    folder = os.environ.get("FLETCHER_TEST_POSTGRES_BIN")
    if folder and os.path.exists(os.path.join(folder, "initdb")):
        return folder
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def as_postgres(command, **options):
    """Runs `command` as the postgres system user when running as root (initdb refuses root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    return subprocess.run(prefix + command, **options)


class SmallDisk:
    """A tmpfs of `megabytes` mounted on a new folder; `fill()` takes every byte left with a filler
    file, `free()` deletes it; `unmount()` removes it all."""

    def __init__(self, megabytes):
        self.path = tempfile.mkdtemp(prefix="fletcher-small-disk.")
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", self.path],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            os.rmdir(self.path)
            pytest.skip(f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}")
        self.filler = os.path.join(self.path, "filler")

    def folder(self, name):
        """A folder on the disk owned by the postgres user."""
        path = os.path.join(self.path, name)
        os.mkdir(path, 0o700)
        shutil.chown(path, "postgres", "postgres")
        return path

    def available(self):
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self):
        """Writes the filler until the filesystem refuses another byte; returns how many it wrote."""
        written = 0
        with open(self.filler, "ab", buffering=0) as filler:
            for chunk in (1 << 20, 1 << 12, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        written += filler.write(block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self):
        os.remove(self.filler)

    def unmount(self):
        if subprocess.run(["umount", self.path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)


class Cluster:
    """A PostgreSQL cluster of its own on a free loopback port, with durable settings (fsync and
    synchronous commit on), run by the postgres user; `url` is its database `fletcher`."""

    def __init__(self, bin_folder, initdb_options=(), settings=()):
        self.bin = bin_folder
        self.folder = tempfile.mkdtemp(prefix="fletcher-disk-pg.")
        os.chmod(self.folder, 0o755)
        shutil.chown(self.folder, "postgres")
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "server.log")
        self.port = free_port()
        self.options = " ".join([f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}",
                                 "-c max_connections=200", *settings])
        initdb = as_postgres([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "fletcher", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", *initdb_options], capture_output=True, text=True)
        assert initdb.returncode == 0, initdb.stdout + initdb.stderr
        self.start()
        self.admin_url = f"postgres://fletcher@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self.url = f"postgres://fletcher@127.0.0.1:{self.port}/fletcher?sslmode=disable"

    def pg_ctl(self, *args, check=True):
        return as_postgres([os.path.join(self.bin, "pg_ctl"), "-D", self.data, *args], check=check,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def start(self):
        self.pg_ctl("-l", self.log, "-w", "-t", "120", "-o", self.options, "start")

    def running(self):
        return self.pg_ctl("status", check=False).returncode == 0

    def answers(self):
        ready = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
        return ready.returncode == 0

    def stop(self):
        self.pg_ctl("-m", "immediate", "stop", check=False)

    def server_log(self, pattern):
        """The lines of PostgreSQL's log containing any of `pattern`'s words."""
        with open(self.log, errors="replace") as log:
            return [line.rstrip() for line in log if any(word in line for word in pattern)]

    def remove(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def small_disk():
    if os.getuid() != 0:
        pytest.skip("needs root, to mount a small tmpfs")
    if postgres_bin() is None:
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl)")
    if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    disks = []

    def make(megabytes):
        disks.append(SmallDisk(megabytes))
        return disks[-1]

    yield make
    for disk in disks:
        disk.unmount()


@pytest.fixture
def cleanup():
    """Things to stop or remove afterwards, in reverse order (Fletcher before its database)."""
    actions = []
    yield actions.append
    for action in reversed(actions):
        action()


def plan_body(products, padding):
    """A new plan: a chain of `products`, each carrying `padding` characters of incompressible extra."""
    ids = [str(uuid.uuid4()) for _ in range(products)]
    return {"dataset": {"id": str(uuid.uuid4()), "extra": {"padding": os.urandom(padding // 2).hex()}},
            "data_products": [{"id": i, "compute": "cams", "name": f"p{n}", "version": "1", "eager": n == 0,
                               "extra": {"padding": os.urandom(padding // 2).hex()}} for n, i in enumerate(ids)],
            "dependencies": [{"parent_id": ids[n], "child_id": ids[n + 1]} for n in range(products - 1)]}


class Writes:
    """Writes made on one Fletcher and what was acknowledged: submissions (dataset → its product ids)
    and state updates (dataset → [(state, status)] of its first product, in order)."""

    def __init__(self, server, token):
        self.server, self.token = server, token
        self.submitted = {}
        self.updates = {}
        self.answers = []

    def submit(self, products=10, padding=2000):
        body = plan_body(products, padding)
        answer = call(self.server.port, "POST", "/api/plan", body, self.token, timeout=BOUND + 60)
        self.answers.append(answer)
        if answer.status == 200:
            dataset = body["dataset"]["id"]
            self.submitted[dataset] = [p["id"] for p in body["data_products"]]
            self.updates[dataset] = [("queued", 200)]
        return answer

    def update(self, dataset, state):
        product = self.submitted[dataset][0]
        answer = call(self.server.port, "PUT", f"/api/data_product/{dataset}/update", [{"id": product, "state": state}],
                      self.token, timeout=BOUND + 60)
        self.answers.append(answer)
        self.updates[dataset].append((state, answer.status))
        return answer

    def check_stored(self, api):
        """Every acknowledged submission is stored whole, and every product's state is its last
        acknowledged one (or one tried after it whose answer was not a 200)."""
        for dataset, ids in self.submitted.items():
            plan = api.plan(dataset)
            assert sorted(p["id"] for p in plan["data_products"]) == sorted(ids), f"submission of {dataset} lost"
            check_rules(plan)
            attempts = self.updates[dataset]
            acknowledged = [n for n, (_, status) in enumerate(attempts) if status == 200]
            possible = {attempts[acknowledged[-1]][0]} | {s for s, _ in attempts[acknowledged[-1] + 1:]}
            state = {p["id"]: p["state"] for p in plan["data_products"]}[ids[0]]
            assert state in possible, f"{dataset}: stored {state}, acknowledged {attempts}"


def summary(answers):
    counts = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    slowest = max((a.seconds for a in answers), default=0)
    return f"{counts} (slowest {slowest:.2f} s)"


def start_fletcher(cluster, cleanup):
    """Fletcher on `cluster`'s database (stopped afterwards, its log's end printed), its API and a
    Writes on it with five acknowledged submissions."""
    server = Fletcher(cluster.url, extra_env={"DATABASE_TIMEOUT_S": str(TIMEOUT_S)})
    cleanup(server.stop)
    cleanup(lambda: print(f"\n--- the end of Fletcher's server.log ---\n{log_tail(server)}"))
    api = API(server.base)
    writes = Writes(server, api.token)
    for _ in range(5):
        assert writes.submit().status == 200
    return server, api, writes


def write_until_refused(writes, count, also=lambda: None):
    """Submits (and runs `also` after each submission) until `count` submissions were refused with
    503, each answer 200 or the documented 503 within BOUND; returns the refusals."""
    refused = []
    started = time.time()
    while len(refused) < count:
        assert time.time() - started < 300, f"no write refused in 300 s: {summary(writes.answers)}"
        answer = writes.submit()
        check_served_or_unavailable(answer, BOUND)
        also()
        if answer.status == 503:
            refused.append(answer)
    return refused


def test_a_full_data_disk_refuses_writes_with_503_keeps_reads_and_recovers_without_a_restart(small_disk, cleanup):
    disk = small_disk(64)
    tablespace = disk.folder("tablespace")
    cluster = Cluster(postgres_bin())
    cleanup(cluster.remove)
    psql(cluster.admin_url, f"CREATE TABLESPACE small LOCATION '{tablespace}'")
    psql(cluster.admin_url, "CREATE DATABASE fletcher TABLESPACE small")
    server, api, writes = start_fletcher(cluster, cleanup)
    for dataset in list(writes.submitted):
        assert writes.update(dataset, "running").status == 200

    filled = disk.fill()
    before = len(writes.answers)
    print(f"\nthe filler took the last {filled / 1e6:.1f} MB of the tablespace's filesystem")

    # Writes go on until PostgreSQL needs a new page (an update may fit in a page it has).
    def updates():
        for dataset in list(writes.submitted)[:5]:
            check_served_or_unavailable(writes.update(dataset, ["success", "running"][len(writes.answers) % 2]), BOUND)

    full = write_until_refused(writes, 20, also=updates)
    print(f"writes with the disk full: {summary(writes.answers[before:])}; first refusal {full[0]}")
    # A submission big enough to be streamed into its tables (COPY) is refused the same way.
    big = writes.submit(products=7000, padding=20)
    print(f"a 7,000-product submission with the disk full: {big}")
    check_served_or_unavailable(big, BOUND)
    assert big.status == 503

    # Reads keep working: the API's plan, the plan's page, the home page.
    for dataset in list(writes.submitted)[:5]:
        answer = call(server.port, "GET", f"/api/plan/{dataset}", timeout=BOUND)
        assert answer.status == 200, answer
        assert call(server.port, "GET", f"/plan/{dataset}", timeout=BOUND).status == 200
    home = call(server.port, "GET", "/", timeout=BOUND)
    assert home.status == 200, home
    health = call(server.port, "GET", "/health", timeout=BOUND)
    print(f"/health with the data disk full: {health}")
    print("PostgreSQL said: " + " | ".join(cluster.server_log(["No space left", "PANIC"])[:3]))

    # Space back: writes are served again, by the same process, and nothing acknowledged is lost.
    disk.free()
    eventually(lambda: writes.submit().status == 200, timeout=BOUND + 60, what="a submission served again")
    for dataset in list(writes.submitted)[:5]:
        assert writes.update(dataset, "success").status == 200
    for answer in writes.answers:
        check_served_or_unavailable(answer, BOUND + 60)
    writes.check_stored(api)
    assert server.process.poll() is None


def test_a_full_wal_disk_crashes_postgres_and_fletcher_recovers_without_a_restart(small_disk, cleanup):
    disk = small_disk(96)
    wal = disk.folder("pg_wal")  # initdb takes the empty folder
    # 1-MB segments, every one kept (no recycling), so the WAL grows until the disk is full.
    cluster = Cluster(postgres_bin(), initdb_options=["--waldir", wal, "--wal-segsize=1"],
                      settings=["-c wal_keep_size=4096", "-c wal_recycle=off", "-c min_wal_size=2MB",
                                "-c max_wal_size=8MB"])
    cleanup(cluster.remove)
    psql(cluster.admin_url, "CREATE DATABASE fletcher")
    server, api, writes = start_fletcher(cluster, cleanup)

    filled = disk.fill()
    before = len(writes.answers)
    print(f"\nthe filler took the last {filled / 1e6:.1f} MB of pg_wal's filesystem")
    refused = write_until_refused(writes, 10)
    print(f"writes with pg_wal full: {summary(writes.answers[before:])}; first refusal {refused[0]}")
    reads = [call(server.port, "GET", f"/api/plan/{d}", timeout=BOUND + 10) for d in list(writes.submitted)[:3]]
    for answer in reads:
        check_served_or_unavailable(answer, BOUND)
    print(f"reads with pg_wal full: {summary(reads)}; PostgreSQL running: {cluster.running()}")
    print("PostgreSQL said: " + " | ".join(cluster.server_log(["PANIC", "terminated by signal", "aborting startup",
                                                              "No space left", "ready to accept"])[1:8]))

    # Space back; PostgreSQL restarted if it gave up. The same Fletcher serves again.
    disk.free()
    if not cluster.running():
        cluster.start()
    eventually(cluster.answers, timeout=120, what="PostgreSQL to accept connections")
    eventually(lambda: writes.submit().status == 200, timeout=BOUND + 60, what="a submission served again")
    eventually(lambda: call(server.port, "GET", "/health", timeout=30).status == 200, timeout=60, what="/health 200")
    for answer in writes.answers:
        check_served_or_unavailable(answer, BOUND + 60)
    writes.check_stored(api)
    assert server.process.poll() is None

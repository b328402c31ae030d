"""The `fletcher` command's other subcommands as real processes: `migrate` on a fresh SQLite file
and a fresh PostgreSQL database (and again, changing nothing), its answer to a bad DATABASE_URL,
`--version`, and `simulate-compute` taking triggers from a running server and reporting back until
the plan succeeds. Polls with deadlines; no fixed sleeps."""
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import API, BINARY, KEY, ROOT
from servers import Fletcher, eventually, free_port, fresh_postgres_database


def run(arguments, env=None, cwd=None, timeout=120):
    """Runs `fletcher arguments…` to its end in an empty folder, with only `env` set beyond PATH."""
    folder = cwd or tempfile.mkdtemp(prefix="fletcher-cli-")
    try:
        return subprocess.run([BINARY, *arguments], env={"PATH": os.environ.get("PATH", ""), **(env or {})},
                              capture_output=True, text=True, cwd=folder, timeout=timeout)
    finally:
        if cwd is None:
            shutil.rmtree(folder, ignore_errors=True)


def postgres_tool(name):
    folder = os.environ.get("FLETCHER_TEST_POSTGRES_BIN")
    return os.path.join(folder, name) if folder else shutil.which(name) or name


def psql(url, sql):
    return subprocess.run([postgres_tool("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          capture_output=True, text=True, check=True).stdout


def sqlite_schema(path):
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall(),
                db.execute("SELECT identifier FROM grdb_migrations ORDER BY identifier").fetchall())


# --version

def test_version_prints_the_version_and_exits_0():
    source = open(os.path.join(ROOT, "Sources", "FletcherApp", "Application+build.swift")).read()
    version = re.search(r'public let fletcherVersion = "([^"]+)"', source).group(1)
    result = run(["--version"])
    assert result.returncode == 0, result.stderr
    # The version, then the commit built from (test_single_binary.py checks the commit).
    assert re.fullmatch(rf"{re.escape(version)} \(commit [0-9a-f]{{12}}(-dirty)?\)", result.stdout.strip()), result.stdout


# migrate

def test_migrate_creates_the_schema_on_a_fresh_sqlite_file_and_a_second_run_changes_nothing():
    folder = tempfile.mkdtemp(prefix="fletcher-cli-")
    try:
        path = os.path.join(folder, "fresh.sqlite")
        env = {"DATABASE_URL": f"sqlite:{path}"}
        first = run(["migrate"], env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"Migrations applied to SQLite file {path}."
        objects, migrations = sqlite_schema(path)
        tables = {name for kind, name, _ in objects if kind == "table"}
        assert {"dataset", "data_product", "dependency", "product_event", "dispatch_trigger",
                "compute_platform"} <= tables
        assert len(migrations) >= 5

        second = run(["migrate"], env)
        assert second.returncode == 0, second.stderr
        assert sqlite_schema(path) == (objects, migrations)

        # A server started on the migrated file serves it.
        server = Fletcher(f"sqlite:{path}")
        try:
            api = API(server.base)
            dataset, _ = api.submit([("migrated", True)])
            assert api.plan(dataset)["data_products"][0]["state"] == "queued"
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_migrate_creates_the_schema_on_a_fresh_postgres_database_and_a_second_run_changes_nothing():
    url = fresh_postgres_database()
    if url is None:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/with-postgres.sh)")
    assert psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").strip() == "0"
    first = run(["migrate"], {"DATABASE_URL": url})
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Migrations applied to "), first.stdout
    tables = set(psql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split())
    assert {"dataset", "data_product", "product_event", "dispatch_trigger", "compute_platform",
            "fletcher_migration"} <= tables
    applied = psql(url, "SELECT * FROM fletcher_migration ORDER BY 1")
    assert applied.strip()

    def schema():
        dump = subprocess.run([postgres_tool("pg_dump"), "--schema-only", "--no-owner", "-d", url],
                              capture_output=True, text=True, check=True).stdout
        # pg_dump fences its output with a random token (\restrict, \unrestrict) in each run.
        return [line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]

    before = schema()
    second = run(["migrate"], {"DATABASE_URL": url})
    assert second.returncode == 0, second.stderr
    assert schema() == before
    assert psql(url, "SELECT * FROM fletcher_migration ORDER BY 1") == applied


def test_migrate_refuses_a_malformed_database_url_with_exit_78_naming_the_variable():
    result = run(["migrate"], {"DATABASE_URL": "mysql://db.example/fletcher"})
    assert result.returncode == 78
    assert "DATABASE_URL" in result.stderr and "mysql://db.example/fletcher" in result.stderr
    assert result.stdout == ""


def test_migrate_fails_on_a_sqlite_file_it_cannot_create_naming_the_variable():
    result = run(["migrate"], {"DATABASE_URL": "sqlite:/nonexistent-folder/fletcher.sqlite"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr and "/nonexistent-folder/fletcher.sqlite" in result.stderr
    assert "Migrations applied" not in result.stdout


# simulate-compute

class Simulator:
    """One `fletcher simulate-compute` process."""

    def __init__(self, *arguments, key=KEY):
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="fletcher-sim-")
        self.log = open(os.path.join(self.folder, "simulator.log"), "w")
        env = dict(os.environ, SIMULATOR_KEY=key)
        self.process = subprocess.Popen(
            [BINARY, "simulate-compute", "--port", str(self.port), "--service", "e2e", *arguments],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder)
        self.url = f"http://127.0.0.1:{self.port}/jobs"

        def listening():
            assert self.process.poll() is None, self.output()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/runs/probe", timeout=2)
                return True
            except OSError:
                return False

        eventually(listening, timeout=60, what="the simulator to listen")

    def output(self):
        return open(os.path.join(self.folder, "simulator.log")).read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.mark.parametrize("outcome", ["success", "failed"])
def test_simulate_compute_takes_triggers_and_reports_states_until_the_plan_ends(outcome):
    simulator = Simulator("--run-seconds", "0", "--failure-rate", "0" if outcome == "success" else "1")
    folder = tempfile.mkdtemp(prefix="fletcher-cli-")
    server = None
    try:
        server = Fletcher(f"sqlite:{folder}/simulated.sqlite", {"cams": {"url": simulator.url, "timeout_s": 10}})
        api = API(server.base)
        dataset, ids = api.submit([("first", True), ("second", True)], edges=[(0, 1)])
        last = ids[1] if outcome == "success" else ids[0]

        def ended():
            products = {p["id"]: p for p in api.plan(dataset)["data_products"]}
            return products[last]["state"] == outcome

        eventually(ended, timeout=90, what=f"the simulated job to report {outcome}")
        products = {p["id"]: p for p in api.plan(dataset)["data_products"]}
        states = [products[i]["state"] for i in ids]
        assert states == (["success", "success"] if outcome == "success" else ["failed", "waiting"])
        reported = [products[i] for i in ids if products[i]["state"] != "waiting"]
        for product in reported:
            # The run the simulator started, its link (which it serves) and its passback.
            assert product["run_id"] and product["link"].endswith(f"/runs/{product['run_id']}")
            assert product["link"].startswith(f"http://127.0.0.1:{simulator.port}/")
            assert urllib.request.urlopen(product["link"], timeout=10).read().decode().startswith("Simulated run")
            assert product["passback"]["simulated"] is True
            # Oldest first: queued, the trigger delivered to the simulator, then its two reports.
            events = api.call("GET", f"/api/data_product/{dataset}/{product['id']}/history?limit=100")["events"][::-1]
            deliveries = [n for n, e in enumerate(events) if e["kind"] == "delivery"]
            assert len(deliveries) == 1 and events[deliveries[0]]["http_status"] == 202, events
            after = [(e["to"], e["actor"]) for e in events[deliveries[0]:] if e["kind"] == "state_change"]
            assert after == [("running", "e2e"), (outcome, "e2e")], events
        assert simulator.process.poll() is None
    finally:
        if server:
            server.stop()
        simulator.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_simulate_compute_refuses_to_start_without_its_key():
    result = run(["simulate-compute", "--port", str(free_port())])
    assert result.returncode == 64
    assert "SIMULATOR_KEY" in result.stderr

"""`fletcher migrate` run by two processes at once on one database (an SQLite file, a PostgreSQL
database): both succeed, the schema ends exactly as one process alone leaves it, and every
migration is applied once. The test holds the lock migrations take (SQLite's write lock, the
PostgreSQL advisory lock) until both processes have reached the database, so that they really do
migrate together. Polls with deadlines; no fixed sleeps."""
import glob
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from conftest import BINARY
from servers import eventually, fresh_postgres_database

# PostgresMigrations.advisoryLockKey: "fletcher" as a 64-bit integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"fletcher", "big")


def start_migrate(database_url, folder):
    env = dict(os.environ, DATABASE_URL=database_url, LOG_LEVEL="info")
    return subprocess.Popen([BINARY, "migrate"], env=env, cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(processes):
    """Each process's exit status and output, once all have ended."""
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    return [process.returncode for process in processes], outputs


def migrate_alone(database_url, folder):
    codes, outputs = finish([start_migrate(database_url, folder)])
    assert codes == [0], outputs[0]


def has_open(process, path):
    """Whether `process` has `path` open (or has ended: then waiting for it is over too)."""
    if process.poll() is not None:
        return True
    for fd in glob.glob(f"/proc/{process.pid}/fd/*"):
        try:
            if os.readlink(fd) == path:
                return True
        except OSError:
            pass
    return False


def sqlite_schema(path):
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall(),
                db.execute("SELECT identifier FROM grdb_migrations ORDER BY rowid").fetchall())


def test_two_processes_migrate_one_sqlite_file_at_once(tmp_path):
    folder = str(tmp_path)
    reference = os.path.join(folder, "reference.sqlite")
    migrate_alone(f"sqlite:{reference}", folder)
    # A few rounds: a process now and then reaches the lock only after the other has migrated.
    for attempt in range(3):
        path = os.path.join(folder, f"shared-{attempt}.sqlite")
        # The file as migrating's first step leaves it (WAL mode, GRDB's table of applied
        # migrations, empty), its write lock held until both processes have it open: then each
        # reads that nothing is applied and waits to apply the first migration.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
        holder.execute("BEGIN IMMEDIATE")
        processes = [start_migrate(f"sqlite:{path}", folder) for _ in range(2)]
        try:
            eventually(lambda: all(has_open(p, path) for p in processes), timeout=60,
                       what="both processes to open the file")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        codes, outputs = finish(processes)
        assert codes == [0, 0], outputs
        # Each migration's identifier once (a migration run twice fails: its tables exist already).
        assert sqlite_schema(path) == sqlite_schema(reference)


def postgres_program(name):
    folder = os.environ.get("FLETCHER_TEST_POSTGRES_BIN") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), "")
    found = os.path.join(folder, name)
    return found if os.path.exists(found) else shutil.which(name)


def psql(url, sql):
    """Rows of `sql`'s answer, as lists of text."""
    answer = subprocess.run([postgres_program("psql"), "-X", "-tA", "-F", "\t", "-d", url, "-c", sql],
                            capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in answer.splitlines() if line]


def advisory_locks(url, granted):
    return int(psql(url, f"""SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = {granted}
                            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""")[0][0])


def postgres_schema(url):
    dump = subprocess.run([postgres_program("pg_dump"), "--schema-only", "--no-owner", "-d", url],
                          capture_output=True, text=True, check=True).stdout
    # Without comments, and the random key of newer pg_dumps' \restrict lines.
    return [line for line in dump.splitlines() if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def test_two_processes_migrate_one_postgres_database_at_once(tmp_path):
    url, reference = fresh_postgres_database(), fresh_postgres_database()
    if url is None:
        pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
    folder = str(tmp_path)
    migrate_alone(reference, folder)

    # The advisory lock held by a session of the test's until both processes wait for it.
    holder = subprocess.Popen([postgres_program("psql"), "-X", "-q", "-d", url], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    holder.stdin.write(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY});\n")
    holder.stdin.flush()
    processes = []
    try:
        eventually(lambda: advisory_locks(url, granted=True) == 1, timeout=60, what="the test to hold the lock")
        processes = [start_migrate(url, folder) for _ in range(2)]
        eventually(lambda: advisory_locks(url, granted=False) == 2 or any(p.poll() is not None for p in processes),
                   timeout=60, what="both processes to wait for the lock")
    finally:
        holder.communicate(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY});\n\\q\n", timeout=60)
    codes, outputs = finish(processes)
    assert codes == [0, 0], outputs

    assert postgres_schema(url) == postgres_schema(reference)
    listed = "SELECT version, name FROM fletcher_migration ORDER BY version"
    assert psql(url, listed) == psql(reference, listed)
    # Every migration applied by exactly one of the two.
    applied = sorted(int(version) for output in outputs
                     for version in re.findall(r"version=(\d+) .*applying migration", output))
    assert applied == [int(version) for version, _ in psql(reference, listed)]

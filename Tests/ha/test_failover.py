"""PostgreSQL fails over under load (issue 26): two `fletcher serve` processes share a highly
available PostgreSQL — two nodes run by Patroni, HAProxy in front following the primary
(scripts/ha/cluster.py) — while `fletcher stress --scenario updates` drives plans through each of
them, and the test kills the primary:

- variant `postgres`: SIGKILL of the primary's postmaster (Patroni fails over at once, and brings
  the node back as a replica);
- variant `node`: SIGKILL of the primary's Patroni and postmaster (the standby takes over once the
  leader key expires, after Patroni's ttl of 10 s); the node is started again afterwards.

Each variant fails over FLETCHER_HA_RUNS times (5 by default) on one cluster, through the same two
Fletcher processes. After each failover, with synchronous replication:

- no acknowledged write is lost: each state update or clear answered 200 is in its products'
  histories (see `unseen_acknowledged_writes` for the exact check), the histories are unbroken
  chains (each change starts from the state the previous one left) ending in the stored state,
  and docs/RULES.md rule 1 holds in every plan;
- every other answer is 503 with Retry-After — no other status, and no request without an answer
  (Fletcher itself stays up; only its database goes away);
- writes succeed again within 30 s of the kill: the first write answered 200 that was sent after
  the outage showed (after the first refusal past the kill), per process (the figures are printed;
  the target is 15 s);
- both Fletcher processes are still the ones started (same PIDs) and answer /ready with 200.

With asynchronous replication (`synchronous_mode: false`) the same runs measure — and print, for
docs/DEPLOYMENT.md — how many acknowledged writes the failover loses; they assert everything else.

Two tests make one hazard of a failover certain rather than waiting for it to happen under load:
a write acknowledged by an asynchronous primary and lost with it (its WAL senders stopped for that
write) must be neither served nor built on by the process that acknowledged it; and connections
that HAProxy sends to the read-only standby (as it may while it still has a demoted node up, or
once Patroni holds the leader key but PostgreSQL is not yet promoted) must be answered 503 with
Retry-After, never 500, with /ready 503, until they reach the primary again.

The last test runs Fletcher's trigger dispatcher across a failover of each variant: plans of eager
products are submitted continuously and a fake compute platform reports each trigger's success, so
products are queued all along. Once everything has settled, every try (docs/RULES.md rules 15–17
and 22) reached the platform with its one trigger id — none missing (but a try whose product went
back to `waiting` before delivery: its trigger is cancelled, rule 15), none under two ids, none for
a try the history does not have; and an event stream (`GET /api/events/stream`) open on one process
throughout, reconnected with Last-Event-ID whenever it ends, delivered every event of the feed
exactly once, in order, also after the failover.

Needs Patroni, etcd, HAProxy and PostgreSQL from Debian's packages (scripts/test-ha.sh installs
them); skips when they are missing. Polls with deadlines; the only sleeps let load run."""
import http.client
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import datetime

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Tests/ha has no conftest.py of its own (Tests/e2e's would clash): its helpers are imported as
# modules from there, and the cluster from scripts/ha.
sys.path[:0] = [os.path.join(ROOT, "Tests", "e2e"), os.path.join(ROOT, "scripts", "ha")]

from cluster import Cluster  # noqa: E402
from conftest import API, BINARY, KEY  # noqa: E402
import servers as e2e_servers  # noqa: E402
from servers import eventually, send  # noqa: E402
from test_crash import check_rules  # noqa: E402
from test_event_stream import EventStream  # noqa: E402

RUNS = int(os.environ.get("FLETCHER_HA_RUNS", "5"))
ASYNC_RUNS = int(os.environ.get("FLETCHER_HA_ASYNC_RUNS", "3"))
STEADY_S = 4          # load before the kill
AFTER_S = 10          # successful writes after the first one that follows the kill
RECOVERY_LIMIT_S = 30
VARIANTS = {"postgres": Cluster.kill_postgres_of_leader, "node": Cluster.kill_patroni_and_postgres_of_leader}

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in ("patroni", "etcd", "haproxy")),
    reason="needs patroni, etcd and haproxy (scripts/test-ha.sh installs them)")


# ----- the cluster and Fletcher -----

def cluster_fixture(name, synchronous):
    """The module fixture `name`: a cluster of its own, with `synchronous` replication or without."""
    @pytest.fixture(scope="module", name=name)
    def cluster():
        """The module's cluster, stopped afterwards."""
        assert os.path.exists(BINARY), f"build Fletcher first ({BINARY} is missing)"
        cluster = Cluster(synchronous=synchronous).start()
        yield cluster
        cluster.stop()
    return cluster


synchronous_cluster = cluster_fixture("synchronous_cluster", synchronous=True)
asynchronous_cluster = cluster_fixture("asynchronous_cluster", synchronous=False)


def fresh_database(cluster):
    """A new database on the cluster (each test its own), as a DATABASE_URL through HAProxy."""
    cluster.heal()
    name = "fletcher_" + uuid.uuid4().hex[:12]
    cluster.psql(f'CREATE DATABASE "{name}"', database="postgres")
    return cluster.url.replace(f"/{cluster.database}?", f"/{name}?")


class Fletcher(e2e_servers.Fletcher):
    """`fletcher serve`, killed again when it does not come up (Tests/e2e's leaves it running)."""

    def start(self, *arguments, **options):
        try:
            super().start(*arguments, **options)
        except BaseException:
            self.stop()
            raise


class Servers:
    """Two `fletcher serve` processes on one database, remembered by PID."""

    def __init__(self, url, compute_targets=None):
        self.all = []
        try:
            for _ in range(2):
                self.all.append(Fletcher(url, compute_targets=compute_targets))
        except BaseException:
            self.stop()
            raise
        self.pids = [s.process.pid for s in self.all]

    def assert_unchanged_and_ready(self):
        """Neither process was restarted, and both answer /ready with 200 (polled: a pool may still
        be reconnecting)."""
        for server, pid in zip(self.all, self.pids):
            assert server.process.pid == pid and server.process.poll() is None, \
                f"Fletcher {pid} exited ({server.process.returncode}):\n{server.output()[-3000:]}"
            eventually(lambda: send(server.port, "GET", "/ready")[0] == 200, timeout=30, what=f"/ready of {pid}")

    def log_summary(self):
        """The warnings and errors the processes logged, each distinct message once, with a count."""
        counts = {}
        for server in self.all:
            for line in server.output().splitlines():
                if any(level in line for level in ("warning", "error", "critical")):
                    key = line.split(" ", 1)[1][:300] if " " in line else line[:300]
                    counts[key] = counts.get(key, 0) + 1
        return "\n".join(f"  {n} × {line}" for line, n in sorted(counts.items(), key=lambda x: -x[1])[:15])

    def stop(self):
        for server in self.all:
            server.stop()


# ----- the load -----

class Load:
    """One `fletcher stress --scenario updates` against one server, logging every write's outcome
    (`--log-writes`: kind, dataset and product ids, state, status, Retry-After, sent, answered,
    error). It runs until `stop`; the log is read as it grows."""

    def __init__(self, server, folder, name, plans=8, concurrency=4, rate=100):
        self.name = name
        self.path = os.path.join(folder, f"{name}.writes.jsonl")
        self.output_path = os.path.join(folder, f"{name}.out")
        self.writes = []
        self._offset = 0
        with open(self.output_path, "w") as output:
            self.process = subprocess.Popen(
                [BINARY, "stress", "--scenario", "updates", "--url", server.base, "--service", "e2e",
                 "--plans", str(plans), "--concurrency", str(concurrency), "--rate", str(rate), "--duration", "600",
                 "--quiet", "--log-writes", self.path],
                env=dict(os.environ, FLETCHER_STRESS_KEY=KEY), stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)

    def read(self):
        """Every write logged so far (a line still being written waits for the next call)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.writes
        end = chunk.rfind(b"\n") + 1
        self.writes += [json.loads(line) for line in chunk[:end].splitlines()]
        self._offset += end
        if self.process.poll() is not None and not self.writes:
            raise AssertionError(f"stress {self.name} exited: {open(self.output_path).read()[-2000:]}")
        return self.writes

    def acknowledged(self):
        return [w for w in self.read() if w["status"] == 200]

    def stop(self):
        """Ends the tool (its last requests go unanswered: not acknowledged, so not checked)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return self.read()


# ----- what the history says -----

def timestamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def history(port, dataset, product):
    """A product's state changes, oldest first (every page of its history)."""
    events, cursor = [], None
    while True:
        status, _, body, _ = send(port, "GET", f"/api/data_product/{dataset}/{product}/history?limit=500"
                                  + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
        assert status == 200, body[:300]
        page = json.loads(body)
        events += page["events"]
        cursor = page["next_cursor"]
        if not cursor:
            changes = [e for e in reversed(events) if e["kind"] == "state_change"]
            for change in changes:
                change["at_s"] = timestamp(change["at"])
            return changes


def state_at(changes, moment):
    """The product's state at Unix time `moment` by its history: the last change made by then."""
    state = None
    for change in changes:
        if change["at_s"] > moment:
            break
        state = change["to"]
    return state


def unseen_acknowledged_writes(writes, histories):
    """The acknowledged (200) writes whose change the history does not show.

    A write's change is stamped (`at`) with the server's clock while the request is served, so
    between the stress tool's `sent` and `answered` (one machine, one clock). Each plan is driven
    by one stress worker, one request at a time, and nothing else changes these plans (no compute
    platform, no timers), so nothing touches a product between a write's answer and that worker's
    next request. Hence a write is stored exactly when, by the history, its product is in the
    written state at the moment the answer came: `state` for an update, `waiting` for each product
    of a clear. That also holds for a write that changed nothing (a product already in that state
    gets no history event — which is why a plain subsequence of the acknowledged states in the
    events would be wrong), and fails for a write that is missing even if a later change (say, the
    next update of the same product) happens to restore the state it wrote.
    Returns [(write, product, state the history shows)]."""
    unseen = []
    for write in writes:
        if write["status"] != 200:
            continue
        wanted = write["state"] if write["kind"] == "update" else "waiting"
        for product in write["data_product_ids"]:
            shown = state_at(histories[(write["dataset_id"], product)], write["answered"])
            if shown != wanted:
                unseen.append((write, product, shown))
    return unseen


def broken_chains(plans, histories):
    """Products whose history is not one unbroken chain from creation to the stored state: each
    change must start from the state the one before it left (a change made on a stale copy of a
    plan, or a lost one in the middle, breaks it). Returns descriptions."""
    broken = []
    for plan in plans:
        dataset = plan["dataset"]["id"]
        for product in plan["data_products"]:
            changes = histories.get((dataset, product["id"]))
            if changes is None:
                continue
            previous = None
            for change in changes:
                if change["from"] != previous:
                    broken.append(f"{dataset}/{product['name']}: {change['from']} → {change['to']} at "
                                  f"{change['at']} after {previous}")
                previous = change["to"]
            if previous != product["state"]:
                broken.append(f"{dataset}/{product['name']}: stored {product['state']}, history ends in {previous}")
    return broken


def explain_broken(cluster, servers, plans, histories, writes):
    """For the first product whose history does not end in its stored state: the row as the primary
    has it, the plan as each process answers it now, and the product's last writes and changes."""
    for plan in plans:
        dataset = plan["dataset"]["id"]
        for product in plan["data_products"]:
            changes = histories.get((dataset, product["id"]))
            if not changes or changes[-1]["to"] == product["state"]:
                continue
            database = cluster.url.rsplit("/", 1)[1].split("?")[0]
            row = cluster.psql(f"SELECT p.state, d.revision FROM data_product p JOIN dataset d ON d.id = p.dataset_id "
                               f"WHERE p.dataset_id = '{dataset}' AND p.id = '{product['id']}'", database=database,
                               check=False).strip()
            answers = []
            for server in servers.all:
                status, _, body, _ = send(server.port, "GET", f"/api/plan/{dataset}")
                answers.append(next((p["state"] for p in json.loads(body)["data_products"] if p["id"] == product["id"]),
                                    None) if status == 200 else status)
            mine = [{k: w[k] for k in ("kind", "state", "status", "sent", "answered")} for w in writes
                    if w["dataset_id"] == dataset and product["id"] in w["data_product_ids"]][-6:]
            last = [{k: c[k] for k in ("at_s", "from", "to", "reason")} for c in changes[-4:]]
            return (f"{dataset}/{product['name']}: on the primary (state, revision) {row!r}; the processes now "
                    f"answer {answers}; its last writes {mine}; its last changes {last}")
    return ""


def collect(server, writes):
    """The plans the writes touched, and the histories of all their products."""
    datasets = sorted({w["dataset_id"] for w in writes})
    plans, histories = [], {}
    for dataset in datasets:
        status, _, body, _ = send(server.port, "GET", f"/api/plan/{dataset}")
        assert status == 200, body[:300]
        plan = json.loads(body)
        plans.append(plan)
        for product in plan["data_products"]:
            histories[(dataset, product["id"])] = history(server.port, dataset, product["id"])
    return plans, histories


# ----- one failover -----

def first_success_after(writes, moment):
    """The first write answered 200 once the outage that followed `moment` was seen: sent after the
    first refusal answered past `moment`. (A write sent just after the kill may still commit on the
    dying primary, whose backends live on until they notice: with asynchronous replication, that
    is an acknowledged write the new primary may not have — but it is not service resumed.)"""
    refused = next((w for w in writes if w["status"] != 200 and w["answered"] > moment), None)
    if refused is None:
        return None
    return next((w for w in writes if w["status"] == 200 and w["sent"] > refused["answered"]), None)


def failover_under_load(cluster, servers, kill, folder, label):
    """Runs the update load through both servers, kills the primary with `kill` once the load is
    steady, keeps the load going until each server has had AFTER_S seconds of successful writes
    after its first one past the kill, stops it and checks what is stored. Returns the figures."""
    loads = [Load(server, folder, f"{label}-{n}") for n, server in enumerate(servers.all)]
    try:
        started = time.time()
        eventually(lambda: time.time() - started > STEADY_S and all(len(l.acknowledged()) >= 100 for l in loads),
                   timeout=60, what="a steady load")
        node, killed_at = kill(cluster)
        new_leader = cluster.wait_for_new_leader(node, timeout=90)
        promoted_s = time.time() - killed_at

        def recovered(load):
            writes = load.read()
            first = first_success_after(writes, killed_at)
            return first is not None and any(w["status"] == 200 and w["sent"] > first["answered"] + AFTER_S
                                             for w in writes)

        eventually(lambda: all(recovered(l) for l in loads), timeout=RECOVERY_LIMIT_S + AFTER_S + 60,
                   what="writes to succeed again after the failover")
    finally:
        for load in loads:
            load.stop()
    figures = {"node": node, "new_leader": new_leader, "promoted_s": promoted_s, "recovered_s": [], "refused": 0,
               "statuses": {}, "retry_after": set(), "writes": 0, "acknowledged": 0}
    all_writes = []
    for load in loads:
        writes = load.writes
        all_writes += writes
        first = first_success_after(writes, killed_at)
        figures["recovered_s"].append(first["answered"] - killed_at)
        figures["writes"] += len(writes)
        figures["acknowledged"] += sum(w["status"] == 200 for w in writes)
        figures["late"] = figures.get("late", []) + [round(w["sent"] - killed_at, 2) for w in writes
                                                     if w["status"] != 200 and w["sent"] > first["answered"]]
        for w in writes:
            figures["statuses"][w["status"]] = figures["statuses"].get(w["status"], 0) + 1
            if w["status"] != 200:
                figures["refused"] += 1
                figures["retry_after"].add(w["retry_after"])
    plans, histories = collect(servers.all[0], all_writes)
    figures["unseen"] = unseen_acknowledged_writes(all_writes, histories)
    figures["broken"] = broken_chains(plans, histories)
    if figures["broken"]:
        figures["broken"].append(explain_broken(cluster, servers, plans, histories, all_writes))
    figures["plans"] = plans
    figures["bad_answers"] = [w for w in all_writes if w["status"] not in (200, 503)
                              or (w["status"] == 503 and not w["retry_after"])]
    return figures


def describe(figures):
    return (f"{figures['node']} → {figures['new_leader']} promoted after {figures['promoted_s']:.1f} s; "
            f"first write after the kill {', '.join(f'{s:.2f}' for s in figures['recovered_s'])} s; "
            f"{figures['writes']} writes, {figures['acknowledged']} acknowledged, {figures['refused']} refused "
            f"{dict(sorted(figures['statuses'].items()))} (Retry-After {sorted(map(str, figures['retry_after']))}); "
            f"{len(figures['unseen'])} acknowledged writes not stored; refused after the first success "
            f"(s after the kill) {figures['late'][:10]}")


def assert_sound(figures, servers, synchronous=True):
    """What must hold after every failover (with synchronous replication, also: nothing lost)."""
    bad = figures["bad_answers"]
    assert not bad, f"{len(bad)} answers neither 200 nor 503 with Retry-After, e.g. {bad[:5]}"
    if synchronous:
        unseen = figures["unseen"]
        assert not unseen, f"{len(unseen)} acknowledged writes are not stored, e.g. {unseen[:5]}"
    assert not figures["broken"], f"histories broken: {figures['broken'][:10]}"
    for plan in figures["plans"]:
        check_rules(plan)
    worst = max(figures["recovered_s"])
    assert worst < RECOVERY_LIMIT_S, f"writes succeeded again only {worst:.1f} s after the kill"
    servers.assert_unchanged_and_ready()


def summary(label, values):
    return f"{label}: p50 {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} runs " \
           f"({', '.join(f'{v:.2f}' for v in values)})"


# ----- the tests -----

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_failover_loses_no_acknowledged_write(synchronous_cluster, variant):
    cluster = synchronous_cluster
    servers = Servers(fresh_database(cluster))
    folder = tempfile.mkdtemp(prefix="fletcher-ha-run.")
    recovered, promoted, refused = [], [], []
    try:
        for run in range(1, RUNS + 1):
            try:
                figures = failover_under_load(cluster, servers, VARIANTS[variant], folder, f"{variant}{run}")
                print(f"\nfailover ({variant}), run {run}: {describe(figures)}")
                assert_sound(figures, servers)
            except BaseException:
                print(cluster.diagnostics(), "\nFletcher's log:\n" + servers.log_summary())
                raise
            recovered.append(max(figures["recovered_s"]))
            promoted.append(figures["promoted_s"])
            refused.append(figures["refused"])
            cluster.heal()
        print(f"\nfailover ({variant}), synchronous: " + summary("kill → first write", recovered) + "; "
              + summary("kill → new primary", promoted) + f"; refused (503) per run {refused}")
        print("Fletcher's warnings and errors:\n" + servers.log_summary())
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_asynchronous_failover_loses_only_the_last_writes(asynchronous_cluster):
    """Asynchronous replication: measures the acknowledged writes a failover loses (not asserted:
    that is what asynchronous replication trades for latency); asserts everything else."""
    cluster = asynchronous_cluster
    servers = None
    folder = tempfile.mkdtemp(prefix="fletcher-ha-run.")
    lost, recovered = [], []
    try:
        servers = Servers(fresh_database(cluster))
        for run in range(1, ASYNC_RUNS + 1):
            variant = list(VARIANTS)[(run - 1) % 2]
            try:
                figures = failover_under_load(cluster, servers, VARIANTS[variant], folder, f"async-{variant}{run}")
                print(f"\nasynchronous failover ({variant}), run {run}: {describe(figures)}")
                for write, product, shown in figures["unseen"][:5]:
                    print(f"  lost: {write['kind']} {write['state']} of {write['dataset_id']}/{product} answered "
                          f"{figures_time(write['answered'])}; the history shows {shown}")
                assert_sound(figures, servers, synchronous=False)
            except BaseException:
                print(cluster.diagnostics(), "\nFletcher's log:\n" + servers.log_summary())
                raise
            lost.append(len(figures["unseen"]))
            recovered.append(max(figures["recovered_s"]))
            cluster.heal()
        print(f"\nfailover, asynchronous: acknowledged writes lost per run {lost}; "
              + summary("kill → first write", recovered))
    finally:
        if servers:
            servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


def stored(cluster, url, dataset):
    """{product name: state} of a plan as the primary has it (read straight from its tables)."""
    rows = cluster.psql(f"SELECT name || '=' || state FROM data_product WHERE dataset_id = '{dataset}'",
                        database=url.rsplit("/", 1)[1].split("?")[0])
    return dict(line.split("=", 1) for line in rows.split())


def answered(server, dataset):
    """(status, {product name: state}) of a plan as a process answers it."""
    status, _, body, _ = send(server.port, "GET", f"/api/plan/{dataset}")
    return status, ({p["name"]: p["state"] for p in json.loads(body)["data_products"]} if status == 200 else body[:200])


def test_a_commit_lost_in_an_asynchronous_failover_is_neither_served_nor_built_on(asynchronous_cluster):
    """A write acknowledged by the primary and lost with it (the standby never received it) is gone
    from the database after the failover: the process that acknowledged it must not go on serving
    its copy of the plan, nor apply later changes to that copy. Made certain here by stopping the
    primary's WAL senders for the one write. Afterwards both processes answer the plan as the
    primary stores it, every change is accepted (200 — no 500), and the stored plan follows the
    rules (an eager child is queued exactly when its parent succeeded)."""
    cluster = asynchronous_cluster
    url = fresh_database(cluster)
    servers = Servers(url)
    try:
        a, b = servers.all
        api = API(a.base)
        dataset, ids = api.submit([("x", False), ("y", True)], edges=[(0, 1)])
        eventually(lambda: answered(b, dataset)[0] == 200, timeout=30, what="the plan on the standby's side")
        cluster.hold_replication()
        plan = api.update(dataset, ids[0], "running")     # acknowledged by the primary alone
        assert {p["name"]: p["state"] for p in plan["data_products"]} == {"x": "running", "y": "waiting"}
        node, _ = cluster.kill_postgres_of_leader()
        cluster.wait_for_new_leader(node, timeout=90)
        servers.assert_unchanged_and_ready()
        truth = stored(cluster, url, dataset)
        assert truth == {"x": "waiting", "y": "waiting"}, f"the write was not lost after all: {truth}"
        eventually(lambda: all(answered(s, dataset) == (200, truth) for s in servers.all), timeout=30,
                   what=f"both processes to answer the plan as stored, {truth}: {[answered(s, dataset) for s in servers.all]}")
        # Changes through the process that acknowledged the lost write, then through the other.
        steps = [(a, "success", {"x": "success", "y": "queued"}), (a, "running", {"x": "running", "y": "waiting"}),
                 (b, "failed", {"x": "failed", "y": "waiting"}), (a, "success", {"x": "success", "y": "queued"})]
        for server, state, expected in steps:
            status, _, body, _ = send(server.port, "PUT", f"/api/data_product/{dataset}/update",
                                      [{"id": ids[0], "state": state}], api.token)
            assert status == 200, f"update x {state} through {'ab'[servers.all.index(server)]}: {status} {body[:200]}"
            assert stored(cluster, url, dataset) == expected
            for other in servers.all:
                assert answered(other, dataset) == (200, expected)
        changes = {i: history(a.port, dataset, i) for i in ids}
        plan = api.plan(dataset)
        assert not broken_chains([plan], {(dataset, i): c for i, c in changes.items()})
        check_rules(plan)
    except BaseException:
        print(cluster.diagnostics(), "\nFletcher's log:\n" + servers.log_summary())
        raise
    finally:
        servers.stop()


def test_a_connection_that_lands_on_a_standby_is_answered_503(synchronous_cluster):
    """A proxy may, for a moment, send new connections to a node that is no longer (or not yet) the
    primary — HAProxy keeps a demoted node up until its checks fail (`fall`), and Patroni answers
    /primary with 200 as soon as it holds the leader key, before PostgreSQL is promoted. Here
    HAProxy is told to do so for good: its sessions to the primary are cut and new ones go to the
    standby, which is read-only. Fletcher must take that as the database being unavailable — every
    write answered 503 with Retry-After, never 500, and /ready 503 — and recover by itself once the
    proxy sends it to the primary again."""
    cluster = synchronous_cluster
    servers = Servers(fresh_database(cluster))
    try:
        server = servers.all[0]
        api = API(server.base)
        dataset, ids = api.submit([("x", False), ("y", True)], edges=[(0, 1)])
        leader = cluster.leader()
        standby = cluster.other(leader)
        answers = []
        try:
            cluster.haproxy(f"disable health primary/{standby}")
            cluster.haproxy(f"set server primary/{standby} health up")
            cluster.haproxy(f"set server primary/{leader} state maint")
            cluster.haproxy(f"shutdown sessions server primary/{leader}")
            deadline = time.time() + 8
            while time.time() < deadline:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                connection.request("PUT", f"/api/data_product/{dataset}/update",
                                   body=json.dumps([{"id": ids[0], "state": ["running", "success"][len(answers) % 2]}]),
                                   headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
                response = connection.getresponse()
                answers.append((response.status, response.getheader("Retry-After"), response.read()[:200]))
                connection.close()
                time.sleep(0.1)
            ready = send(server.port, "GET", "/ready")[0]
        finally:
            cluster.haproxy(f"set server primary/{leader} state ready")
            cluster.haproxy(f"enable health primary/{standby}")
            cluster.haproxy(f"shutdown sessions server primary/{standby}")
            cluster.wait_healthy(timeout=60)
        # Routed to the primary again: writes succeed, without a restart.
        eventually(lambda: send(server.port, "PUT", f"/api/data_product/{dataset}/update",
                                [{"id": ids[0], "state": "running"}], api.token)[0] == 200,
                   timeout=30, what="writes to succeed once connections reach the primary again")
        servers.assert_unchanged_and_ready()
        print(f"\nconnections on a standby: {len(answers)} writes answered {sorted({a[0] for a in answers})}, "
              f"/ready {ready}; writes succeed again once routed to the primary")
        bad = [a for a in answers if a[0] != 503 or not a[1]]
        assert not bad, f"{len(bad)} of {len(answers)} writes not answered 503 with Retry-After, e.g. {bad[:3]}"
        assert ready == 503
    finally:
        servers.stop()


def figures_time(moment):
    return datetime.fromtimestamp(moment).strftime("%H:%M:%S.%f")[:-3]


# ----- triggers and the event stream across a failover -----

class ComputePlatform:
    """A compute platform on loopback: records every trigger it receives (202 with a run id) and has
    each new trigger id's product reported `success` (with its trigger id), through the Fletcher
    processes in turn, retrying while they answer 503. A trigger id seen before is a re-send: it is
    accepted again, not run again."""

    def __init__(self, servers):
        self.servers = servers
        self.tokens = [API(s.base).token for s in servers]
        self.lock = threading.Lock()
        self.received = []      # trigger bodies, in arrival order
        self.seen = set()       # their trigger ids
        self.reported_at = []   # when each report was acknowledged
        self.reported = set()   # trigger ids whose success Fletcher acknowledged
        self.stale = set()      # trigger ids refused with 409 (no longer the product's try)
        self.pending = []       # bodies to report
        self.wake = threading.Condition(self.lock)
        self.stopping = False
        self.answers = {}       # status → count, of the reports
        self.outcomes = {}      # trigger id → statuses its reports got, in order
        platform = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                body["received_at"] = round(time.time(), 3)
                with platform.lock:
                    platform.received.append(body)
                    if body["trigger_id"] not in platform.seen:
                        platform.seen.add(body["trigger_id"])
                        platform.pending.append(body)
                        platform.wake.notify()
                answer = json.dumps({"run_id": str(uuid.uuid4())}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobs"
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True)]
        self.threads += [threading.Thread(target=self._reporter, args=(n,), daemon=True) for n in range(4)]
        for thread in self.threads:
            thread.start()

    def _reporter(self, n):
        while True:
            with self.lock:
                while not self.pending and not self.stopping:
                    self.wake.wait(0.5)
                if self.stopping:
                    return
                body = self.pending.pop(0)
            self._report(body, n)

    def _report(self, body, n):
        path = f"/api/data_product/{body['dataset_id']}/update"
        item = [{"id": body["data_product_id"], "state": "success", "trigger_id": body["trigger_id"]}]
        deadline = time.time() + 120
        attempt = 0
        while time.time() < deadline and not self.stopping:
            server = self.servers[(n + attempt) % len(self.servers)]
            attempt += 1
            try:
                status = send(server.port, "PUT", path, item, self.tokens[self.servers.index(server)])[0]
            except (OSError, http.client.HTTPException):
                status = 0
            with self.lock:
                self.answers[status] = self.answers.get(status, 0) + 1
                self.outcomes.setdefault(body["trigger_id"], []).append((round(time.time(), 3), status))
                if status == 200:
                    self.reported.add(body["trigger_id"])
                    self.reported_at.append(time.time())
                    return
                if status == 409:
                    self.stale.add(body["trigger_id"])
                    return
            time.sleep(0.2)

    def close(self):
        with self.lock:
            self.stopping = True
            self.wake.notify_all()
        self.server.shutdown()


class StreamReader:
    """`GET /api/events/stream` on one process, read in a thread for as long as the test runs: when
    the stream ends or fails it reconnects, resuming with Last-Event-ID. Keeps every message with
    the time it arrived."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.messages = []      # (arrival time, message)
        self.connects = []      # (time, status) of each connection
        self.start = None       # the feed cursor the first connection started after
        self.stopping = False
        self.stream = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        eventually(lambda: self.start is not None, timeout=30, what="the event stream to open")

    def _run(self):
        while not self.stopping:
            last = self.messages[-1][1]["id"] if self.messages else self.start
            try:
                self.stream = EventStream(self.port, self.token, last_event_id=last)
                self.connects.append((time.time(), self.stream.status))
                if self.stream.status != 200:
                    self.stream.close()
                    time.sleep(0.5)
                    continue
                if self.start is None:
                    self.start = self.stream.wait_comment("events after ").split("events after ", 1)[1]
                while not self.stopping and not self.stream.ended:
                    self.stream._receive(time.time() + 3600, "events")
                    self.stream._take_in()
                    now = time.time()
                    self.messages += [(now, m) for m in self.stream.messages]
                    self.stream.messages = []
            except (OSError, AssertionError, ValueError, IndexError):
                pass
            finally:
                if self.stream:
                    self.stream.close()
            if not self.stopping:
                time.sleep(0.2)

    def close(self):
        self.stopping = True
        self.thread.join(timeout=10)


def feed(api, after):
    """Every event of the feed after cursor `after`, oldest first."""
    events, cursor = [], after
    while True:
        page = api.call("GET", "/api/events?limit=1000" + (f"&after={urllib.parse.quote(cursor)}" if cursor else ""))
        if not page["events"]:
            return events
        events += page["events"]
        cursor = page["next"]


def submit_chain(api, length=3):
    """A plan of `length` eager products in a chain, the first queued at once; returns its id."""
    dataset = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(length)]
    api.call("POST", "/api/plan", {
        "dataset": {"id": dataset, "extra": {"ha": True}},
        "data_products": [{"id": i, "compute": "cams", "name": f"step {n}", "version": "1", "eager": True}
                          for n, i in enumerate(ids)],
        "dependencies": [{"parent_id": ids[n], "child_id": ids[n + 1]} for n in range(length - 1)]})
    return dataset


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_triggers_and_the_event_stream_survive_a_failover(synchronous_cluster, variant):
    cluster = synchronous_cluster
    url = fresh_database(cluster)
    platform = servers = stream = None
    datasets, refused = [], {}
    try:
        # The platform's port is known only once it listens; the servers need it at start.
        platform = ComputePlatform([])
        targets = {"cams": {"url": platform.url, "max_in_flight": 16, "timeout_s": 2}}
        servers = Servers(url, compute_targets=targets)
        platform.servers = servers.all
        platform.tokens = [API(s.base).token for s in servers.all]
        apis = [API(s.base) for s in servers.all]
        stream = StreamReader(servers.all[0].port, apis[0].token)
        stop = threading.Event()

        odd = []        # (time, status, body) of submissions answered neither 200 nor 503

        def submitter(n):
            # A plan every 0.05 s per process; a refused submission is not retried (not acknowledged).
            while not stop.is_set():
                try:
                    datasets.append(submit_chain(apis[n]))
                except Exception as error:
                    key = getattr(error, "code", type(error).__name__)
                    refused[key] = refused.get(key, 0) + 1
                    if key != 503:
                        body = error.read()[:500] if hasattr(error, "read") else str(error)
                        odd.append((figures_time(time.time()), key, body))
                time.sleep(0.05)

        threads = [threading.Thread(target=submitter, args=(n,), daemon=True) for n in range(2)]
        for thread in threads:
            thread.start()
        eventually(lambda: len(platform.reported) >= 50, timeout=60, what="50 triggers reported done")
        node, killed_at = VARIANTS[variant](cluster)
        cluster.wait_for_new_leader(node, timeout=90)
        # Queueing goes on after the failover: products succeed, and the stream tells of it.
        eventually(lambda: sum(t > killed_at for t in platform.reported_at) >= 30
                   and any(t > killed_at and m["event"] == "data_product.succeeded" for t, m in stream.messages[-100:]),
                   timeout=RECOVERY_LIMIT_S + 60, what="products to succeed, and the stream to tell, after the failover")
        resumed = time.time()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        # Every plan the platform heard of counts, also one whose submission was answered 503 although
        # it was committed (its answer lost with the primary).
        with platform.lock:
            plans = sorted(set(datasets) | {b["dataset_id"] for b in platform.received})
        late = []       # (seconds after the kill, status) of plan reads refused while settling

        def plan(dataset):
            status, _, body, _ = send(servers.all[1].port, "GET", f"/api/plan/{dataset}")
            if status != 200:
                late.append((round(time.time() - killed_at, 2), status))
                return None
            return json.loads(body)

        # Everything settles: every product of every plan succeeded.
        def settled():
            return all((lambda p: p is not None and all(x["state"] == "success" for x in p["data_products"]))(plan(d))
                       for d in plans)
        eventually(settled, timeout=120, what="every plan to finish")
        # The stream catches up with the feed.
        events = feed(apis[1], stream.start)
        eventually(lambda: len(stream.messages) >= len(events), timeout=30, what="the stream to catch up")
        messages = [m for _, m in stream.messages]
        assert [m["id"] for m in messages] == [e["cursor"] for e in events], \
            f"the stream ({len(messages)} messages) is not the feed ({len(events)} events)"
        assert [m["data"] for m in messages] == events
        assert any(t > killed_at for t, _ in stream.messages)

        # Every try reached the platform under its one trigger id; nothing else did.
        tries = {}      # trigger id → (dataset, product, try), from the histories
        superseded = {}  # trigger id → the change that took its product out of `queued`
        for dataset in plans:
            for product in apis[1].plan(dataset)["data_products"]:
                changes = history(servers.all[1].port, dataset, product["id"])
                for n, change in enumerate(changes):
                    if change["to"] == "queued":
                        tries[change["trigger_id"]] = (dataset, product["id"], change["try"])
                        if n + 1 < len(changes) and changes[n + 1]["to"] == "waiting":
                            superseded[change["trigger_id"]] = changes[n + 1]
        with platform.lock:
            received = list(platform.received)
        ids_by_try = {}
        for body in received:
            ids_by_try.setdefault((body["dataset_id"], body["data_product_id"], body["try"]), set()).add(body["trigger_id"])
        twice = {k: v for k, v in ids_by_try.items() if len(v) > 1}
        assert not twice, f"tries delivered under several trigger ids: {list(twice.items())[:5]}"
        delivered = {body["trigger_id"] for body in received}

        def explain(trigger_ids):
            """Each product's history and what the platform received for it."""
            products = {tries[i][:2] if i in tries else next((b["dataset_id"], b["data_product_id"]) for b in received
                                                              if b["trigger_id"] == i) for i in list(trigger_ids)[:3]}
            return "\n".join(
                f"{dataset}/{product}: history "
                + json.dumps([{k: c[k] for k in ("at", "from", "to", "reason", "try", "trigger_id")}
                              for c in history(servers.all[1].port, dataset, product)])
                + "; received " + json.dumps([dict({k: b[k] for k in ("trigger_id", "try", "attempt", "received_at")},
                                                   reports=platform.outcomes.get(b["trigger_id"])) for b in received
                                              if (b["dataset_id"], b["data_product_id"]) == (dataset, product)])
                + f"; killed at {killed_at:.3f}"
                for dataset, product in products)

        # A try whose product went back to `waiting` before its trigger was sent (a downstream reset)
        # is cancelled, never sent (rule 15); every other try reached the platform.
        missing = set(tries) - delivered - set(superseded)
        assert not missing, f"{len(missing)} tries never delivered:\n{explain(missing)}"
        cancelled = (set(tries) - delivered) & set(superseded)
        unknown = delivered - set(tries)
        assert not unknown, f"{len(unknown)} triggers for tries the history does not have:\n{explain(unknown)}"
        for body in received:
            assert tries[body["trigger_id"]] == (body["dataset_id"], body["data_product_id"], body["try"]), body
        resent = len(received) - len(delivered)
        for dataset in plans:
            check_rules(apis[1].plan(dataset))
        servers.assert_unchanged_and_ready()
        # No 5xx but 503, for submissions and reports alike (409: a report on a try that a repeated
        # report of its parent has replaced, below).
        assert set(refused) <= {503}, f"submissions answered {refused}: {odd[:5]}"
        assert set(platform.answers) <= {200, 409, 503}, platform.answers
        reconnects = len(stream.connects) - 1
        # Several tries of one product: a parent's success report retried after a 503 whose change
        # had in fact been committed (its answer lost with the primary) resets and queues the child
        # again (rules 2 and 1).
        again = sum(1 for t in tries.values() if t[2] > 1)
        print(f"\ntriggers across a failover ({variant}): {len(plans)} plans ({len(plans) - len(datasets)} of them "
              f"submitted with a 503 answer), {len(tries)} tries ({again} second "
              f"tries; {len(cancelled)} tries replaced before delivery, not sent), the others delivered "
              f"(re-sent with the same id {resent} times); reports answered {dict(sorted(platform.answers.items()))}; "
              f"submissions refused {refused}; event stream: {len(messages)} events, exactly the feed, "
              f"{reconnects} reconnections {[s for _, s in stream.connects]}, "
              f"resumed {resumed - killed_at:.1f} s after the kill; plan reads refused while settling "
              f"(s after the kill, status): {late}")
        print("Fletcher's warnings and errors:\n" + servers.log_summary())
    except BaseException:
        print(cluster.diagnostics(), "\nFletcher's log:\n" + (servers.log_summary() if servers else ""))
        raise
    finally:
        if stream:
            stream.close()
        if platform:
            platform.close()
        if servers:
            servers.stop()

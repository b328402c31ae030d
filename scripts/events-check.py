#!/usr/bin/env python3
"""Runs a plan (a binary tree of 1,000 products by default) against `fletcher simulate-compute` failing
and hanging jobs, with retries, timeouts, cancels and deadlines (a share of them so tight they are
missed), until nothing can move any more; then reads every event of the dataset and every product's
history and checks that each occurrence in the history gave exactly one event (docs/RULES.md rules
27 and 28): none missing, none doubled, none extra.

    .venv-e2e/bin/python scripts/events-check.py [--database sqlite|postgres] [--products 1000] [--tight 0.3] [--all-in-time]

`--all-in-time` gives every deadline room (and more retries, so every product succeeds): then there
must be no `late` event at all; once the plan succeeded, a resubmission gives every product and the
dataset a deadline a moment away, and a mutation after it decides them all (met).
PostgreSQL needs FLETCHER_TEST_POSTGRES_URL (`scripts/with-postgres.sh .venv-e2e/bin/python
scripts/events-check.py --database postgres`). FLETCHER_BIN picks the binary (default
.build/release/fletcher, else debug). Prints one JSON line of counts and exits 1 on any mismatch."""
import argparse
import collections
import datetime
import json
import os
import random
import sys
import tempfile
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
os.environ.setdefault("FLETCHER_BIN", next(
    (p for p in (os.path.join(ROOT, ".build", c, "fletcher") for c in ("release", "debug")) if os.path.exists(p)), ""))

from conftest import API  # noqa: E402
from servers import SimulatedCompute, Fletcher, binary_tree, fresh_postgres_database, history, wait_settled  # noqa: E402


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def events_of(api, dataset):
    """Every event of the dataset, in feed order (all pages)."""
    events, cursor = [], None
    while True:
        query = {"dataset_id": dataset, "limit": 1000}
        if cursor:
            query["after"] = cursor
        page = api.call("GET", "/api/events?" + urllib.parse.urlencode(query))
        events += page["events"]
        if not page["events"]:
            return events
        cursor = page["next"]


def state_at(changes, moment):
    """A product's state as the first mutation at or after `moment` found it (docs/RULES.md rule 27):
    its state before its first change at or after `moment`, or its last state if none came. Returns
    the state, its try then, and the time of that change (None when none came)."""
    state, try_number = None, 0
    for change in changes:
        if parse_time(change["at"]) >= moment:
            return state, try_number, change["at"]
        state, try_number = change["to"], change["try"] or 0
    return state, try_number, None


def expected_events(products, histories, dataset_deadline, retries):
    """The events the history says must exist, each as a comparable key, with the history entry's time.
    `retries` is the policy's maximum: a failure reported or timed out leaves a retry pending (is not
    final) while fewer were made since the last queueing by anything but a retry (docs/RULES.md rule 23)."""
    expected = []
    for product in products:
        pid = product["id"]
        entries = histories[pid]
        changes = [e for e in entries if e["kind"] == "state_change"]
        deadline = parse_time(product["deadline"]) if product["deadline"] else None
        missed = False
        if deadline is not None:
            state, try_number, _ = state_at(changes, deadline)
            decided = state is not None and (deadline <= now())
            if decided and state not in ("success", "disabled"):
                missed = True
                expected.append((("data_product.late", pid, rfc3339(deadline), state, try_number or None), None))
        retries_used = 0
        for change in changes:
            to, reason, try_number, trigger = change["to"], change["reason"], change["try"], change["trigger_id"]
            if to == "queued":
                retries_used = retries_used + 1 if reason == "retry" else 0
            if to == "failed":
                final = reason not in ("api", "timeout") or retries_used >= retries
                if reason == "timeout":
                    expected.append((("data_product.timed_out", pid, try_number, trigger, reason), change["at"]))
                if reason == "dispatch":
                    expected.append((("trigger.undeliverable", pid, try_number, trigger, reason, final), change["at"]))
                expected.append((("data_product.failed", pid, try_number, trigger, reason, final), change["at"]))
            elif to == "queued" and reason == "retry":
                expected.append((("data_product.retrying", pid, try_number), change["at"]))
            elif to == "success":
                late = missed and parse_time(change["at"]) >= deadline
                expected.append((("data_product.succeeded", pid, try_number, late), change["at"]))
        # A try cut short at a platform that takes cancels (all of this run's): it left queued or
        # running by a timeout, a downstream reset, a clear or a disable (docs/RULES.md rules 25, 28),
        # whether or not its trigger had been sent (only then is a cancel request sent).
        for change in changes:
            cut_short = change["reason"] in ("timeout", "downstream_reset") or (
                change["reason"] == "api" and change["to"] in ("waiting", "disabled"))
            if change.get("from") in ("queued", "running") and cut_short and change["trigger_id"]:
                expected.append((("data_product.cancelled", pid, change["try"], change["trigger_id"]), change["at"]))
    # The dataset: replay every product's changes in time order (one mutation's changes share a time).
    states = {p["id"]: None for p in products}
    moments = collections.defaultdict(list)
    for pid, entries in histories.items():
        for e in entries:
            if e["kind"] == "state_change":
                moments[parse_time(e["at"])].append((e["sequence"], pid, e["to"]))
    succeeded_times = []
    dataset_late = None
    for moment in sorted(moments):
        if dataset_deadline is not None and dataset_late is None and moment >= dataset_deadline:
            dataset_late = sum(s not in ("success", "disabled") for s in states.values())
        was = all(s == "success" for s in states.values())
        for _, pid, to in sorted(moments[moment]):
            states[pid] = to
        if not was and all(s == "success" for s in states.values()):
            succeeded_times.append(moment)
    if dataset_deadline is not None and dataset_late is None and dataset_deadline <= now():
        dataset_late = sum(s not in ("success", "disabled") for s in states.values())
    if dataset_late:
        expected.append((("dataset.late", None, rfc3339(dataset_deadline), dataset_late), None))
    for moment in succeeded_times:
        late = dataset_late is not None and dataset_late > 0 and moment >= dataset_deadline
        expected.append((("dataset.succeeded", None, late), rfc3339(moment)))
    return expected


def event_key(event):
    """An event as the comparable key `expected_events` makes."""
    data, pid, kind = event["data"], event["data_product_id"], event["type"]
    if kind == "data_product.late":
        return (kind, pid, rfc3339(parse_time(data["deadline"])), data["state"], data.get("try"))
    if kind == "data_product.timed_out":
        return (kind, pid, data["try"], data.get("trigger_id"), data["reason"])
    if kind in ("data_product.failed", "trigger.undeliverable"):
        return (kind, pid, data["try"], data.get("trigger_id"), data["reason"], data["final"])
    if kind == "data_product.retrying":
        return (kind, pid, data["try"])
    if kind == "data_product.succeeded":
        return (kind, pid, data["try"], "late_by_s" in data)
    if kind == "data_product.cancelled":
        return (kind, pid, data["try"], data.get("trigger_id"))
    if kind == "dataset.late":
        return (kind, None, rfc3339(parse_time(data["deadline"])), data["unfinished"])
    if kind == "dataset.succeeded":
        return (kind, None, "late_by_s" in data)
    return (kind, pid)


def compare(events, expected, products, drop=0):
    """Counts, and the list of problems: every expected event matched by exactly one, and the feed's
    own invariants (sequence 1..N, unique ids, each event's time the history's, data consistent)."""
    problems = []
    if drop:
        # A self-check of the check: with events left out, it must fail.
        events = events[drop:]
    sequences = [e["sequence"] for e in events]
    if sorted(sequences) != list(range(1, len(events) + 1)):
        problems.append({"sequence": "not 1..N: a gap or a double", "first": sorted(sequences)[:5]})
    for index in range(1, len(events)):
        if sequences[index] < sequences[index - 1]:
            problems.append({"order": "the feed is not in sequence order", "at": index,
                             "around": [(e["sequence"], e["type"], e["time"], e["cursor"])
                                        for e in events[max(0, index - 3):index + 3]]})
    if len({e["id"] for e in events}) != len(events):
        problems.append({"ids": "not unique"})
    deadlines = {p["id"]: p["deadline"] for p in products}
    actual = collections.defaultdict(list)
    for event in events:
        actual[event_key(event)].append(event)
        data = event["data"]
        if event["type"] == "data_product.succeeded" and "late_by_s" in data:
            late_by = (parse_time(event["time"]) - parse_time(deadlines[event["data_product_id"]])).total_seconds()
            if abs(data["late_by_s"] - late_by) > 0.002:
                problems.append({"late_by_s": data["late_by_s"], "expected": late_by, "event": event["id"]})
        if event["type"] == "data_product.failed" and data["final"] == ("retry_at" in data):
            problems.append({"retry_at": "present iff not final", "event": event["id"]})
    wanted = collections.defaultdict(list)
    for key, at in expected:
        wanted[key].append(at)
    matched = missing = extra = 0
    for key in set(wanted) | set(actual):
        have, want = actual.get(key, []), wanted.get(key, [])
        matched += min(len(have), len(want))
        if len(have) < len(want):
            missing += len(want) - len(have)
            problems.append({"missing": list(key), "count": len(want) - len(have)})
        elif len(have) > len(want):
            extra += len(have) - len(want)
            problems.append({"extra": list(key), "events": [e["id"] for e in have]})
        # Written with the change: the event's time is the history's.
        times = sorted(parse_time(at) for at in want if at is not None)
        if len(times) == len(want) == len(have) and times != sorted(parse_time(e["time"]) for e in have):
            problems.append({"time": list(key), "history": [rfc3339(t) for t in times],
                             "events": [e["time"] for e in have]})
    # A timeout's event comes before its failure's, a failed dispatch's before its failure's.
    position = {e["id"]: e["sequence"] for e in events}
    for key, found in actual.items():
        if key[0] in ("data_product.timed_out", "trigger.undeliverable"):
            failed = [f for final in (True, False) for f in actual.get(("data_product.failed",) + key[1:5] + (final,), [])]
            if failed and position[found[0]["id"]] > position[failed[0]["id"]]:
                problems.append({"order": list(key)})
    return {"matched": matched, "missing": missing, "extra": extra}, problems


def run(database_kind, database=None, products=1000, tight=0.3, window_s=30.0, fail_rate=0.3, hang_rate=0.1, retries=5,
        all_in_time=False, timeout=900, drop=0, seed=None):
    """Runs the plan (on `database`, a URL, or a fresh one of `database_kind`) and the comparison;
    returns the figures (with `problems`, empty when all holds) and what was compared (the events,
    the expected keys, the products) for `compare` to be tried again."""
    rng = random.Random(seed)
    folder = tempfile.mkdtemp(prefix="fletcher-events-")
    if database is not None:
        database_kind = "postgres" if database.startswith("postgres") else "sqlite"
    else:
        database = fresh_postgres_database() if database_kind == "postgres" else f"sqlite:{folder}/events.sqlite"
    if database is None:
        raise SystemExit("--database postgres needs FLETCHER_TEST_POSTGRES_URL (scripts/with-postgres.sh)")
    simulator = SimulatedCompute(fail_rate, hang_rate, retries, folder=folder)
    server = None
    try:
        server = Fletcher(database, simulator.targets, extra_env={"LOG_LEVEL": "warning"})
        api = API(server.base)
        dataset = str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in range(products)]
        started = now()
        generous = started + datetime.timedelta(hours=1)

        def deadline():
            if all_in_time or rng.random() >= tight:
                return generous
            return started + datetime.timedelta(seconds=rng.uniform(0.5, window_s))

        def submission(deadlines, dataset_deadline):
            return {"dataset": {"id": dataset, "extra": {"demo": "events"}, "deadline": rfc3339(dataset_deadline)},
                    "data_products": [{"id": i, "compute": "cams", "name": f"job-{n}", "version": "1", "eager": True,
                                       "deadline": rfc3339(deadlines[n])} for n, i in enumerate(ids)],
                    "dependencies": binary_tree(ids)}

        dataset_deadline = generous if all_in_time else started + datetime.timedelta(seconds=window_s / 2)
        api.call("POST", "/api/plan", submission([deadline() for _ in ids], dataset_deadline))
        plan = wait_settled(api, dataset, timeout)
        seconds = (now() - started).total_seconds()
        if all_in_time:
            if any(p["state"] != "success" for p in plan["data_products"]):
                raise SystemExit("--all-in-time needs every product to succeed: give it more --retries")
            # Every deadline a moment away, reached with every product `success`; a pause after it
            # decides any the sweeper has not.
            soon = now() + datetime.timedelta(seconds=2)
            api.call("POST", "/api/plan", submission([soon] * len(ids), soon))
            while now() <= soon:
                time.sleep(0.1)
            api.call("PUT", f"/api/plan/{dataset}/pause")
            api.call("PUT", f"/api/plan/{dataset}/unpause")
        else:
            # Deadlines past and missed are decided by the sweeper when no mutation came after them.
            last = max([parse_time(p["deadline"]) for p in plan["data_products"]
                        if parse_time(p["deadline"]) < generous] + [dataset_deadline])
            while now() <= last:
                time.sleep(0.2)
            waited = time.time()
            while time.time() - waited < 60:
                plan = api.plan(dataset)
                undecided = [p for p in plan["data_products"] if parse_time(p["deadline"]) < now()
                             and p["state"] != "success" and not p["late"]]
                unfinished = any(p["state"] != "success" for p in plan["data_products"])
                if not undecided and (plan["dataset"]["late"] or not unfinished):
                    break
                time.sleep(0.2)
        plan = api.plan(dataset)
        histories = {p["id"]: history(api, dataset, p["id"]) for p in plan["data_products"]}
        events = events_of(api, dataset)
        expected = expected_events(plan["data_products"], histories,
                                   parse_time(plan["dataset"]["deadline"]) if plan["dataset"]["deadline"] else None,
                                   retries)
        if all_in_time:
            expected += [(("dataset.paused", None), None), (("dataset.unpaused", None), None)]
        compared = (events, expected, plan["data_products"])
        counts, problems = compare(*compared, drop=drop)
        for problem in problems:
            if problem.get("extra", [None])[0] == "data_product.cancelled":
                # Whether the cancelled try's trigger was ever sent (rule 25 sends no cancel then).
                problem["trigger_attempts"] = sum(
                    e["kind"] == "delivery" and not e["cancel"] and e["trigger_id"] == problem["extra"][3]
                    for e in histories[problem["extra"][1]])
        states = collections.Counter(p["state"] for p in plan["data_products"])
        return {"database": database_kind, "products": products, "all_in_time": all_in_time,
                "seconds": round(seconds, 1), "states": dict(states),
                "events": dict(sorted(collections.Counter(e["type"] for e in events).items())),
                **counts, "simulator": simulator.stats(), "problems": problems,
                "problem_count": len(problems)}, compared
    finally:
        simulator.stop()
        if server:
            server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--tight", type=float, default=0.3, help="share of products whose deadline is tight")
    parser.add_argument("--window", type=float, default=30, help="tight deadlines fall within this many seconds")
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--hang-rate", type=float, default=0.1)
    parser.add_argument("--retries", type=int, default=None, help="default 5, or 12 with --all-in-time")
    parser.add_argument("--all-in-time", action="store_true")
    parser.add_argument("--drop", type=int, default=0, help="leave out this many events (checks the check)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the plan to settle")
    options = parser.parse_args()
    figures, _ = run(options.database, None, options.products, options.tight, options.window, options.fail_rate,
                  options.hang_rate, options.retries if options.retries is not None else (12 if options.all_in_time else 5),
                  options.all_in_time, options.timeout, options.drop)
    figures["problems"] = figures["problems"][:20]
    print(json.dumps(figures))
    sys.exit(1 if figures["problem_count"] else 0)


if __name__ == "__main__":
    main()

"""The subcommands that talk to a running server (`plan`, `products`, `update`, `clear`, `disable`,
`rerun`, `events`) as real processes against a real server on each engine: what they print, what
they change, and the exit code of every kind of failure. Polls with deadlines; no fixed sleeps."""
import json
import os
import subprocess
import tempfile
import uuid

import pytest

from conftest import BINARY, KEY, API
from servers import Fletcher, eventually, free_port


@pytest.fixture
def served(database):
    """A server on a fresh database with two services: `e2e` (every role) and `viewer` (none)."""
    hashed = subprocess.run([BINARY, "hash-key", "--cost", "4"], input=KEY, capture_output=True, text=True,
                            check=True).stdout.strip()
    accounts = [{"service": "e2e", "hash": hashed, "roles": ["publish", "update", "pause", "disable"]},
                {"service": "viewer", "hash": hashed, "roles": []}]
    server = Fletcher(database, extra_env={"REMOTE_APIS": json.dumps(accounts)})
    yield server
    server.stop()


def cli(server, *arguments, service="e2e", key=KEY, url=None, stdin=None):
    env = {"PATH": os.environ.get("PATH", ""), "FLETCHER_URL": url or server.base}
    if service:
        env["FLETCHER_SERVICE"] = service
    if key:
        env["FLETCHER_KEY"] = key
    return subprocess.run([BINARY, *arguments], env=env, capture_output=True, text=True, timeout=120, input=stdin)


def plan_file(names, edges=()):
    """A plan submission in a file: (path, dataset id, {name: id})."""
    dataset = str(uuid.uuid4())
    ids = {name: str(uuid.uuid4()) for name in names}
    body = {"dataset": {"id": dataset, "extra": {"team": "cli"}},
            "data_products": [{"id": ids[n], "compute": "cams", "name": n, "version": "1", "eager": True} for n in names],
            "dependencies": [{"parent_id": ids[a], "child_id": ids[b]} for a, b in edges]}
    handle, path = tempfile.mkstemp(suffix=".json", prefix="fletcher-plan-")
    with os.fdopen(handle, "w") as out:
        json.dump(body, out)
    return path, dataset, ids


def test_a_session_submits_reads_breaks_and_reruns(served):
    path, dataset, ids = plan_file(["extract", "load"], [("extract", "load")])
    submitted = cli(served, "plan", "submit", path)
    assert submitted.returncode == 0, submitted.stderr
    assert "extract" in submitted.stdout and "queued" in submitted.stdout and dataset in submitted.stdout

    shown = cli(served, "plan", "show", dataset, "--json")
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)
    assert [p["state"] for p in plan["data_products"]] == ["queued", "waiting"]

    # The platform fails the job; the operator finds it and re-runs it, dry run first.
    failed = cli(served, "update", dataset, ids["extract"], "--state", "failed")
    assert failed.returncode == 0, failed.stderr
    listed = cli(served, "products", "--state", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(p["dataset_id"], p["id"]) for p in json.loads(listed.stdout)] == [(dataset, ids["extract"])]
    table = cli(served, "products", "--state", "failed")
    assert table.stdout.splitlines()[0].split()[:3] == ["DATASET", "DATA", "PRODUCT"]
    assert ids["extract"] in table.stdout

    dry = cli(served, "rerun", "--failed", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "failed → queued" in dry.stdout and "would be re-run" in dry.stdout
    assert json.loads(cli(served, "plan", "show", dataset, "--json").stdout)["data_products"][0]["state"] == "failed"
    rerun = cli(served, "rerun", "--failed")
    assert rerun.returncode == 0, rerun.stderr
    assert "1 data product was re-run in 1 plan" in rerun.stdout
    assert json.loads(cli(served, "plan", "show", dataset, "--json").stdout)["data_products"][0]["state"] == "queued"

    # Clear, pause, unpause, disable.
    assert cli(served, "update", dataset, ids["extract"], "--state", "success").returncode == 0
    cleared = cli(served, "clear", dataset, ids["extract"], "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["data_products"][0]["state"] == "queued"
    paused = cli(served, "plan", "pause", dataset)
    assert paused.returncode == 0 and "(paused)" in paused.stdout
    assert cli(served, "plan", "unpause", dataset).returncode == 0
    disabled = cli(served, "disable", dataset, ids["load"], "--json")
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["data_products"][1]["state"] == "disabled"

    # The events of it all, and a plan read from standard input.
    events = cli(served, "events", "--dataset", dataset, "--json")
    assert events.returncode == 0, events.stderr
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert "data_product.failed" in types and "dataset.paused" in types and "dataset.unpaused" in types
    with open(path) as submission:
        again = cli(served, "plan", "submit", "-", stdin=submission.read())
    assert again.returncode == 0, again.stderr


def test_events_follow_prints_new_events_as_they_are_written(served):
    api = API(served.base)
    dataset, _ = api.submit([("only", True)])
    # From the feed's end as it is now: what follows is the pause below.
    cursor = None
    while True:
        page = api.call("GET", "/api/events?limit=1000" + (f"&after={cursor}" if cursor else ""))
        cursor = page["next"]
        if not page["events"]:
            break
    process = subprocess.Popen([BINARY, "events", "--follow", "--json", "--type", "dataset.*", "--after", cursor],
                               env={"PATH": os.environ.get("PATH", ""), "FLETCHER_URL": served.base,
                                    "FLETCHER_SERVICE": "e2e", "FLETCHER_KEY": KEY},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        api.call("PUT", f"/api/plan/{dataset}/pause")
        event = json.loads(process.stdout.readline())
        assert event["dataset_id"] == dataset and event["type"] == "dataset.paused"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_every_failure_has_its_exit_code_and_says_why(served):
    path, dataset, ids = plan_file(["only"])
    assert cli(served, "plan", "submit", path).returncode == 0

    missing = cli(served, "plan", "show", dataset, service=None, key=None)
    assert missing.returncode == 0  # reads need no login
    no_login = cli(served, "plan", "pause", dataset, service=None, key=None)
    assert no_login.returncode == 3 and "FLETCHER_SERVICE" in no_login.stderr
    wrong_key = cli(served, "plan", "pause", dataset, key="wrong")
    assert wrong_key.returncode == 3 and "login refused" in wrong_key.stderr

    unknown = cli(served, "plan", "show", str(uuid.uuid4()))
    assert unknown.returncode == 4 and "not found" in unknown.stderr.lower()
    refused = cli(served, "plan", "pause", dataset, service="viewer")
    assert refused.returncode == 5 and "role" in refused.stderr
    bad_filter = cli(served, "products", "--state", "broken")
    assert bad_filter.returncode == 6 and "state 'broken'" in bad_filter.stderr
    handle, not_a_plan = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as out:
        out.write('{"dataset": {}}')
    bad_file = cli(served, "plan", "submit", not_a_plan)
    assert bad_file.returncode == 6 and not_a_plan in bad_file.stderr
    assert cli(served, "plan", "submit", "/nonexistent/plan.json").returncode == 6
    unreachable = cli(served, "products", url=f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 7 and "cannot reach" in unreachable.stderr
    usage = cli(served, "plan", "show", "not-a-uuid")
    assert usage.returncode == 64 and "not a UUID" in usage.stderr
    assert cli(served, "rerun").returncode == 64
    assert cli(served, "update", dataset, ids["only"], "--state", "queued").returncode == 64
    # Nothing above changed the plan.
    plan = json.loads(cli(served, "plan", "show", dataset, "--json").stdout)
    assert not plan["dataset"]["paused"] and plan["data_products"][0]["state"] == "queued"

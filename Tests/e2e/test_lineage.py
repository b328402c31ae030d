"""OpenLineage end to end (docs/RULES.md rule 30): `fletcher serve` with OPENLINEAGE_URL pointing at a
loopback receiver (webhook_receiver.Receiver) and COMPUTE_TARGETS at a fake platform with retries
runs one plan — a diamond and a chain below it, every product eager — through each way a try can
go: success after `running`, a failure retried, `success` reported without `running`, a clear
while running (ABORT, then a new try), a disable while queued (ABORT), a final failure. The
receiver answers 503 to the first attempt of every FAIL and ABORT, so those arrive twice.

What is checked:
- every body is accepted by openlineage-python's own event model (`openlineage.client.event_v2`
  and the generated facets), built strictly from the JSON — unknown or missing fields, wrong types,
  a bad runId, eventTime or eventType are refused — and serialised back by its `Serde` to the same
  JSON (but for the fields of Fletcher's own `fletcher_…` facets, checked by the tests); a handful
  of broken events prove the check refuses what it should;
- each request is a POST to {url}/api/v1/lineage with `Authorization: Bearer <OPENLINEAGE_API_KEY>`;
- each try (run.runId = the try's trigger id, as the history has it) has exactly one START and one
  terminal event (COMPLETE, FAIL or ABORT), START first by arrival and by eventTime, RUNNING only
  between; the run events are exactly those of the event feed, one for one;
- duplicates (at-least-once delivery) are byte-for-byte the same request;
- job = {OPENLINEAGE_NAMESPACE, "{dataset_id}.{data_product_id}"} with the product's name in a job
  facet, the dataset named by a parent run facet, FAIL carrying the passback in an errorMessage
  facet;
- the lineage graph rebuilt from the events alone (each input -> the job's output) is the plan's DAG.

Two more tests: a report that comes after its try already ended (an operator marking a failed
product `success`) must give the ended run no second end; and the feed's run events (rule 30 puts
them in GET /api/events) must have types the OpenAPI document's `EventType` lists.

Both engines (PostgreSQL skipped without FLETCHER_TEST_POSTGRES_URL). Polls with deadlines; no
fixed sleeps. E2E_LOG_LEVEL sets the process's LOG_LEVEL (default warning)."""
import json
import os
import re
import shutil
import tempfile
import threading
import typing
import urllib.parse
import uuid
from datetime import datetime
from enum import Enum

import attr
import pytest
import yaml
from openlineage.client.event_v2 import RunEvent, RunState
from openlineage.client.generated import base, error_message_run, job_type_job, parent_run
from openlineage.client.serde import Serde

from conftest import API, ROOT
from fake_platform import Platform
from servers import Fletcher, eventually, fresh_postgres_database, history
from webhook_receiver import Answer, Receiver

NAMESPACE = "fletcher-e2e"
API_KEY = "ol-key-" + uuid.uuid4().hex
PUBLIC_URL = "http://fletcher.example:8080"
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}
# The feed's run events and what OpenLineage is told of each (rule 30).
FEED_TO_LINEAGE = {"data_product.queued": "START", "data_product.running": "RUNNING",
                   "data_product.succeeded": "COMPLETE", "data_product.failed": "FAIL",
                   "data_product.aborted": "ABORT"}


# --- openlineage-python's model, built strictly from JSON -----------------------------------------

class NotARunEvent(ValueError):
    """The JSON is not what openlineage-python's model describes."""


# The standard facets Fletcher sends, by where they sit; any other facet must be Fletcher's own
# (named `fletcher_…`, as the spec asks of custom facets).
STANDARD_FACETS = {base.RunFacet: {"parent": parent_run.ParentRunFacet,
                                   "errorMessage": error_message_run.ErrorMessageRunFacet},
                   base.JobFacet: {"jobType": job_type_job.JobTypeJobFacet}}
CUSTOM_PREFIX = "fletcher_"
ALWAYS_REQUIRED = {"producer", "schemaURL", "_producer", "_schemaURL"}   # the spec requires them


def _version_free(url):
    return re.sub(r"/\d+-\d+-\d+/", "/*/", url)


def _uri(value, path):
    parsed = urllib.parse.urlparse(value) if isinstance(value, str) else None
    if not parsed or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise NotARunEvent(f"{path}: not an http(s) URI: {value!r}")


UNION = type(int | None)


def _value(kind, value, path):
    """`value` as the annotated `kind` of a model field."""
    if isinstance(kind, UNION) or typing.get_origin(kind) is typing.Union:
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (kind,) = [k for k in options if k is not type(None)]
    origin = typing.get_origin(kind)
    if kind is str:
        if not isinstance(value, str):
            raise NotARunEvent(f"{path}: expected a string, got {value!r}")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise NotARunEvent(f"{path}: expected an integer, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise NotARunEvent(f"{path}: expected a boolean, got {value!r}")
        return value
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)                      # ValueError for a value the enum lacks
    if origin is list:
        if not isinstance(value, list):
            raise NotARunEvent(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_value(item, v, f"{path}[{n}]") for n, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise NotARunEvent(f"{path}: expected an object, got {value!r}")
        _, item = typing.get_args(kind)
        return {name: _facet(item, name, v, f"{path}.{name}") for name, v in value.items()}
    if attr.has(kind):
        return build(kind, value, path)
    raise NotARunEvent(f"{path}: no rule for {kind!r}")


def _facet(facet_base, name, value, path):
    """A facet: a standard one as its class; a custom one (`fletcher_…`) as its base class, its own
    fields left out (`with_additional_properties` cannot hold them: `fletcher_try`'s `try` is a
    Python keyword), the tests check those; anything else is refused."""
    known = STANDARD_FACETS.get(facet_base, {})
    if name in known:
        return build(known[name], value, path)
    if not name.startswith(CUSTOM_PREFIX):
        raise NotARunEvent(f"{path}: unknown facet {name!r}")
    if not isinstance(value, dict):
        raise NotARunEvent(f"{path}: expected an object, got {value!r}")
    return build(facet_base, {k: v for k, v in value.items() if k in ("_producer", "_schemaURL")}, path,
                 custom_schema=True)


def _custom_facets_bare(body):
    """`body` with its custom facets' own fields left out, as `_facet` builds them."""
    body = json.loads(json.dumps(body))
    for holder in [body.get("run", {}), body.get("job", {})]:
        for name, facet in (holder.get("facets") or {}).items():
            if name.startswith(CUSTOM_PREFIX) and isinstance(facet, dict):
                holder["facets"][name] = {k: v for k, v in facet.items() if k in ("_producer", "_schemaURL")}
    return body


def build(cls, value, path="$", custom_schema=False):
    """An instance of `cls` (an attrs class of openlineage-python's model) from the JSON object
    `value`: every key must be one of the class's fields, every field without a default (and the
    spec's `producer`/`schemaURL`) must be there, each value of its field's type; the model's own
    validators (runId a UUID, eventTime an ISO date-time, eventType one of its enum) run as it is
    built."""
    if not isinstance(value, dict):
        raise NotARunEvent(f"{path}: expected an object, got {value!r}")
    fields = {a.name: a for a in attr.fields(cls)}
    unknown = set(value) - set(fields)
    if unknown:
        raise NotARunEvent(f"{path}: {cls.__name__} has no field {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    arguments, late = {}, {}
    for name, field in fields.items():
        required = field.default is attr.NOTHING or name in ALWAYS_REQUIRED
        if name not in value:
            if required:
                raise NotARunEvent(f"{path}: {cls.__name__} needs {name!r}")
            continue
        if not field.init:                      # schemaURL / _schemaURL: set by the model itself
            _uri(value[name], f"{path}.{name}")
            late[name] = value[name]
            continue
        arguments[field.alias] = _value(hints[name], value[name], f"{path}.{name}")
    instance = cls(**arguments)
    for name, url in late.items():
        # The schema the JSON names must be the model's own (any version of it), but for a custom
        # facet's, which names its producer's schema.
        if not custom_schema and _version_free(url) != _version_free(getattr(instance, name)):
            raise NotARunEvent(f"{path}.{name}: {url!r} is not {getattr(instance, name)!r}")
        setattr(instance, name, url)
    return instance


def _without_empty(value):
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def run_event(body):
    """openlineage-python's RunEvent of a received body; raises unless the body is one, and unless
    the model serialises back (`Serde.to_dict`) to exactly the body."""
    event = build(RunEvent, json.loads(body))
    if not isinstance(event, RunEvent) or not isinstance(event.eventType, RunState):
        raise NotARunEvent("not a RunEvent with an eventType")
    if _without_empty(Serde.to_dict(event)) != _without_empty(_custom_facets_bare(json.loads(body))):
        raise NotARunEvent(f"the model does not give the body back: {Serde.to_dict(event)}")
    return event


# --- the run ---------------------------------------------------------------------------------------

# The plan: a diamond a -> {b, c} -> d, then a chain d -> e -> {f, g}. What each product's tries
# tell OpenLineage, in order; f has no retries, so its failure is final.
PRODUCTS = ["a", "b", "c", "d", "e", "f", "g"]
EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("e", "f"), ("e", "g")]
EXPECTED_TRIES = {
    "a": [["START", "RUNNING", "COMPLETE"]],
    "b": [["START", "RUNNING", "FAIL"], ["START", "RUNNING", "COMPLETE"]],      # failed, retried
    "c": [["START", "COMPLETE"]],                                               # success without running
    "d": [["START", "RUNNING", "ABORT"], ["START", "RUNNING", "COMPLETE"]],      # cleared while running
    "e": [["START", "RUNNING", "COMPLETE"]],
    "f": [["START", "RUNNING", "FAIL"]],                                        # failed finally
    "g": [["START", "ABORT"]],                                                  # disabled while queued
}
PASSBACK_B = {"error": "lost node", "exit_code": 137, "note": "quotes \" and\nnewlines"}
PASSBACK_F = {"error": "table missing", "exit_code": 1}
TARGETS = lambda platform: {"cams": {"url": platform.url, "retries": {"max": 1, "delay_s": 0.2, "max_delay_s": 0.2}}}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(request):
    """A fresh database per engine, as a DATABASE_URL (PostgreSQL's skipped without the test server)."""
    if request.param == "sqlite":
        folder = tempfile.mkdtemp(prefix="fletcher-e2e-")
        yield f"sqlite:{folder}/fletcher.sqlite"
        shutil.rmtree(folder, ignore_errors=True)
    else:
        url = fresh_postgres_database()
        if url is None:
            pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
        yield url


def submit(api, names, edges, extra=None, dataset=None, ids=None):
    """Eager products named `names` (ids kept from `ids` when given); returns (dataset, name -> id)."""
    dataset = dataset or str(uuid.uuid4())
    ids = dict(ids or {})
    for name in names:
        ids.setdefault(name, str(uuid.uuid4()))
    body = {"dataset": {"id": dataset, "extra": {}},
            "data_products": [dict({"id": ids[n], "compute": "cams", "name": n, "version": "1", "eager": True},
                                   **(extra or {}).get(n, {})) for n in names],
            "dependencies": [{"parent_id": ids[p], "child_id": ids[c]} for p, c in edges]}
    api.call("POST", "/api/plan", body)
    return dataset, ids


def report(api, dataset, product, state, passback=None):
    item = {"id": product, "state": state}
    if passback is not None:
        item["passback"] = passback
    return api.call("PUT", f"/api/data_product/{dataset}/update", [item])


def tries_at(platform, product_id):
    """How many tries of a product the platform was sent (one job per trigger)."""
    return len({key for _, _, key, _, body in platform.requests() if body.get("data_product_id") == product_id})


def wait_tries(platform, product_id, count):
    eventually(lambda: tries_at(platform, product_id) == count, timeout=60, what=f"try {count} at the platform")


def lineage_of(receiver, dataset):
    """The received requests about `dataset`, in arrival order."""
    return [r for r in receiver.requests() if f'"{dataset}.'.encode() in r.body]


def distinct(requests):
    """The requests without repeats of the same body (a delivery sent again), first arrivals kept,
    each with its arrival index."""
    seen, kept = set(), []
    for n, r in enumerate(requests):
        if r.body not in seen:
            seen.add(r.body)
            kept.append((n, r))
    return kept


def key_of(request):
    body = request.json
    return body["run"]["runId"], body["eventType"]


def prime(api, receiver):
    """Makes sure the OpenLineage relay has started (an endpoint seen for the first time starts at the
    feed's end): clears a warm-up product (an ABORT and a new START each time) until the receiver has
    heard of it."""
    warmup, ids = submit(api, ["warmup"], [])
    heard = lambda: bool(lineage_of(receiver, warmup))
    for _ in range(30):
        try:
            eventually(heard, timeout=2)
            return warmup
        except AssertionError:
            api.call("PUT", f"/api/data_product/{warmup}/clear", [ids["warmup"]])
    raise AssertionError("the OpenLineage receiver never heard of the warm-up dataset")


def drive(api, platform):
    """Runs the plan through EXPECTED_TRIES, reporting each try only once the platform has it, as a
    platform would. Returns (dataset, name -> id)."""
    dataset, ids = submit(api, PRODUCTS, EDGES, extra={"f": {"retries": 0}})
    wait_tries(platform, ids["a"], 1)
    report(api, dataset, ids["a"], "running")
    report(api, dataset, ids["a"], "success")
    # b fails and is retried; c succeeds without ever being reported running.
    wait_tries(platform, ids["b"], 1)
    report(api, dataset, ids["b"], "running")
    report(api, dataset, ids["b"], "failed", PASSBACK_B)
    wait_tries(platform, ids["c"], 1)
    report(api, dataset, ids["c"], "success")
    wait_tries(platform, ids["b"], 2)
    report(api, dataset, ids["b"], "running")
    report(api, dataset, ids["b"], "success")
    # d is cleared while running: its try is aborted and it is queued again at once.
    wait_tries(platform, ids["d"], 1)
    report(api, dataset, ids["d"], "running")
    plan = api.call("PUT", f"/api/data_product/{dataset}/clear", [ids["d"]])
    assert {p["id"]: p["state"] for p in plan["data_products"]}[ids["d"]] == "queued"
    wait_tries(platform, ids["d"], 2)
    report(api, dataset, ids["d"], "running")
    report(api, dataset, ids["d"], "success")
    wait_tries(platform, ids["e"], 1)
    report(api, dataset, ids["e"], "running")
    plan = report(api, dataset, ids["e"], "success")
    # g is disabled while queued; f fails with no retry left.
    assert {p["id"]: p["state"] for p in plan["data_products"]}[ids["g"]] == "queued"
    api.call("DELETE", f"/api/data_product/{dataset}", [ids["g"]])
    wait_tries(platform, ids["f"], 1)
    report(api, dataset, ids["f"], "running")
    report(api, dataset, ids["f"], "failed", PASSBACK_F)
    return dataset, ids


def tries_in_history(api, dataset, ids):
    """Each product's tries as the history has them: name -> [(try, trigger id)], oldest first."""
    tries = {}
    for name, product in ids.items():
        changes = [e for e in history(api, dataset, product) if e["kind"] == "state_change"]
        tries[name] = [(e["try"], e["trigger_id"]) for e in changes if e["to"] == "queued"]
    return tries


def feed(api, dataset):
    """Every event of one dataset in the feed, oldest first."""
    events, after = [], None
    while True:
        page = api.call("GET", f"/api/events?limit=1000&dataset_id={dataset}"
                        + (f"&after={urllib.parse.quote(after)}" if after else ""))
        if not page["events"]:
            return events
        events += page["events"]
        after = page["next"]


def serve(database, platform, receiver):
    return Fletcher(database, TARGETS(platform), extra_env={
        "PUBLIC_URL": PUBLIC_URL, "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "warning"),
        "OPENLINEAGE_URL": receiver.url, "OPENLINEAGE_NAMESPACE": NAMESPACE, "OPENLINEAGE_API_KEY": API_KEY})


@pytest.fixture(scope="module")
def run(engine):
    """The plan driven through EXPECTED_TRIES on one server; waits until every try's every expected
    event has been delivered (answered 2xx)."""
    lock, refused = threading.Lock(), set()

    def answer(request):
        # The first attempt of each FAIL and ABORT is refused: it is sent again (at least once).
        try:
            key = key_of(request)
        except (ValueError, KeyError, TypeError):
            return Answer()
        with lock:
            if key[1] in ("FAIL", "ABORT") and key not in refused:
                refused.add(key)
                return Answer(status=503)
        return Answer()

    receiver, platform, server = Receiver(answer), Platform(), None
    try:
        server = serve(engine, platform, receiver)
        api = API(server.base)
        prime(api, receiver)
        dataset, ids = drive(api, platform)
        tries = tries_in_history(api, dataset, ids)
        assert {n: len(t) for n, t in tries.items()} == {n: len(t) for n, t in EXPECTED_TRIES.items()}
        expected = {(trigger, kind) for name, runs in tries.items()
                    for (_, trigger), kinds in zip(runs, EXPECTED_TRIES[name]) for kind in kinds}
        delivered = lambda: expected <= {key_of(r) for r in receiver.deliveries() if f'"{dataset}.'.encode() in r.body}
        eventually(delivered, timeout=90, what="every try's events at the OpenLineage receiver")
        yield {"api": api, "server": server, "platform": platform, "receiver": receiver, "dataset": dataset,
               "ids": ids, "tries": tries, "requests": lineage_of(receiver, dataset), "refused": refused}
    finally:
        if server:
            server.stop()
        receiver.close()
        platform.close()


# --- the tests -------------------------------------------------------------------------------------

def test_every_body_is_a_run_event_of_openlineage_pythons_model(run):
    requests = run["receiver"].requests()
    assert len(requests) >= len(run["requests"]) > 0
    for r in requests:
        assert r.path == "/hook/api/v1/lineage"
        assert r.headers["authorization"] == f"Bearer {API_KEY}"
        assert r.headers["content-type"] == "application/json"
        event = run_event(r.body)
        assert event.producer == PUBLIC_URL
        assert event.schemaURL == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        assert datetime.fromisoformat(event.eventTime.replace("Z", "+00:00")).tzinfo is not None


def test_the_model_check_refuses_broken_events(run):
    """The check above is a real one: each of these breaks of a received event is refused."""
    good = next(r.json for r in run["requests"] if r.json["eventType"] == "FAIL")
    run_event(json.dumps(good).encode())

    def broken(change):
        body = json.loads(json.dumps(good))
        change(body)
        return json.dumps(body).encode()

    breaks = {
        "runId not a UUID": lambda b: b["run"].update(runId="try-1"),
        "unknown eventType": lambda b: b.update(eventType="STARTED"),
        "eventTime without a time": lambda b: b.update(eventTime="2026-01-02"),
        "eventTime not a date": lambda b: b.update(eventTime="yesterday"),
        "no job": lambda b: b.pop("job"),
        "no run": lambda b: b.pop("run"),
        "no producer": lambda b: b.pop("producer"),
        "unknown top-level field": lambda b: b.update(jobs=[]),
        "job name not a string": lambda b: b["job"].update(name=7),
        "inputs not a list": lambda b: b.update(inputs={}),
        "an input without a namespace": lambda b: b.update(inputs=[{"name": "x"}]),
        "parent facet without its job": lambda b: b["run"]["facets"]["parent"].pop("job"),
        "parent run id not a UUID": lambda b: b["run"]["facets"]["parent"]["run"].update(runId="x"),
        "error facet without a message": lambda b: b["run"]["facets"]["errorMessage"].pop("message"),
        "facet without _producer": lambda b: b["job"]["facets"]["jobType"].pop("_producer"),
        "facet with another facet's schema": lambda b: b["job"]["facets"]["jobType"].update(
            _schemaURL=b["run"]["facets"]["parent"]["_schemaURL"]),
        "unknown standard facet": lambda b: b["run"]["facets"].update(
            nominalTime={"_producer": PUBLIC_URL, "_schemaURL": PUBLIC_URL, "nominalStartTime": 3}),
        "schemaURL not a URI": lambda b: b.update(schemaURL="RunEvent"),
    }
    for what, change in breaks.items():
        with pytest.raises((NotARunEvent, ValueError, TypeError)):
            run_event(broken(change))
            pytest.fail(f"a broken event passed the check: {what}")


def test_duplicates_are_the_same_request(run):
    by_key = {}
    for r in run["requests"]:
        by_key.setdefault(key_of(r), []).append(r.body)
    # Every refused FAIL and ABORT came again, the same bytes; nothing else came twice.
    twice = {k for k, bodies in by_key.items() if len(bodies) > 1}
    assert twice == {k for k in run["refused"] if k in by_key} and twice
    assert {k[1] for k in twice} == {"FAIL", "ABORT"}
    for key, bodies in by_key.items():
        assert len(set(bodies)) == 1, (key, bodies)


def test_each_try_has_one_start_then_one_end(run):
    requests, tries = run["requests"], run["tries"]
    first = {}
    for n, r in enumerate(requests):
        first.setdefault(key_of(r), (n, r))
    last = {key_of(r): n for n, r in enumerate(requests)}
    runs = {}
    for n, r in distinct(requests):
        runs.setdefault(key_of(r)[0], []).append((n, r.json))
    # The runs are exactly the tries of the history, each with its expected events in order.
    assert set(runs) == {trigger for runs_ in tries.values() for _, trigger in runs_}
    for name, product_tries in tries.items():
        for (number, trigger), kinds in zip(product_tries, EXPECTED_TRIES[name]):
            events = [body for _, body in runs[trigger]]
            assert [e["eventType"] for e in events] == kinds, (name, number)
            assert [e["run"]["facets"]["fletcher_try"]["try"] for e in events] == [number] * len(kinds)
            types = [e["eventType"] for e in events]
            assert types.count("START") == 1 and types[0] == "START"
            assert sum(t in TERMINAL for t in types) == 1 and types[-1] in TERMINAL
            assert set(types[1:-1]) <= {"RUNNING"}
            # START before the end: by arrival (its every attempt before the end's first) and by time.
            assert last[(trigger, "START")] < first[(trigger, types[-1])][0]
            times = [datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")) for e in events]
            assert times == sorted(times) and times[0] < times[-1], (name, number, times)


def test_the_run_events_are_the_feeds_one_for_one(run):
    """Each lineage event is one run event of the feed (same try, type and time), and the other way
    round: none lost, none made up."""
    told = {(r.json["run"]["runId"], r.json["eventType"], r.json["eventTime"]) for r in run["requests"]}
    feed_run_events = {(e["data"]["trigger_id"], FEED_TO_LINEAGE[e["type"]], e["time"])
                       for e in feed(run["api"], run["dataset"]) if e["type"] in FEED_TO_LINEAGE}
    assert told == feed_run_events
    assert len(told) == sum(len(kinds) for runs in EXPECTED_TRIES.values() for kinds in runs)


def test_a_success_without_running_still_starts_first(run):
    (_, trigger), = run["tries"]["c"]
    kinds = [key_of(r)[1] for _, r in distinct(run["requests"]) if key_of(r)[0] == trigger]
    assert kinds == ["START", "COMPLETE"]


def test_jobs_name_the_products_and_a_parent_run_facet_names_the_dataset(run):
    dataset, ids = run["dataset"], run["ids"]
    names = {f"{dataset}.{product}": name for name, product in ids.items()}
    for r in run["requests"]:
        body = r.json
        job = body["job"]
        assert job["namespace"] == NAMESPACE and job["name"] in names
        name = names[job["name"]]
        product = job["name"].split(".", 1)[1]
        facet = job["facets"]["fletcher_dataProduct"]
        assert (facet["name"], facet["dataset_id"], facet["data_product_id"]) == (name, dataset, product)
        assert job["facets"]["jobType"]["processingType"] == "BATCH"
        assert body["outputs"] == [{"namespace": NAMESPACE, "name": job["name"]}]
        assert all(i["namespace"] == NAMESPACE for i in body["inputs"])
        parent = body["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == dataset
        assert parent["job"] == {"namespace": NAMESPACE, "name": dataset}
        # The run is one of this product's tries.
        assert body["run"]["runId"] in {trigger for _, trigger in run["tries"][name]}


def test_fail_carries_the_passback_in_an_error_facet(run):
    passbacks = {"b": PASSBACK_B, "f": PASSBACK_F}
    fails = [r.json for r in run["requests"] if r.json["eventType"] == "FAIL"]
    assert len({f["run"]["runId"] for f in fails}) == 2
    for body in fails:
        name = body["job"]["facets"]["fletcher_dataProduct"]["name"]
        error = body["run"]["facets"]["errorMessage"]
        assert json.loads(error["message"]) == passbacks[name]
        assert error["programmingLanguage"]
    for r in run["requests"]:
        if r.json["eventType"] != "FAIL":
            assert "errorMessage" not in r.json["run"]["facets"]


def test_the_lineage_graph_rebuilt_from_the_events_is_the_plans_dag(run):
    dataset = run["dataset"]
    nodes, edges, inputs_of = set(), set(), {}
    for r in run["requests"]:
        body = r.json
        (output,) = [o["name"] for o in body["outputs"]]
        nodes.add(output)
        inputs = {i["name"] for i in body["inputs"]}
        nodes |= inputs
        edges |= {(i, output) for i in inputs}
        inputs_of.setdefault(output, set()).add(frozenset(inputs))
    plan = run["api"].plan(dataset)
    name = lambda product: f"{dataset}.{product}"
    assert nodes == {name(p["id"]) for p in plan["data_products"]}
    assert edges == {(name(d["parent_id"]), name(d["child_id"])) for d in plan["dependencies"]}
    assert len(edges) == len(EDGES)
    # And every event of a job names the same inputs: all its parents, no more.
    for output, seen in inputs_of.items():
        assert seen == {frozenset(p for p, c in edges if c == output)}, output


def test_a_report_after_its_try_ended_gives_the_ended_run_no_second_end(run):
    """A try that failed for good is over (FAIL). An operator then fixes the data by hand and reports
    the product `running` and `success` (rule 5 allows it). OpenLineage requires one START and one
    of COMPLETE/FAIL/ABORT per run: the ended run must get no RUNNING and no COMPLETE after its FAIL.
    A child resubmitted afterwards is queued (its START) and marks that every earlier event of the
    dataset has been delivered (per-dataset order)."""
    api, platform, receiver = run["api"], run["platform"], run["receiver"]
    dataset, ids = submit(api, ["fixed"], [], extra={"fixed": {"retries": 0}})
    wait_tries(platform, ids["fixed"], 1)
    report(api, dataset, ids["fixed"], "running")
    report(api, dataset, ids["fixed"], "failed", {"error": "bad input"})
    report(api, dataset, ids["fixed"], "running")
    report(api, dataset, ids["fixed"], "success")
    dataset, ids = submit(api, ["fixed", "marker"], [("fixed", "marker")], dataset=dataset, ids=ids)
    marker = f'"{dataset}.{ids["marker"]}"'.encode()
    eventually(lambda: any(marker in r.body and r.json["eventType"] == "START" for r in receiver.deliveries()),
               timeout=60, what="the marker's START")
    (_, trigger), = tries_in_history(api, dataset, {"fixed": ids["fixed"]})["fixed"]
    kinds = [key_of(r)[1] for _, r in distinct(lineage_of(receiver, dataset)) if key_of(r)[0] == trigger]
    assert kinds[:3] == ["START", "RUNNING", "FAIL"]
    assert kinds == ["START", "RUNNING", "FAIL"], \
        f"run {trigger} got {kinds}: events after its FAIL (a second end)"


def test_the_feeds_run_events_have_types_the_api_document_lists(run):
    """GET /api/events answers as openapi.yaml's `EventPage` says: every event's `type` is one of the
    `EventType` enum. With OPENLINEAGE_URL set the feed also holds the run events (rule 30:
    `data_product.queued`, `.running`, `.aborted`, "in the feed like any other"), so the enum must
    list them, or a client generated from the document cannot read the feed."""
    with open(os.path.join(ROOT, "Sources", "FletcherAPI", "openapi.yaml")) as document:
        documented = set(yaml.safe_load(document)["components"]["schemas"]["EventType"]["enum"])
    types = {e["type"] for e in feed(run["api"], run["dataset"])}
    assert {"data_product.queued", "data_product.running", "data_product.aborted"} <= types
    assert types <= documented, f"types in the feed that openapi.yaml's EventType lacks: {sorted(types - documented)}"

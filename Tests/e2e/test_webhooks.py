"""Webhooks end to end (docs/RULES.md rules 28-29): `fletcher serve` with WEBHOOKS pointing at
loopback receivers (webhook_receiver.Receiver), checked with the formats' own libraries —
Standard Webhooks signatures by `standardwebhooks`, CloudEvents by `cloudevents` — and against the
event feed (GET /api/events). Polls with deadlines; no fixed sleeps. E2E_LOG_LEVEL sets the
processes' LOG_LEVEL (default warning), to see what a failing run's server did."""
import base64
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cloudevents.http import from_http
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conftest import API
from fake_platform import Platform
from servers import Fletcher, eventually, fresh_postgres_database
from webhook_receiver import Answer, Receiver

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PUBLIC_URL = "http://fletcher.example:8080"
# One retry a moment after a reported failure: a failed, then a retrying event.
TARGETS = lambda platform: {"cams": {"url": platform.url, "retries": {"max": 1, "delay_s": 0.2, "max_delay_s": 0.2}}}
PLAN_TYPES = ["data_product.failed", "data_product.retrying", "data_product.succeeded", "data_product.succeeded",
              "dataset.succeeded"]
LATE_TYPES = ["data_product.late", "dataset.paused", "dataset.unpaused"]
BURST_TYPES = ["dataset.paused", "dataset.unpaused"] * 3


def endpoint(receiver, format="standard", events=("*",)):
    entry = {"url": receiver.url, "events": list(events), "format": format}
    if format == "standard":
        entry["secret"] = SECRET
    return entry


def serve(database, platform, receivers_and_formats):
    return Fletcher(database, TARGETS(platform), extra_env={
        "PUBLIC_URL": PUBLIC_URL, "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "warning"),
        "WEBHOOKS": json.dumps([endpoint(r, f) for r, f in receivers_and_formats])})


def fresh_sqlite():
    folder = tempfile.mkdtemp(prefix="fletcher-e2e-")
    return f"sqlite:{folder}/fletcher.sqlite", folder


def feed(api, datasets=None):
    """Every event of the feed, oldest first (all its pages); only `datasets`' when given."""
    events, after = [], None
    while True:
        page = api.call("GET", "/api/events?limit=1000" + (f"&after={urllib.parse.quote(after)}" if after else ""))
        if not page["events"]:
            return [e for e in events if datasets is None or e["dataset_id"] in datasets]
        events += page["events"]
        after = page["next"]


def feed_of(api, counts):
    """The events of the datasets in `counts` (dataset id -> how many it has), once the feed shows
    them all: on PostgreSQL the feed shows an event only once every older transaction has ended."""
    events = []

    def complete():
        events[:] = feed(api, set(counts))
        return len(events) >= sum(counts.values())
    eventually(complete, what="every event in the feed")
    assert len(events) == sum(counts.values())
    return events


def submit(api, products, edges=(), deadline=None):
    """products: (name, eager, deadline or None). Returns (dataset id, product ids)."""
    dataset, ids = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in products]
    body = {"dataset": {"id": dataset, "extra": {}},
            "data_products": [dict({"id": i, "compute": "cams", "name": name, "version": "1", "eager": eager},
                                   **({"deadline": due} if due else {}))
                              for i, (name, eager, due) in zip(ids, products)],
            "dependencies": [{"parent_id": ids[a], "child_id": ids[b]} for a, b in edges]}
    api.call("POST", "/api/plan", body)
    return dataset, ids


def product(api, dataset, product_id):
    return next(p for p in api.plan(dataset)["data_products"] if p["id"] == product_id)


def report(api, dataset, product_id, *states):
    for state in states:
        api.update(dataset, product_id, state)


def dataset_of(request):
    """The dataset a delivery is about, whatever its format (None for a platform's event)."""
    body = request.json
    if "data" in body:              # standard and cloudevents: the event object is `data`
        return body["data"]["dataset_id"]
    return None


def prime(api, receivers):
    """Makes sure every endpoint's relay has started (an endpoint seen for the first time starts at
    the feed's end): pauses and unpauses a warm-up dataset until each receiver has heard of it.
    Returns the warm-up dataset's id and how many events it has."""
    warmup, _ = submit(api, [("warmup", False, None)])
    heard = lambda: all(any(warmup.encode() in r.body for r in receiver.requests()) for receiver in receivers)
    paused, count = False, 0
    deadline = time.time() + 60
    while not heard():
        assert time.time() < deadline, "not every endpoint heard of the warm-up dataset"
        api.call("PUT", f"/api/plan/{warmup}/{'unpause' if paused else 'pause'}")
        paused, count = not paused, count + 1
        try:
            eventually(heard, timeout=2)
        except AssertionError:
            pass
    return warmup, count


def tries_at(platform, product_id):
    """How many tries of a product the platform was sent (one job per trigger)."""
    return len({key for _, _, key, _, body in platform.requests() if body.get("data_product_id") == product_id})


def run_plan(api, platform):
    """A chain of two products driven to success, the first failing once (retried): the plan's events
    are PLAN_TYPES. Each try is reported on only once the platform has it, as a platform would.
    Returns the dataset id."""
    dataset, (first, second) = submit(api, [("extract", True, None), ("load", True, None)], [(0, 1)])
    eventually(lambda: tries_at(platform, first) == 1, timeout=60, what="the first product's trigger")
    report(api, dataset, first, "running", "failed")
    eventually(lambda: tries_at(platform, first) == 2, timeout=60, what="the retry's trigger")
    report(api, dataset, first, "running", "success")
    eventually(lambda: tries_at(platform, second) == 1, timeout=60, what="the second product's trigger")
    report(api, dataset, second, "running", "success")
    return dataset


def run_late(api):
    """A product with a deadline a second away that never runs, then a pause and an unpause: LATE_TYPES."""
    due = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    dataset, _ = submit(api, [("report", False, due)])
    eventually(lambda: any(e["type"] == "data_product.late" for e in feed(api, {dataset})), timeout=60,
               what="the missed deadline's event")
    api.call("PUT", f"/api/plan/{dataset}/pause")
    api.call("PUT", f"/api/plan/{dataset}/unpause")
    return dataset


def toggle(api, dataset, times=3):
    for _ in range(times):
        api.call("PUT", f"/api/plan/{dataset}/pause")
        api.call("PUT", f"/api/plan/{dataset}/unpause")


def delivered_all(receiver, events):
    ids = {e["id"] for e in events}
    return lambda: ids <= {r.id for r in receiver.deliveries()}


def first_by_id(requests):
    """The first request of each webhook-id, in the order given."""
    seen, first = set(), []
    for r in requests:
        if r.id not in seen:
            seen.add(r.id)
            first.append(r)
    return first


def assert_in_sequence_order(requests, events):
    """Per dataset, the requests' events (by webhook-id) come in the feed's sequence order."""
    by_id = {e["id"]: e for e in events}
    last = {}
    for r in requests:
        event = by_id.get(r.id)
        if event is None or event["dataset_id"] is None:
            continue
        assert event["sequence"] > last.get(event["dataset_id"], 0), \
            f"{event['type']} (sequence {event['sequence']}) of {event['dataset_id']} after sequence {last[event['dataset_id']]}"
        last[event["dataset_id"]] = event["sequence"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(request):
    """A fresh database per engine, as a DATABASE_URL (PostgreSQL's skipped without the test server)."""
    if request.param == "sqlite":
        url, folder = fresh_sqlite()
        yield url
        shutil.rmtree(folder, ignore_errors=True)
    else:
        url = fresh_postgres_database()
        if url is None:
            pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
        yield url


@pytest.fixture(scope="module")
def run(engine):
    """One small run with a standard, a cloudevents and a slack endpoint: a plan driven to success with
    one failure, a missed deadline, a dataset paused and unpaused, and a burst of pauses whose first
    delivery to the standard endpoint is held until the burst is written (so that a later event
    delivered before its dataset's head shows). Waits until every endpoint has every event."""
    burst = {"dataset": None, "hold": threading.Event(), "held": threading.Event()}

    def standard_answer(request):
        if burst["dataset"] and dataset_of(request) == burst["dataset"] and not burst["held"].is_set():
            burst["held"].set()
            return Answer(hold=burst["hold"])
        return Answer()

    standard, cloud, slack = Receiver(standard_answer), Receiver(), Receiver()
    platform = Platform()
    server = None
    try:
        server = serve(engine, platform, [(standard, "standard"), (cloud, "cloudevents"), (slack, "slack")])
        api = API(server.base)
        prime(api, [standard, cloud, slack])
        plan = run_plan(api, platform)
        late = run_late(api)
        burst["dataset"], _ = submit(api, [("burst", False, None)])
        toggle(api, burst["dataset"])
        eventually(burst["held"].is_set, what="the burst's first delivery")
        burst["hold"].set()
        datasets = {plan: PLAN_TYPES, late: LATE_TYPES, burst["dataset"]: BURST_TYPES}
        events = feed_of(api, {d: len(types) for d, types in datasets.items()})
        assert sorted(e["type"] for e in events) == sorted(t for types in datasets.values() for t in types)
        for receiver in (standard, cloud, slack):
            eventually(delivered_all(receiver, events), timeout=120, what="every event at every endpoint")
        yield {"api": api, "datasets": datasets, "events": events, "standard": standard, "cloud": cloud,
               "slack": slack}
    finally:
        if server:
            server.stop()
        for receiver in (standard, cloud, slack):
            receiver.close()
        platform.close()


def test_standard_webhooks_verify_and_a_tampered_body_is_refused(run):
    requests = [r for r in run["standard"].deliveries() if r.id in {e["id"] for e in run["events"]}]
    assert requests
    webhook = Webhook(SECRET)
    for r in requests:
        assert r.headers["content-type"] == "application/json"
        body = webhook.verify(r.body, r.headers)
        assert body == r.json
        assert body["type"] == body["data"]["type"] and body["data"]["id"] == r.id
        tampered = r.body.replace(b'"type":"', b'"type":"x', 1)
        assert tampered != r.body
        with pytest.raises(WebhookVerificationError):
            webhook.verify(tampered, r.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(os.urandom(32)).decode()).verify(r.body, r.headers)


def test_every_event_arrives_in_sequence_order_as_the_feed_has_it(run):
    events = run["events"]
    ids = {e["id"] for e in events}
    deliveries = [r for r in run["standard"].deliveries() if r.id in ids]
    first = first_by_id(deliveries)
    # The same events as the feed: ids, types, the whole event object.
    assert {r.id for r in first} == ids
    by_id = {e["id"]: e for e in events}
    for r in first:
        assert r.json["data"] == by_id[r.id], r.json
        assert r.json["type"] == by_id[r.id]["type"]
    # Each dataset's in sequence order, with exactly the expected types.
    assert_in_sequence_order(first, events)
    assert_in_sequence_order(first_by_id(run["standard"].requests()), events)
    for dataset, types in run["datasets"].items():
        got = [r.json["data"] for r in first if r.json["data"]["dataset_id"] == dataset]
        assert [e["type"] for e in got] == types
        assert [e["sequence"] for e in got] == list(range(1, len(types) + 1))


def test_cloudevents_are_parsed_by_the_cloudevents_package(run):
    by_id = {e["id"]: e for e in run["events"]}
    deliveries = first_by_id([r for r in run["cloud"].deliveries() if r.id in by_id])
    assert {r.id for r in deliveries} == set(by_id)
    for r in deliveries:
        event = by_id[r.id]
        assert r.headers["content-type"] == "application/cloudevents+json"
        parsed = from_http(r.headers, r.body)
        assert parsed["specversion"] == "1.0"
        assert parsed["id"] == event["id"]
        assert parsed["type"] == "dev.fletcher." + event["type"]
        assert parsed["source"] == f"{PUBLIC_URL}/plan/{event['dataset_id']}"
        assert parsed.get_data() == event
    assert_in_sequence_order(deliveries, run["events"])


def test_slack_messages_link_the_plan_page_on_public_url(run):
    by_id = {e["id"]: e for e in run["events"]}
    deliveries = first_by_id([r for r in run["slack"].deliveries() if r.id in by_id])
    assert {r.id for r in deliveries} == set(by_id)
    for r in deliveries:
        event = by_id[r.id]
        body = r.json
        assert list(body) == ["text"] and isinstance(body["text"], str)
        assert f"<{PUBLIC_URL}/plan/{event['dataset_id']}|" in body["text"], body
        if event["data_product_id"]:
            assert f"<{PUBLIC_URL}/plan/{event['dataset_id']}/product/{event['data_product_id']}|" in body["text"]
    texts = [r.json["text"] for r in deliveries]
    assert any("*failed*" in t for t in texts) and any("*is late*" in t for t in texts)
    assert_in_sequence_order(deliveries, run["events"])


@pytest.fixture(params=["sqlite", "postgres"])
def database(request):
    if request.param == "sqlite":
        url, folder = fresh_sqlite()
        yield url
        shutil.rmtree(folder, ignore_errors=True)
    else:
        url = fresh_postgres_database()
        if url is None:
            pytest.skip("needs FLETCHER_TEST_POSTGRES_URL (run through scripts/test.sh)")
        yield url


def test_nothing_is_lost_across_a_sigkill(database):
    """The endpoint answers 503 while the run happens (deliveries pile up), then holds one delivery
    open while the process is SIGKILLed; a new process on the same database, with the endpoint now
    answering 200, delivers every event of the feed, each dataset's in sequence order."""
    mode = {"status": 503, "hold": None, "held": threading.Event()}
    killed = threading.Event()

    def answer(request):
        if mode["hold"] is not None and not killed.is_set():
            mode["held"].set()
            return Answer(status=503, hold=mode["hold"])   # never seen by the killed process
        return Answer(status=mode["status"])

    receiver, platform = Receiver(answer), Platform()
    first = second = None
    try:
        first = serve(database, platform, [(receiver, "standard")])
        api = API(first.base)
        warmup, warmup_events = prime(api, [receiver])
        # The endpoint's relay may have started after the warm-up's first pause: it is told of the
        # warm-up's events from the first one it heard of (its dataset's first request) on.
        told_from = min(r.json["data"]["sequence"] for r in receiver.requests() if dataset_of(r) == warmup)
        counts = {run_plan(api, platform): len(PLAN_TYPES), run_late(api): len(LATE_TYPES), warmup: warmup_events}
        for _ in range(2):
            dataset, _ = submit(api, [("burst", False, None)])
            toggle(api, dataset, 2)
            counts[dataset] = 4
        datasets = set(counts)
        told = lambda feed: [e for e in feed if e["dataset_id"] != warmup or e["sequence"] >= told_from]
        events = told(feed_of(api, counts))
        assert not receiver.deliveries()

        # A delivery in flight when the process dies.
        mode["hold"] = threading.Event()
        eventually(mode["held"].is_set, timeout=120, what="a delivery in flight")
        first.signal(signal.SIGKILL)
        first.process.wait()
        killed.set()
        mode["status"] = 200
        mode["hold"].set()

        second = serve(database, platform, [(receiver, "standard")])
        api = API(second.base)
        assert told(feed(api, datasets)) == events
        eventually(delivered_all(receiver, events), timeout=300, what="every event after the restart")
        webhook = Webhook(SECRET)
        for r in receiver.deliveries():
            webhook.verify(r.body, r.headers)
        assert_in_sequence_order(first_by_id(receiver.deliveries()), events)
        assert_in_sequence_order(first_by_id(receiver.requests()), events)
        print(json.dumps({"engine": database.split(":")[0], "events": len(events),
                          "requests": len(receiver.requests()), "delivered": len(receiver.deliveries())}))
    finally:
        for server in (first, second):
            if server:
                server.stop()
        receiver.close()
        platform.close()


def test_a_hanging_endpoint_delays_nothing_else(database):
    """One endpoint never answers; the other gets every event, the platform every trigger, and the
    API answers throughout."""
    hang = threading.Event()
    hanging, healthy, platform = Receiver(lambda request: Answer(hold=hang)), Receiver(), Platform()
    server = None
    try:
        server = serve(database, platform, [(hanging, "standard"), (healthy, "standard")])
        api = API(server.base)
        prime(api, [hanging, healthy])
        counts = {run_plan(api, platform): len(PLAN_TYPES) for _ in range(3)}
        counts[run_late(api)] = len(LATE_TYPES)
        datasets = set(counts)
        events = feed_of(api, counts)
        eventually(delivered_all(healthy, events), timeout=120, what="every event at the healthy endpoint")
        assert_in_sequence_order(first_by_id(healthy.deliveries()), events)
        # Every try reached the platform (run_plan waits for each): two products per plan, the first
        # tried twice.
        assert platform.jobs() == 3 * 3
        assert hanging.requests() and not hanging.deliveries()
        assert all(r.status is None for r in hanging.requests())
        for dataset in datasets:
            assert api.plan(dataset)["data_products"]
    finally:
        if server:
            server.stop()
        hanging.close()
        healthy.close()
        platform.close()

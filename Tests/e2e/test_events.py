"""Events against the history (docs/RULES.md rules 27 and 28): a plan run on `fletcher simulate-compute`
with failures, hangs, retries, timeouts, cancels and deadlines gives exactly one event per
occurrence (scripts/events-check.py); one where every product finishes in time gives no `late`
event; a refused request gives none."""
import datetime
import importlib.util
import os
import urllib.error
import uuid

import pytest

from conftest import API, ROOT
from servers import Fletcher

_spec = importlib.util.spec_from_file_location("events_check", os.path.join(ROOT, "scripts", "events-check.py"))
events_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(events_check)


def test_every_occurrence_gives_exactly_one_event(database):
    figures, compared = events_check.run("sqlite", database, products=300, window_s=20)
    assert figures["problems"] == [], figures
    assert figures["missing"] == figures["extra"] == 0 and figures["matched"] == sum(figures["events"].values())
    for kind in ("failed", "retrying", "timed_out", "cancelled", "succeeded", "late"):
        assert figures["events"].get(f"data_product.{kind}", 0) > 0, (kind, figures)
    # The comparison itself catches a lost event and a doubled one.
    events, expected, products = compared
    for broken in (events[1:], events[:-1], events + events[-1:], events[:3] + events[4:]):
        assert events_check.compare(broken, expected, products)[1], "the comparison missed a broken feed"


def test_no_late_event_when_every_product_finishes_in_time(database):
    figures, _ = events_check.run("sqlite", database, products=100, retries=12, all_in_time=True)
    assert figures["problems"] == [], figures
    assert figures["states"] == {"success": 100}
    assert "data_product.late" not in figures["events"] and "dataset.late" not in figures["events"], figures
    assert figures["events"]["data_product.succeeded"] >= 100 and figures["events"]["dataset.succeeded"] == 1


def _refused(api, method, path, body):
    with pytest.raises(urllib.error.HTTPError) as refusal:
        api.call(method, path, body)
    return refusal.value.code


def test_a_refused_request_gives_no_event(database):
    server = Fletcher(database)
    try:
        api = API(server.base)
        dataset = str(uuid.uuid4())
        a, b = str(uuid.uuid4()), str(uuid.uuid4())

        def product(pid, **extra):
            return {"id": pid, "compute": "cams", "name": pid[:8], "version": "1", "eager": True, **extra}

        api.call("POST", "/api/plan", {"dataset": {"id": dataset, "extra": {}},
                                       "data_products": [product(a), product(b)], "dependencies": []})
        events = events_check.events_of(api, dataset)
        plan = api.plan(dataset)
        past = events_check.rfc3339(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
        # A deadline already past on a queued product would be missed by this submission; it is refused.
        assert _refused(api, "POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {}, "deadline": past},
            "data_products": [product(a, deadline=past), product(a, deadline=past)], "dependencies": []}) == 400
        # A success and a stale report in one update: the whole update is refused (409), the success too.
        update = f"/api/data_product/{dataset}/update"
        assert _refused(api, "PUT", update, [{"id": a, "state": "success"},
                                            {"id": b, "state": "failed", "trigger_id": str(uuid.uuid4())}]) == 409
        # A failure beside a bad state: 400, nothing written.
        assert _refused(api, "PUT", update, [{"id": b, "state": "failed"}, {"id": a, "state": "finished"}]) == 400
        assert events_check.events_of(api, dataset) == events
        assert api.plan(dataset)["data_products"] == plan["data_products"]
        # The same success on its own is told: the feed is live, and the refusals above told nothing.
        api.call("PUT", update, [{"id": a, "state": "success"}])
        told = events_check.events_of(api, dataset)[len(events):]
        assert [(e["type"], e["data_product_id"]) for e in told] == [("data_product.succeeded", a)]
    finally:
        server.stop()

"""The monitoring Fletcher ships (deploy/prometheus/alerts.yml, deploy/grafana/fletcher.json) against
the metrics Fletcher really exports: promtool checks the rules and runs their unit tests
(alerts_test.yml); then a real Prometheus scrapes a running Fletcher, with those rules loaded,
while load makes every metric family move — submissions, state reports, reads, a compute platform
that succeeds, fails, hangs, refuses and then goes down (retries, timeouts, cancels, a give-up, an
open circuit), a compute type with no url (undeliverable triggers), a missed deadline, a webhook
endpoint that fails, requests refused at MAX_CONCURRENT_REQUESTS (5xx). Every expression of the
dashboard, and every value an alert compares with its threshold, must then answer data: a metric
renamed in Fletcher, or misspelt here, fails the test. Polls with deadlines; no fixed sleeps."""
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import yaml

from conftest import API, ROOT
from observability import (PROMETHEUS, PROMTOOL, Prometheus, PromQLError, ScriptedPlatform,
                           alert_values, selectors, tokens)
from servers import HeldRequest, Fletcher, fresh_postgres_database, send
from webhook_receiver import Answer, Receiver

ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
ALERTS_TEST = os.path.join(ROOT, "deploy", "prometheus", "alerts_test.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "fletcher.json")
CONCURRENT_REQUESTS = 16
# What Grafana puts in place of its variables when the test evaluates the dashboard's queries: a
# window as long as the test, and every job, instance and compute type.
GRAFANA_VARIABLES = {"__rate_interval": "10m", "__range": "1h", "job": ".*", "instance": ".*", "compute": ".*"}

needs_prometheus = pytest.mark.skipif(
    not (os.path.exists(PROMTOOL) and os.path.exists(PROMETHEUS)),
    reason="needs Debian's prometheus package (promtool, prometheus): scripts/ensure-deps.sh test installs it")


def alert_rules():
    with open(ALERTS) as rules:
        return [rule for group in yaml.safe_load(rules)["groups"] for rule in group["rules"]]


def dashboard():
    with open(DASHBOARD) as model:
        return json.load(model)


def dashboard_queries():
    """(panel title, expr with Grafana's variables in place) of every query of every panel."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], grafana_interpolate(target["expr"])))
    return found


def grafana_interpolate(expr):
    def replace(match):
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"the dashboard uses ${name}, which the test does not know: {expr}"
        return GRAFANA_VARIABLES[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


@needs_prometheus
def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    checked = subprocess.run([PROMTOOL, "check", "rules", ALERTS], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([PROMTOOL, "test", "rules", os.path.basename(ALERTS_TEST)], capture_output=True, text=True,
                            cwd=os.path.dirname(ALERTS_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert is tested firing at least once.
    with open(ALERTS_TEST) as tests:
        fired = {case["alertname"] for test in yaml.safe_load(tests)["tests"]
                 for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert {rule["alert"] for rule in alert_rules()} == fired


def test_every_alert_has_a_severity_summary_runbook_and_a_value_beside_its_threshold():
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        runbook = rule["annotations"]["runbook"]
        assert runbook.strip() and "\n" not in runbook.strip(), rule["alert"]
        assert alert_values(rule["expr"]), rule["alert"]


def test_the_dashboard_is_a_grafana_model_on_a_prometheus_datasource_variable():
    model = dashboard()
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    units = {"reqps", "ops", "s", "short", "none", "percentunit"}
    for panel in model["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat", "state-timeline"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in units or panel["type"] == "state-timeline", (panel["title"], unit)
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            tokens(grafana_interpolate(target["expr"]))
    # The panels the runbooks point at.
    names = " ".join(expr for _, expr in dashboard_queries())
    for metric in ("fletcher_http_request_duration_seconds_bucket", "fletcher_dispatch_pending",
                   "fletcher_dispatch_circuit_open", "fletcher_retries_total", "fletcher_timeouts_total",
                   "fletcher_late_total", "fletcher_db_pool_connections_in_use", "fletcher_db_up"):
        assert metric in names, metric


@pytest.fixture
def database_url():
    """The test PostgreSQL when there is one (the engine of production), else a SQLite file."""
    url = fresh_postgres_database()
    if url:
        yield url
        return
    folder = tempfile.mkdtemp(prefix="fletcher-observability-")
    yield f"sqlite:{folder}/fletcher.sqlite"
    shutil.rmtree(folder, ignore_errors=True)


class Traffic:
    """Reads and small writes against the server until stopped, so that request rates are never
    empty: plan, product, search, list, history, events and page reads, submissions and reports."""

    def __init__(self, base, api):
        self.api = api
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.stopped = threading.Event()
        self.rounds = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped.is_set():
            try:
                dataset, ids = self.api.submit([("ok-a", False), ("ok-b", False)], [(0, 1)], extra={"load": "traffic"})
                self.api.update(dataset, ids[0], "running")
                self.api.update(dataset, ids[0], "success")
                for path in (f"/api/plan/{dataset}", f"/api/data_product/{dataset}/{ids[1]}",
                             "/api/plan/search?search_by=traffic&page=0", "/api/data_products?limit=10",
                             f"/api/data_product/{dataset}/{ids[0]}/history", "/api/events?limit=10",
                             f"/plan/{dataset}", "/attention", "/health"):
                    send(self.port, "GET", path, token=self.api.token)
                self.rounds += 1
            except Exception:
                pass    # e.g. refused at the limit of requests, on purpose: the next round goes on
            self.stopped.wait(0.2)

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=60)


def eventually_true(prometheus, expr, timeout=240):
    """Polls Prometheus until `expr` answers a value > 0; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = prometheus.value(expr)
        if value is not None and value > 0:
            return value
        time.sleep(0.5)
    raise AssertionError(f"the load never made {expr} > 0 (last: {prometheus.query(expr)})")


def answering(prometheus, expressions, timeout=90):
    """Polls every (what, expr) until each answers data; returns those that never did, with why."""
    waiting = dict(expressions)
    why = {}
    deadline = time.time() + timeout
    while waiting:
        for what, expr in list(waiting.items()):
            try:
                if prometheus.query(expr):
                    del waiting[what]
                else:
                    why[what] = f"{expr}  [empty]"
            except PromQLError as error:
                why[what] = f"{expr}  [{error}]"
        if not waiting or time.time() > deadline:
            break
        time.sleep(1)
    return {what: why[what] for what in waiting}


def refuse_at_the_limit(server, token):
    """Holds MAX_CONCURRENT_REQUESTS requests open until a request is refused with a 503, then
    lets them finish."""
    held = [HeldRequest(server.port, token, name="ok-held") for _ in range(CONCURRENT_REQUESTS)]
    try:
        deadline = time.time() + 120
        while send(server.port, "GET", "/health")[0] != 503:
            assert time.time() < deadline, "no request was refused at MAX_CONCURRENT_REQUESTS"
            # A held request refused in its turn (the limit was full of others) holds nothing: replace it.
            held.append(HeldRequest(server.port, token, name="ok-held"))
    finally:
        for request in held:
            request.finish()


@needs_prometheus
def test_every_dashboard_query_and_alert_value_answers_data_from_a_running_fletcher(database_url):
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat()
    platform = ScriptedPlatform()
    receiver_answers = iter([503, 400])     # the first event retried, then given up on; then 200s
    receiver = Receiver(lambda request: Answer(status=next(receiver_answers, 200)))
    # cams sends to the platform, with a retry and a running limit; dbxaas has no url.
    targets = {"cams": {"url": platform.url, "cancel_url": platform.cancel_url, "max_in_flight": 8,
                        "retries": {"max": 1, "delay_s": 0.5, "max_delay_s": 1}, "max_running_s": 2}}
    webhooks = [{"url": receiver.url, "format": "cloudevents", "events": ["*"]}]
    server = prometheus = traffic = None
    try:
        server = Fletcher(database_url, targets, extra_env={
            "WEBHOOKS": json.dumps(webhooks), "MAX_CONCURRENT_REQUESTS": str(CONCURRENT_REQUESTS)})
        api = API(server.base)
        platform.token = api.token
        prometheus = Prometheus(f"127.0.0.1:{server.port}", ALERTS)
        eventually_true(prometheus, 'up{job="fletcher"}')
        traffic = Traffic(server.base, api)

        # Jobs that succeed, fail, hang and are refused; one for a platform with no url; one late.
        dataset = str(uuid.uuid4())
        ids = {name: str(uuid.uuid4()) for name in ("ok-1", "ok-2", "fail-1", "hang-1", "refuse-1", "extract",
                                                    "late-1")}

        def product(name, compute="cams", eager=True, **extra):
            return {"id": ids[name], "compute": compute, "name": name, "version": "1", "eager": eager, **extra}

        api.call("POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {"load": "observability"}, "deadline": past},
            "data_products": [product("ok-1"), product("ok-2"), product("fail-1"), product("hang-1"),
                              product("refuse-1"), product("extract", compute="dbxaas"),
                              product("late-1", eager=False, deadline=past)],
            "dependencies": [{"parent_id": ids["ok-1"], "child_id": ids["ok-2"]}]})
        for evidence in ('fletcher_dispatch_attempts_total{outcome="delivered"}',
                         'fletcher_dispatch_attempts_total{outcome="refused"}',
                         "fletcher_retries_total", 'fletcher_timeouts_total{phase="running"}',
                         'fletcher_cancels_total{outcome="cancelled"}', "fletcher_late_total",
                         'fletcher_dispatch_undeliverable{compute="dbxaas"}',
                         'fletcher_dispatch_oldest_pending_age_seconds{compute="dbxaas"}',
                         'fletcher_webhook_attempts_total{outcome="delivered"}',
                         'fletcher_webhook_attempts_total{outcome="retry"}', "fletcher_webhook_undeliverable",
                         'fletcher_dispatch_trigger_latency_seconds_count{compute="cams"}',
                         'fletcher_webhook_latency_seconds_count'):
            eventually_true(prometheus, f"sum({evidence})")

        # Requests refused at the limit: 5xx.
        refuse_at_the_limit(server, api.token)
        eventually_true(prometheus, 'sum(fletcher_http_requests_total{status=~"5.."})')

        # The platform goes down: deliveries fail and are retried until its circuit opens.
        platform.down.set()
        api.submit([(f"ok-down-{n}", True) for n in range(6)])
        eventually_true(prometheus, 'sum(fletcher_dispatch_attempts_total{outcome="retry"})')
        eventually_true(prometheus, 'max_over_time(fletcher_dispatch_circuit_open{compute="cams"}[1h])')

        # Every query of the dashboard, and every metric it names, answers data.
        expressions = {}
        for title, expr in dashboard_queries():
            expressions[f"dashboard {title!r}: {expr}"] = expr
            for selector in selectors(expr):
                expressions[f"dashboard {title!r} selector {selector}"] = selector
        for variable in dashboard()["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
                assert match, variable["definition"]
                selector, label = grafana_interpolate(match.group(1)), match.group(2)
                expressions[f"variable ${variable['name']}"] = f"count by ({label}) ({selector})"
        # Every value an alert compares with its threshold, and every metric it names, answers data.
        for rule in alert_rules():
            for value in alert_values(rule["expr"]):
                expressions[f"alert {rule['alert']} value {value}"] = value
            for selector in selectors(rule["expr"]):
                expressions[f"alert {rule['alert']} selector {selector}"] = selector
        silent = answering(prometheus, expressions)
        assert not silent, "no data from:\n" + "\n".join(f"{what}: {why}" for what, why in silent.items())

        # Prometheus evaluates every rule on this data without an error.
        def rules_evaluated():
            rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
            return rules if all(rule["lastEvaluation"] > "1970" and rule["health"] == "ok" for rule in rules) else None
        deadline = time.time() + 120
        while not rules_evaluated() and time.time() < deadline:
            time.sleep(1)
        evaluated = rules_evaluated()
        assert evaluated, prometheus.api("rules")
        assert sorted(rule["name"] for rule in evaluated) == sorted(rule["alert"] for rule in alert_rules())
        print(json.dumps({"queries": len(expressions), "traffic_rounds": traffic.rounds,
                          "platform_triggers": len(platform.triggers), "cancels": len(platform.cancels),
                          "webhook_requests": len(receiver.received),
                          "engine": database_url.split(":", 1)[0]}))
    finally:
        if traffic:
            traffic.stop()
        if prometheus:
            prometheus.stop()
        if server:
            server.stop()
        platform.close()
        receiver.close()

"""What Tests/e2e/test_observability_deploy.py needs beside Fletcher: a real Prometheus on loopback,
a compute platform that behaves as each product's name says, requests held open at
MAX_CONCURRENT_REQUESTS, and the little of PromQL's syntax the test reads (metric selectors, and an
alert's value beside its threshold)."""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from json_http import JSONHandler, serve_platform

from servers import HeldRequest, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


class Prometheus:
    """One Prometheus server scraping `target` (host:port) every second as job `fletcher`, with the
    alert rules of `rule_file`, its storage in a temporary folder removed by `stop`."""

    def __init__(self, target, rule_file):
        self.folder = tempfile.mkdtemp(prefix="fletcher-prometheus-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "rule_files": [os.path.abspath(rule_file)],
                  "scrape_configs": [{"job_name": "fletcher", "static_configs": [{"targets": [target]}]}]}
        config_path = os.path.join(self.folder, "prometheus.yml")
        with open(config_path, "w") as out:
            json.dump(config, out)  # JSON is YAML
        self.log = open(os.path.join(self.folder, "prometheus.log"), "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={self.folder}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/-/ready", timeout=5)
                return
            except (OSError, urllib.error.HTTPError):
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("Prometheus did not start:\n" + self.output())
                time.sleep(0.2)

    def api(self, path, **parameters):
        """The `data` of a GET on Prometheus's HTTP API; raises with Prometheus's error."""
        url = f"{self.base}/api/v1/{path}?" + urllib.parse.urlencode(parameters, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read())
        if answer.get("status") != "success":
            raise PromQLError(f"{parameters}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr):
        """An instant query's result (a list of samples) at the present."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def value(self, expr):
        """The largest value an instant query answers, or None when it answers nothing."""
        values = [float(sample["value"][1]) for sample in self.query(expr)]
        return max(values) if values else None

    def output(self):
        with open(os.path.join(self.folder, "prometheus.log"), errors="replace") as log:
            return log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class PromQLError(Exception):
    pass


class ScriptedPlatform:
    """A compute platform on loopback whose jobs do what their product's name begins with:

    - `ok`: reports `running`, then `success`;
    - `fail`: reports `running`, then `failed`;
    - `hang`: reports `running`, then nothing (until Fletcher times it out and cancels it);
    - `refuse`: the trigger is answered 400, which Fletcher does not retry.

    While `down` is set, every trigger is answered 503. `POST /cancel` answers 200. Reports go to the
    trigger's `callback_url` with `token`, and are sent again while Fletcher answers anything but
    200 or 409."""

    def __init__(self):
        self.token = None
        self.down = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.triggers = []          # (name, http status answered)
        self.cancels = []
        platform = self

        class Handler(JSONHandler):

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/cancel":
                    with platform.lock:
                        platform.cancels.append(body)
                    self.answer(200, {"cancelled": True})
                    return
                status = platform.trigger(body)
                self.answer(status, {"run_id": str(uuid.uuid4())} if status == 202 else {"error": "no"})

        serve_platform(self, Handler)

    def trigger(self, body):
        name = body.get("name", "")
        status = 503 if self.down.is_set() else 400 if name.startswith("refuse") else 202
        with self.lock:
            self.triggers.append((name, status))
        if status == 202:
            threading.Thread(target=self.run, args=(body,), daemon=True).start()
        return status

    def run(self, body):
        name = body["name"]
        if not self.report(body, "running") or name.startswith("hang"):
            return
        self.report(body, "success" if name.startswith("ok") else "failed")

    def report(self, body, state):
        """Reports `state` for the trigger's try; True when Fletcher took it."""
        target = urllib.parse.urlparse(body["callback_url"])
        item = [{"id": body["data_product_id"], "state": state, "trigger_id": body["trigger_id"]}]
        deadline = time.time() + 120
        while not self.closed.is_set() and time.time() < deadline:
            try:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                connection.request("PUT", target.path, body=json.dumps(item), headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = None
            if status in (200, 409):
                return status == 200
            self.closed.wait(0.1)
        return False

    def close(self):
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


# PromQL, as far as the test reads it.

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<operator>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],@])
""", re.X)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
SET_OPERATORS = {"and", "or", "unless"}
KEYWORDS = AGGREGATIONS | GROUPING | SET_OPERATORS | {"bool", "offset", "atan2"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}


def tokens(expr):
    """(kind, text, start, end) of each token but spaces; raises on a character PromQL has no use for."""
    found, position = [], 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if not match:
            raise PromQLError(f"cannot read {expr[position:position + 20]!r} in {expr!r}")
        if match.lastgroup != "space":
            found.append((match.lastgroup, match.group(), match.start(), match.end()))
        position = match.end()
    return found


def selectors(expr):
    """Every metric selector in `expr` (its name and label matchers), as written."""
    found = tokens(expr)
    result, depth, skip_group = [], 0, False
    n = 0
    while n < len(found):
        kind, text, start, end = found[n]
        following = found[n + 1][1] if n + 1 < len(found) else None
        if text in ("{", "["):
            depth += 1
        elif text in ("}", "]"):
            depth -= 1
        elif kind == "name" and text in GROUPING and following == "(":
            # A list of label names: skip it.
            n = next(m for m in range(n + 1, len(found)) if found[m][1] == ")")
        elif kind == "name" and depth == 0 and text not in KEYWORDS and following != "(":
            if following == "{":
                close = next(m for m in range(n + 1, len(found)) if found[m][1] == "}")
                result.append(expr[start:found[close][3]])
                n = close
            else:
                result.append(text)
        n += 1
    return result


def alert_values(expr):
    """The values an alert expression compares with its thresholds: `expr` must be one or more
    `value <comparison> number`, joined by `and`, `or` or `unless` (with `on`/`ignoring`)."""
    found = tokens(expr)
    parts, current, depth = [], [], 0
    n = 0
    while n < len(found):
        kind, text, start, end = found[n]
        if text in ("(", "{", "["):
            depth += 1
        elif text in (")", "}", "]"):
            depth -= 1
        if depth == 0 and kind == "name" and text in SET_OPERATORS:
            parts.append(current)
            current = []
            if n + 1 < len(found) and found[n + 1][1] in ("on", "ignoring"):
                n = next(m for m in range(n + 1, len(found)) if found[m][1] == ")")
        else:
            current.append(found[n])
        n += 1
    parts.append(current)
    values = []
    for part in parts:
        depth, comparisons = 0, []
        for index, (kind, text, _, _) in enumerate(part):
            if text in ("(", "{", "["):
                depth += 1
            elif text in (")", "}", "]"):
                depth -= 1
            elif depth == 0 and text in COMPARISONS:
                comparisons.append(index)
        if len(comparisons) != 1 or [kind for kind, *_ in part[comparisons[0] + 1:]] != ["number"]:
            raise PromQLError(f"not `value <comparison> number`: {expr[part[0][2]:part[-1][3]]!r}")
        values.append(expr[part[0][2]:part[comparisons[0] - 1][3]])
    return values

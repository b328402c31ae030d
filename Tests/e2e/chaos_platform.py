"""A compute platform on loopback whose jobs fail, hang or never start, for the retry, timeout and
cancel tests. Each new trigger (by Idempotency-Key) draws its outcome once, from the key:

- `success` / `failed`: reports `running`, then the end;
- `hang`: reports `running`, then nothing (until cancelled);
- `lost`: accepts the trigger and never reports (it stays `queued` at Fletcher).

Reports name their try (`trigger_id`) and go to any live Fletcher in `bases` (the callback URL's
path, another process's address when the one that sent the trigger is gone). `POST /cancel` stops a
job that has not ended (200), answers 409 for one that has and 404 for an unknown key. Everything
is counted exactly."""
import http.client
import json
import random
import threading
import time
import urllib.parse
from json_http import JSONHandler, serve_platform


class ChaosPlatform:
    def __init__(self, bases, token, fail=0.2, hang=0.1, lost=0.1, run_seconds=0.2):
        self.bases = list(bases)
        self.token = token
        self.shares = (fail, hang, lost)
        self.run_seconds = run_seconds
        self.lock = threading.Lock()
        self.jobs = {}              # key -> {"outcome", "body", "ended", "cancelled"}
        self.triggers = 0           # trigger requests, resends included
        self.cancel_requests = []   # (key, body)
        self.cancelled = set()      # keys of jobs a cancel stopped
        self.too_late = set()       # keys of jobs that had ended when their cancel came (409)
        self.reports = {"accepted": 0, "stale": 0, "failed": 0}
        self.accepted = {"success": 0, "failed": 0}
        platform = self

        class Handler(JSONHandler):

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                key = self.headers.get("Idempotency-Key")
                if self.path == "/cancel":
                    self.answer(*platform.cancel(key, body))
                else:
                    self.answer(202, platform.start(key, body))

        serve_platform(self, Handler)

    def outcome(self, key):
        fail, hang, lost = self.shares
        draw = random.Random(key).random()
        if draw < fail:
            return "failed"
        if draw < fail + hang:
            return "hang"
        if draw < fail + hang + lost:
            return "lost"
        return "success"

    def start(self, key, body):
        with self.lock:
            self.triggers += 1
            job = self.jobs.get(key)
            if job is None:
                job = {"outcome": self.outcome(key), "body": body, "ended": False, "cancelled": False,
                       "run_id": f"00000000-0000-4000-8000-{len(self.jobs):012d}"}
                self.jobs[key] = job
                threading.Thread(target=self.run, args=(key,), daemon=True).start()
            return {"run_id": job["run_id"], "link": f"{self.url}/{job['run_id']}"}

    def cancel(self, key, body):
        with self.lock:
            self.cancel_requests.append((key, body))
            job = self.jobs.get(key)
            if job is None:
                return 404, {"error": "unknown job"}
            if job["ended"]:
                self.too_late.add(key)
                return 409, {"error": "job already ended"}
            job["cancelled"] = True
            self.cancelled.add(key)
            return 200, {"cancelled": True}

    def run(self, key):
        with self.lock:
            job = self.jobs[key]
        if job["outcome"] == "lost":
            return
        time.sleep(0.05)
        if not self.report(job, key, "running"):
            return
        if job["outcome"] == "hang":
            return
        time.sleep(self.run_seconds)
        with self.lock:
            if job["cancelled"]:
                return
            job["ended"] = True
        if self.report(job, key, job["outcome"]):
            with self.lock:
                self.accepted[job["outcome"]] += 1

    def report(self, job, key, state):
        """Reports `state` for the job's try; True when Fletcher took it."""
        body = job["body"]
        path = urllib.parse.urlparse(body["callback_url"]).path
        item = [{"id": body["data_product_id"], "state": state, "run_id": job["run_id"], "trigger_id": key}]
        for attempt in range(200):
            with self.lock:
                if job["cancelled"]:
                    return False
            base = self.bases[attempt % len(self.bases)]
            host, port = urllib.parse.urlparse(base).netloc.split(":")
            try:
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
                connection.request("PUT", path, body=json.dumps(item), headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
                status = connection.getresponse().status
                connection.close()
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200:
                with self.lock:
                    self.reports["accepted"] += 1
                return True
            if status == 409:
                with self.lock:
                    self.reports["stale"] += 1
                return False
            time.sleep(0.05)
        with self.lock:
            self.reports["failed"] += 1
        return False

    def outcomes(self):
        """How many distinct jobs drew each outcome."""
        with self.lock:
            counts = {}
            for job in self.jobs.values():
                counts[job["outcome"]] = counts.get(job["outcome"], 0) + 1
            return counts

    def close(self):
        self.server.shutdown()

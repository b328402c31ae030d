#!/usr/bin/env python3
"""The measurements behind docs/PERFORMANCE.md, re-runnable: `scripts/perf/run.sh` (which starts a
durable throwaway PostgreSQL and calls this). Each step starts release-built Fletcher servers on
databases of their own, drives them with `fletcher stress` (and pgbench for PostgreSQL's own
limit), samples the server's resident memory, and writes everything to one JSON file.

Steps: curve (updates and reads against pgbench, by concurrency), mixed (the original's request mix
with 2,000 plans, then with 1,000,000 more datasets bulk-loaded, and the data products list across
them), big (10,000- and 100,000-product plans), sqlite (updates on the embedded default), dispatch
(trigger latency), webhooks (the mixed load without and with a webhook endpoint, then the webhook
latency at a tenth of peak), bulk (a bulk clear of 10,000 failed products over 1,000 datasets),
pooler (the mixed load straight to PostgreSQL and through PgBouncer, under scripts/with-pgbouncer.sh),
tracing (the mixed load with OpenTelemetry traces off and on at 10 %, and against a build without them).
"""
import argparse, base64, json, os, re, shutil, signal, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "scripts", "perf")
KEY = "perf-key"
SERVICE = "perf"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """The server scripts/with-postgres.sh started (FLETCHER_TEST_POSTGRES_URL)."""

    def __init__(self):
        url = os.environ["FLETCHER_TEST_POSTGRES_URL"]
        self.user, self.host, self.port = re.match(r"postgres(?:ql)?://([^@/]+)@([^:/]+):(\d+)/", url).groups()
        self.bin = os.environ.get("FLETCHER_TEST_POSTGRES_BIN", "")

    def tool(self, name):
        path = os.path.join(self.bin, name)
        return path if os.path.exists(path) else (shutil.which(name) or name)

    def create(self, name):
        subprocess.run([self.tool("createdb"), "-h", self.host, "-p", self.port, "-U", self.user, name], check=True)
        return f"postgres://{self.user}@{self.host}:{self.port}/{name}?sslmode=disable"

    def conninfo(self, name):
        return f"host={self.host} port={self.port} user={self.user} dbname={name}"

    def psql(self, name, *args):
        subprocess.run([self.tool("psql"), "-q", "-X", "-v", "ON_ERROR_STOP=1", self.conninfo(name), *args], check=True,
                       stdout=subprocess.DEVNULL)

    def checkpoint(self, name):
        """Writes out every page the earlier steps (or a bulk load) dirtied, so that no checkpoint they
        set off runs during the next measurement (one did, through a whole mix after the bulk load)."""
        self.psql(name, "-c", "CHECKPOINT")

    def bench_plans(self, name, prefix, first, last, shape):
        self.psql(name, "-v", f"prefix={prefix}", "-v", f"first={first}", "-v", f"last={last}", "-v", f"shape={shape}",
                  "-f", os.path.join(HERE, "bench-plans.sql"))

    def pgbench(self, name, script, clients, seconds, plans, address=None):
        """pgbench's figures running `script` on database `name`, at the server's address or at
        `address` (host:port, a pooler's)."""
        conninfo = self.conninfo(name)
        if address:
            host, port = address.split(":")
            conninfo = f"host={host} port={port} user={self.user} dbname={name}"
        out = subprocess.run([self.tool("pgbench"), "-n", "-f", os.path.join(HERE, script), "-D", f"plans={plans}",
                              "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), "-r",
                              conninfo], check=True, capture_output=True, text=True).stdout
        tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
        latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))
        return {"tps": tps, "latency_avg_ms": latency}


class Server:
    """One release-built `fletcher serve`, its start-up time and its peak resident memory."""

    def __init__(self, binary, database_url, extra_env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = tempfile.mkdtemp(prefix="fletcher-perf-")
        hashed = subprocess.run([binary, "hash-key", "--cost", "4"], input=KEY, capture_output=True, text=True,
                                check=True).stdout.strip()
        env = dict(os.environ, DATABASE_URL=database_url, BASE_URL=f"127.0.0.1:{self.port}", MAX_CONNECTIONS="20",
                   SECRET_KEY="perf-secret-that-is-long-enough-for-hs256", LOG_LEVEL="warning",
                   REMOTE_APIS=json.dumps([{"service": SERVICE, "hash": hashed,
                                            "roles": ["publish", "update", "pause", "disable"]}]), **(extra_env or {}))
        self.log = open(os.path.join(self.folder, "server.log"), "w")
        started = time.perf_counter()
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.folder)
        while True:
            try:
                urllib.request.urlopen(self.base + "/health", timeout=1)
                break
            except Exception:
                if self.process.poll() is not None or time.perf_counter() - started > 60:
                    raise RuntimeError(open(os.path.join(self.folder, "server.log")).read())
                time.sleep(0.005)
        self.startup_s = time.perf_counter() - started
        self.peak_rss_mb = 0.0
        self.sampling = True
        threading.Thread(target=self.sample, daemon=True).start()

    def rss_mb(self):
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def sample(self):
        while self.sampling:
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
            time.sleep(0.2)

    def stop(self):
        self.sampling = False
        self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
        return {"startup_s": self.startup_s, "peak_rss_mb": self.peak_rss_mb}


def stress(binary, server, scenario, concurrency, seconds, plans, platform_port=None, webhook_port=None, rate=None):
    out = os.path.join(tempfile.mkdtemp(prefix="fletcher-stress-"), "report.json")
    command = [binary, "stress", "--url", server.base, "--service", SERVICE, "--scenario", scenario,
               "--concurrency", str(concurrency), "--duration", str(seconds), "--plans", str(plans), "--json", out, "--quiet"]
    if platform_port:
        command += ["--platform-port", str(platform_port)]
    if webhook_port:
        command += ["--webhook-port", str(webhook_port)]
    if rate:
        command += ["--rate", f"{rate:.1f}"]
    text = subprocess.run(command, env=dict(os.environ, FLETCHER_STRESS_KEY=KEY), check=True, capture_output=True,
                          text=True).stdout
    print(text, flush=True)
    with open(out) as report:
        return json.load(report)


def step_curve(args, pg, results):
    database = "perf_curve"
    url = pg.create(database)
    subprocess.run([args.binary, "migrate"], env=dict(os.environ, DATABASE_URL=url), check=True, capture_output=True)
    pg.bench_plans(database, "bench", 1, args.plans, "plan")
    pg.checkpoint(database)
    server = Server(args.binary, url)
    points = []
    for clients in args.concurrency:
        log(f"curve: concurrency {clients}")
        point = {"concurrency": clients}
        point["pgbench_update"] = pg.pgbench(database, "pgbench-update.sql", clients, args.seconds, args.plans)
        point["fletcher_update"] = stress(args.binary, server, "updates", clients, args.seconds, max(100, 4 * clients))
        point["pgbench_read"] = pg.pgbench(database, "pgbench-read.sql", clients, args.seconds, args.plans)
        point["fletcher_read"] = stress(args.binary, server, "reads", clients, args.seconds, args.plans)
        points.append(point)
    results["curve"] = {"points": points, "server": server.stop()}


def step_mixed(args, pg, results):
    database = "perf_mixed"
    url = pg.create(database)
    pg.checkpoint(database)
    server = Server(args.binary, url)
    log(f"mixed: {args.mixed_plans} plans, concurrency {args.mixed_concurrency}")
    small = stress(args.binary, server, "mixed", args.mixed_concurrency, args.mixed_seconds, args.mixed_plans)
    memory = server.stop()
    log(f"mixed: bulk-loading {args.bulk} datasets")
    started = time.perf_counter()
    pg.bench_plans(database, "bulk", 1, args.bulk, "small")
    bulk_seconds = time.perf_counter() - started
    # As an operator would after a bulk load: otherwise autovacuum's first pass over the new rows
    # lands in the measurement at random (313 and 666 requests/s in two otherwise equal runs).
    pg.psql(database, "-c", "VACUUM (ANALYZE) dataset, dataset_search, data_product, dependency_block")
    pg.checkpoint(database)
    server = Server(args.binary, url)
    large = stress(args.binary, server, "mixed", args.mixed_concurrency, args.mixed_seconds, args.mixed_plans)
    log("mixed: the data products list across the million datasets")
    products = stress(args.binary, server, "products", args.products_concurrency, args.seconds, args.mixed_plans)
    results["mixed"] = {"plans": small, "plans_server": memory, "bulk": large, "bulk_datasets": args.bulk,
                        "bulk_load_s": bulk_seconds, "bulk_server": server.stop(), "products": products}


def api(server, method, path, body=None, token=None):
    request = urllib.request.Request(server.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.load(answer)


def step_bulk(args, pg, results):
    """A bulk clear of 10,000 failed products over 1,000 datasets (10 each): its dry run, then the
    clear itself, timed from the client; every product is queued again afterwards."""
    url = pg.create("perf_bulk")
    server = Server(args.binary, url)
    token = api(server, "POST", "/api/authenticate", {"service": SERVICE, "key": KEY})["access_token"]
    log(f"bulk: {args.bulk_datasets} datasets of 10 failed products")
    for n in range(args.bulk_datasets):
        dataset = f"{n:08x}-0000-4000-8000-{0:012x}"
        products = [f"{n:08x}-{i:04x}-4000-8000-{1:012x}" for i in range(10)]
        api(server, "POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {}},
            "data_products": [{"id": p, "compute": "cams", "name": f"product {i}", "version": "1", "eager": True,
                               "passthrough": {}, "extra": {}} for i, p in enumerate(products)],
            "dependencies": []}, token)
        api(server, "PUT", f"/api/data_product/{dataset}/update", [{"id": p, "state": "failed"} for p in products], token)
    pg.checkpoint("perf_bulk")
    body = {"filter": {"state": "failed"}, "max_products": 10 * args.bulk_datasets}
    started = time.perf_counter()
    dry = api(server, "POST", "/api/bulk/clear", {**body, "dry_run": True}, token)
    dry_s = time.perf_counter() - started
    started = time.perf_counter()
    applied = api(server, "POST", "/api/bulk/clear", body, token)
    applied_s = time.perf_counter() - started
    changed = sum(len(result["changed"]) for result in applied["results"])
    queued, cursor = 0, None
    while True:
        page = api(server, "GET", "/api/data_products?state=queued&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        queued += len(page["data_products"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    log(f"bulk: dry run {dry_s:.2f} s, clear {applied_s:.2f} s, {changed} changed, {queued} queued")
    results["bulk"] = {"datasets": args.bulk_datasets, "products": 10 * args.bulk_datasets, "dry_run_s": dry_s,
                       "dry_run_changed": sum(len(result["changed"]) for result in dry["results"]),
                       "clear_s": applied_s, "changed": changed, "queued_after": queued,
                       "errors": sum(1 for result in applied["results"] if result["error"]), "server": server.stop()}


def step_big(args, pg, results):
    url = pg.create("perf_big")
    pg.checkpoint("perf_big")
    # A 100,000-product plan is about 40 MB of JSON: above the default 16 MiB body cap.
    server = Server(args.binary, url, {"MAX_BODY_BYTES": str(256 << 20)})
    big = {}
    for products, runs, updates in [(10_000, 3, 50), (100_000, 2, 10)]:
        log(f"big: {products} products")
        out = os.path.join(tempfile.mkdtemp(prefix="fletcher-big-"), "big.json")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "measure-submission.py"), "--url", server.base,
                        "--service", SERVICE, "--key", KEY, "--products", str(products), "--runs", str(runs),
                        "--updates", str(updates), "--json", out], check=True)
        with open(out) as figures:
            big[str(products)] = json.load(figures)
    big["server"] = server.stop()
    results["big"] = big


def step_sqlite(args, pg, results):
    folder = tempfile.mkdtemp(prefix="fletcher-perf-sqlite-")
    server = Server(args.binary, f"sqlite:{folder}/fletcher.sqlite")
    log("sqlite: updates")
    report = stress(args.binary, server, "updates", args.sqlite_concurrency, args.seconds, 200)
    results["sqlite"] = {"updates": report, "server": server.stop()}
    shutil.rmtree(folder, ignore_errors=True)


def step_dispatch(args, pg, results):
    # A server, database and platform port of its own for each concurrency: triggers still queued
    # when one level's tool stops would otherwise reach the next level's tool, which never expected
    # them (reported as unexpected triggers).
    reports, servers = {}, []
    for clients in [1, 4, 16]:
        url = pg.create(f"perf_dispatch_{clients}")
        pg.checkpoint(f"perf_dispatch_{clients}")
        port = free_port()
        # max_in_flight 64: the default 8 is a per-platform politeness limit, not what is measured here.
        target = {"cams": {"url": f"http://127.0.0.1:{port}/jobs", "max_in_flight": 64}}
        server = Server(args.binary, url, {"COMPUTE_TARGETS": json.dumps(target)})
        log(f"dispatch: trigger latency, concurrency {clients}")
        reports[str(clients)] = stress(args.binary, server, "dispatch", clients, args.seconds, 200, platform_port=port)
        servers.append(server.stop())
    results["dispatch"] = {
        "reports": reports,
        "server": {"startup_s": max(s["startup_s"] for s in servers), "peak_rss_mb": max(s["peak_rss_mb"] for s in servers)},
    }


def alternating(step, base, other, count, measure):
    """`count` rounds of `measure(base)` and `measure(other)`, the order swapped every round (so that
    neither arm always runs on the warmer machine): the rounds, and each round's throughput ratio
    of `other` to `base`."""
    rounds = []
    for round in range(count):
        pair = {}
        for arm in ([base, other] if round % 2 == 0 else [other, base]):
            log(f"{step}: round {round + 1}, {arm}")
            pair[arm] = measure(arm)
        rounds.append(pair)
    return rounds, [pair[other]["throughput"] / pair[base]["throughput"] for pair in rounds]


def step_webhooks(args, pg, results):
    """The mixed load without and with one Standard Webhooks endpoint (the stress tool itself)
    subscribed to every event, in alternating rounds, each on a server and database of its own
    (events are recorded either way; the difference is their delivery, and no round inherits
    another's backlog). Then the webhook latency at a tenth of the subscribed peak, paced by
    --rate, on few plans (so that products reach success) on a fresh server."""
    port = free_port()
    hooks = json.dumps([{"url": f"http://127.0.0.1:{port}/hooks", "events": ["*"], "format": "standard",
                         "secret": "whsec_" + base64.b64encode(b"perf-webhook-secret-of-32-bytes!").decode()}])
    counter = iter(range(1_000_000))

    def measure(arm, plans, rate=None):
        database = f"perf_webhooks_{next(counter)}"
        url = pg.create(database)
        pg.checkpoint(database)
        server = Server(args.binary, url, {"WEBHOOKS": hooks} if arm == "with" else {})
        report = stress(args.binary, server, "mixed", args.mixed_concurrency, args.webhook_seconds, plans,
                        webhook_port=port if arm == "with" else None, rate=rate)
        report["server"] = server.stop()
        return report

    rounds, ratios = alternating("webhooks", "without", "with", args.webhook_rounds, lambda arm: measure(arm, args.mixed_plans))
    peak = sorted(pair["with"]["throughput"] for pair in rounds)[len(rounds) // 2]
    log(f"webhooks: latency at {peak / 10:.0f} requests/s, a tenth of {peak:.0f}")
    paced = measure("with", args.webhook_paced_plans, rate=peak / 10)
    results["webhooks"] = {"rounds": rounds, "ratios": ratios, "ratio_median": sorted(ratios)[len(ratios) // 2],
                           "peak": peak, "paced": paced}


def step_pooler(args, pg, results):
    """The mixed load straight to PostgreSQL and through PgBouncer in transaction mode
    (`DATABASE_POOLER=transaction`, the listener straight to PostgreSQL with `DATABASE_LISTEN_URL`),
    in alternating rounds, each on a server and database of its own. Run under
    scripts/with-pgbouncer.sh (FLETCHER_TEST_POSTGRES_URL goes through PgBouncer,
    FLETCHER_TEST_POSTGRES_DIRECT_URL to the server). Each arm then runs pgbench's minimal update
    transaction (pgbench-update.sql) the same way, straight or through PgBouncer, for as long, at the
    same concurrency: the ratio a pooler process allows PostgreSQL's own client on these cores."""
    direct = os.environ.get("FLETCHER_TEST_POSTGRES_DIRECT_URL")
    if not direct:
        raise SystemExit("the pooler step runs under scripts/with-pgbouncer.sh")
    server_address = re.match(r"postgres(?:ql)?://[^@/]+@([^:/]+:\d+)/", direct).group(1)
    counter = iter(range(1_000_000))

    def measure(arm):
        database = f"perf_pooler_{next(counter)}"
        pooled_url = pg.create(database)
        straight_url = re.sub(r"@[^/]+/", f"@{server_address}/", pooled_url, count=1)
        pg.checkpoint(database)
        env = ({"DATABASE_POOLER": "transaction", "DATABASE_LISTEN_URL": straight_url} if arm == "pgbouncer" else {})
        server = Server(args.binary, pooled_url if arm == "pgbouncer" else straight_url, env)
        report = stress(args.binary, server, "mixed", args.mixed_concurrency, args.pooler_seconds, args.mixed_plans)
        report["server"] = server.stop()
        pg.bench_plans(database, "bench", 1, args.mixed_plans, "plan")
        pg.checkpoint(database)
        pooled_address = re.match(r"postgres(?:ql)?://[^@/]+@([^:/]+:\d+)/", pooled_url).group(1)
        report["pgbench_update"] = pg.pgbench(database, "pgbench-update.sql", args.mixed_concurrency, args.pooler_seconds,
                                              args.mixed_plans, pooled_address if arm == "pgbouncer" else server_address)
        return report

    rounds, ratios = alternating("pooler", "direct", "pgbouncer", args.pooler_rounds, measure)
    pgbench = [pair["pgbouncer"]["pgbench_update"]["tps"] / pair["direct"]["pgbench_update"]["tps"] for pair in rounds]
    results["pooler"] = {"rounds": rounds, "ratios": ratios, "ratio_median": sorted(ratios)[len(ratios) // 2],
                         "pgbench_ratios": pgbench, "pgbench_ratio_median": sorted(pgbench)[len(pgbench) // 2]}
    log(f"pooler: PgBouncer / direct = {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"pgbench's = {', '.join(f'{r:.2f}' for r in pgbench)}")


class SpanSink:
    """An OTLP/HTTP endpoint on loopback that takes span exports as a collector does (200, an empty
    protobuf answer) and counts them; the spans go nowhere."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.exports = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                sink.exports += 1
                sink.bytes += length
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def step_tracing(args, pg, results):
    """The mixed load with OpenTelemetry traces off and on, sampling 10 % of requests
    (parentbased_traceidratio 0.1; the stress tool sends no traceparent, so every trace starts at
    Fletcher), exported each second to a span sink on loopback; with --baseline (a build of the
    commit before traces), that build's arm too: what traces off cost. Rounds rotate the arms'
    order, each arm on a server and database of its own."""
    sink = SpanSink()
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
              "OTEL_TRACES_SAMPLER_ARG": "0.1", "OTEL_BSP_SCHEDULE_DELAY": "1000"}
    arms = ["off", "on"] + (["baseline"] if args.baseline else [])
    counter = iter(range(1_000_000))

    def measure(arm):
        database = f"perf_tracing_{next(counter)}"
        url = pg.create(database)
        pg.checkpoint(database)
        exports, sent = sink.exports, sink.bytes
        server = Server(args.baseline if arm == "baseline" else args.binary, url, traced if arm == "on" else {})
        report = stress(args.binary, server, "mixed", args.mixed_concurrency, args.tracing_seconds, args.mixed_plans)
        report["server"] = server.stop()
        report["span_exports"], report["span_bytes"] = sink.exports - exports, sink.bytes - sent
        return report

    rounds = []
    for round in range(args.tracing_rounds):
        results_of_round = {}
        for arm in arms[round % len(arms):] + arms[:round % len(arms)]:
            log(f"tracing: round {round + 1}, {arm}")
            results_of_round[arm] = measure(arm)
        rounds.append(results_of_round)

    def ratios(arm, base):
        values = [pair[arm]["throughput"] / pair[base]["throughput"] for pair in rounds]
        return values, sorted(values)[len(values) // 2]

    on_off, on_off_median = ratios("on", "off")
    results["tracing"] = {"rounds": rounds, "on_off_ratios": on_off, "on_off_median": on_off_median}
    log(f"tracing: on at 10 % / off = {', '.join(f'{r:.2f}' for r in on_off)}")
    if args.baseline:
        off_baseline, off_baseline_median = ratios("off", "baseline")
        results["tracing"].update({"off_baseline_ratios": off_baseline, "off_baseline_median": off_baseline_median})
        log(f"tracing: off / the build without traces = {', '.join(f'{r:.2f}' for r in off_baseline)}")
    sink.server.shutdown()


STEPS = {"curve": step_curve, "mixed": step_mixed, "big": step_big, "sqlite": step_sqlite, "dispatch": step_dispatch,
         "webhooks": step_webhooks, "bulk": step_bulk, "pooler": step_pooler, "tracing": step_tracing}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build-release", "release", "fletcher"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "results.json"))
    parser.add_argument("--steps", default=",".join(step for step in STEPS if step != "pooler"))
    parser.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--mixed-plans", type=int, default=2000)
    parser.add_argument("--mixed-concurrency", type=int, default=32)
    parser.add_argument("--mixed-seconds", type=int, default=60)
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--sqlite-concurrency", type=int, default=16)
    parser.add_argument("--webhook-rounds", type=int, default=4)
    parser.add_argument("--webhook-paced-plans", type=int, default=50)
    parser.add_argument("--webhook-seconds", type=int, default=30)
    parser.add_argument("--products-concurrency", type=int, default=8)
    parser.add_argument("--pooler-rounds", type=int, default=6)
    parser.add_argument("--pooler-seconds", type=int, default=30)
    parser.add_argument("--bulk-datasets", type=int, default=1000)
    parser.add_argument("--tracing-rounds", type=int, default=4)
    parser.add_argument("--tracing-seconds", type=int, default=30)
    parser.add_argument("--baseline", help="a fletcher built from the commit before traces, for the tracing step")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    pg = Postgres()
    results = {}
    if os.path.exists(args.out):
        with open(args.out) as previous:
            results = json.load(previous)  # steps not run keep their earlier figures
    results["machine"] = {"cpus": os.cpu_count(), "uname": " ".join(os.uname()),
                          "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                          "date": time.strftime("%Y-%m-%d")}
    for name in args.steps.split(","):
        STEPS[name](args, pg, results)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as out:
            json.dump(results, out, indent=2, sort_keys=True)
        log(f"{name}: written to {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times plan submissions against a running Fletcher: a new dataset of N data products and 3N
dependencies, validated and stored, submitted several times (each a new dataset), then once more
as a resubmission of an existing plan (every row upserted); then reads it, and times --updates
state updates of single data products in it (each answered with the whole plan).

    scripts/measure-submission.py --url http://127.0.0.1:3000 --service local --key KEY --products 10000
"""
import argparse, json, random, statistics, time, urllib.request, uuid


def request(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as response:
        payload = response.read()
    return time.perf_counter() - started, response.status, payload


def plan(products, rng):
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(products)]
    edges = set()
    for child in range(1, products):
        for _ in range(3):
            edges.add((rng.randrange(0, child), child))
    while len(edges) < 3 * products - 3:  # top up to ~3N distinct edges
        child = rng.randrange(1, products)
        edges.add((rng.randrange(0, child), child))
    return {
        "dataset": {"id": str(uuid.uuid4()), "extra": {"purpose": "measure-submission"}},
        "data_products": [
            {"id": i, "compute": "cams" if n % 2 else "dbxaas", "name": f"product {n}", "version": "1.0.0",
             "eager": n % 3 != 0, "passthrough": {"n": n}, "extra": {}}
            for n, i in enumerate(ids)
        ],
        "dependencies": [{"parent_id": ids[p], "child_id": ids[c], "extra": {}} for p, c in sorted(edges)],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--service", default="local")
    parser.add_argument("--key", required=True)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--json", help="also write the figures (seconds) to this file")
    args = parser.parse_args()

    _, _, body = request("POST", f"{args.url}/api/authenticate", {"service": args.service, "key": args.key})
    token = json.loads(body)["access_token"]
    rng = random.Random(42)
    times = []
    last = None
    for _ in range(args.runs):
        last = plan(args.products, rng)
        seconds, status, payload = request("POST", f"{args.url}/api/plan", last, token)
        assert status == 200, payload[:500]
        times.append(seconds)
    resubmit, status, _ = request("POST", f"{args.url}/api/plan", last, token)
    assert status == 200
    read, status, payload = request("GET", f"{args.url}/api/plan/{last['dataset']['id']}")
    assert status == 200 and len(json.loads(payload)["data_products"]) == args.products
    dataset = last["dataset"]["id"]
    updates = []
    for n in range(args.updates):
        product = rng.choice(last["data_products"])["id"]
        seconds, status, payload = request("PUT", f"{args.url}/api/data_product/{dataset}/update", [
            {"id": product, "state": "running" if n % 2 == 0 else "success"}], token)
        assert status == 200, payload[:500]
        updates.append(seconds)
    print(f"{args.products} data products, {len(last['dependencies'])} dependencies, {args.runs} new datasets")
    print(f"  submit new:  median {statistics.median(times) * 1000:.0f} ms  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
    print(f"  resubmit:    {resubmit * 1000:.0f} ms")
    print(f"  read plan:   {read * 1000:.0f} ms")
    if updates:
        print(f"  update one:  median {statistics.median(updates) * 1000:.1f} ms  (min {min(updates) * 1000:.1f}, "
              f"max {max(updates) * 1000:.1f}) over {len(updates)} updates")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"products": args.products, "dependencies": len(last["dependencies"]), "submit": times,
                       "submit_median": statistics.median(times), "resubmit": resubmit, "read": read,
                       "updates": updates, "update_median": statistics.median(updates) if updates else None}, out, indent=2)


if __name__ == "__main__":
    main()

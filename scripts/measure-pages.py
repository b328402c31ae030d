#!/usr/bin/env python3
"""Times the plan page of plans of several sizes against a running Fletcher: the first request
(Graphviz lays the drawing out) and the median of the next ones (the drawing comes from the cache).

    scripts/measure-pages.py --url http://127.0.0.1:3000 --service local --key KEY
"""
import argparse, json, statistics, time, urllib.request, uuid


def call(url, body=None, token=None, method=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        payload = response.read()
    return time.perf_counter() - started, payload


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--service", default="local")
    parser.add_argument("--key", required=True)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--shape", choices=["chain", "tree"], default="chain",
                        help="chain: each product depends on the one before and the one halfway back; "
                             "tree: on the one halfway back only")
    args = parser.parse_args()
    _, body = call(f"{args.url}/api/authenticate", {"service": args.service, "key": args.key})
    token = json.loads(body)["access_token"]
    print(f"{args.shape}: {'products':>9} {'first (ms)':>11} {'cached median (ms)':>19} {'page KB':>8}")
    for size in map(int, args.sizes.split(",")):
        ids = [str(uuid.uuid4()) for _ in range(size)]
        dataset = str(uuid.uuid4())
        plan = {
            "dataset": {"id": dataset, "extra": {"purpose": "measure-pages"}},
            "data_products": [{"id": ids[i], "compute": "cams", "name": f"product {i}", "version": "1.0",
                               "eager": i % 4 != 0} for i in range(size)],
            "dependencies": [{"parent_id": ids[p], "child_id": ids[c]} for c in range(1, size)
                             for p in sorted({(c - 1) // 2, c - 1} if args.shape == "chain" else {(c - 1) // 2})],
        }
        call(f"{args.url}/api/plan", plan, token)
        first, page = call(f"{args.url}/plan/{dataset}")
        cached = [call(f"{args.url}/plan/{dataset}")[0] for _ in range(args.repeat)]
        print(f"{size:>9} {first * 1000:>11.0f} {statistics.median(cached) * 1000:>19.0f} {len(page) / 1024:>8.0f}")


if __name__ == "__main__":
    main()

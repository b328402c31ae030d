#!/usr/bin/env python3
"""Times the plan page of plans of several sizes and shapes against a running Fletcher: the first
request (Graphviz lays the drawing out) and the median of the next ones (the drawing comes from the
cache). What `PlanDrawing.maxLayoutCost` is calibrated with: the slowest whole drawings should take
about a second.

    scripts/measure-pages.py --url http://127.0.0.1:3000 --service local --key KEY
"""
import argparse, json, random, statistics, time, urllib.request, uuid


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
    parser.add_argument("--shape", choices=["chain", "tree", "random3", "layers", "bipartite"], default="chain",
                        help="chain: each product depends on the one before and the one halfway back; "
                             "tree: on the one halfway back only; random3: on up to three earlier ones at random; "
                             "layers: on one 10 to 19 places back; bipartite: the second half each on up to four "
                             "of the first half at random")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    _, body = call(f"{args.url}/api/authenticate", {"service": args.service, "key": args.key})
    token = json.loads(body)["access_token"]
    generator = random.Random(args.seed)

    def parents(child, size):
        """The positions `child` depends on, in the chosen shape."""
        if args.shape == "chain":
            return {(child - 1) // 2, child - 1}
        if args.shape == "tree":
            return {(child - 1) // 2}
        if args.shape == "random3":
            return {generator.randrange(child) for _ in range(3)}
        if args.shape == "layers":
            return {max(0, child - 10 - generator.randrange(10))}
        return set() if child < size // 2 else {generator.randrange(size // 2) for _ in range(4)}

    # "first" is Graphviz's layout of the drawing (the later requests are served from its cache);
    # "drawn" says whether the whole plan was drawn or, past the layout-cost limit
    # (PlanDrawing.maxLayoutCost), one product's neighbourhood.
    print(f"{args.shape}: {'products':>9} {'first (ms)':>11} {'cached median (ms)':>19} {'page KB':>8} {'drawn':>6}")
    for size in map(int, args.sizes.split(",")):
        ids = [str(uuid.uuid4()) for _ in range(size)]
        dataset = str(uuid.uuid4())
        plan = {
            "dataset": {"id": dataset, "extra": {"purpose": "measure-pages"}},
            "data_products": [{"id": ids[i], "compute": "cams", "name": f"product {i}", "version": "1.0",
                               "eager": i % 4 != 0} for i in range(size)],
            "dependencies": [{"parent_id": ids[p], "child_id": ids[c]} for c in range(1, size)
                             for p in sorted(parents(c, size))],
        }
        call(f"{args.url}/api/plan", plan, token)
        first, page = call(f"{args.url}/plan/{dataset}")
        cached = [call(f"{args.url}/plan/{dataset}")[0] for _ in range(args.repeat)]
        drawn = "focus" if b"too many to draw at once" in page else "whole"
        print(f"{size:>9} {first * 1000:>11.0f} {statistics.median(cached) * 1000:>19.0f} {len(page) / 1024:>8.0f} {drawn:>6}")


if __name__ == "__main__":
    main()

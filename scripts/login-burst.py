#!/usr/bin/env python3
"""Fires N concurrent logins of one service at a running Fletcher and counts the answers.

    scripts/login-burst.py --url http://127.0.0.1:3000 --service local --key demo-key --count 600

Every login opens its own connection; all wait at a barrier and are sent together (many workers of
one compute platform restarting at once). Prints the answers by status and the elapsed time, from
the release of the barrier to the last answer. Exits 1 when any answer is not 200.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--service", default="local")
    parser.add_argument("--key", default="demo-key")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    body = json.dumps({"service": args.service, "key": args.key})
    barrier = threading.Barrier(args.count + 1)
    statuses: Counter = Counter()
    lock = threading.Lock()

    def login() -> None:
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
        try:
            try:
                connection.connect()
            finally:
                barrier.wait()  # even when the connection failed, so that the others go on
            connection.request("POST", "/api/authenticate", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            status = str(answer.status)
        except Exception as error:  # counted, not raised: the figure is the point
            status = type(error).__name__
        finally:
            connection.close()
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=login) for _ in range(args.count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    counts = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"{args.count} logins of '{args.service}': {counts}; {elapsed:.2f} s")
    return 0 if statuses.get("200", 0) == args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Draws throughput and p99 latency against concurrency from scripts/perf/run.py's results:
Fletcher's state updates and plan reads over HTTP next to pgbench's minimal transactions.

    chart.py docs/perf/results.json docs/perf/throughput.png
"""
import json, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(source, target):
    with open(source) as f:
        results = json.load(f)
    points = results["curve"]["points"]
    concurrency = [p["concurrency"] for p in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [
        ("fletcher_update", "Fletcher: state update (HTTP)", "tab:blue", "-"),
        ("pgbench_update", "pgbench: minimal update transaction", "tab:blue", "--"),
        ("fletcher_read", "Fletcher: GET /api/plan/{id}", "tab:green", "-"),
        ("pgbench_read", "pgbench: read one dataset's rows", "tab:green", "--"),
    ]
    for key, label, colour, style in series:
        values = [p[key]["throughput"] if key.startswith("fletcher") else p[key]["tps"] for p in points]
        left.plot(concurrency, values, style, color=colour, marker="o", label=label)
    left.set_xscale("log", base=2)
    left.set_xticks(concurrency, [str(c) for c in concurrency])
    left.set_xlabel("concurrent clients")
    left.set_ylabel("requests (transactions) per second")
    left.set_title("Throughput")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    for key, label, colour in [("fletcher_update", "state update", "tab:blue"), ("fletcher_read", "plan read", "tab:green")]:
        kind = "update" if key == "fletcher_update" else "read plan"
        right.plot(concurrency, [p[key]["kinds"][kind]["p99_ms"] for p in points], color=colour, marker="o", label=label)
        right.plot(concurrency, [p[key]["kinds"][kind]["p50_ms"] for p in points], ":", color=colour, marker=".",
                   label=label + " p50")
    right.set_xscale("log", base=2)
    right.set_xticks(concurrency, [str(c) for c in concurrency])
    right.set_xlabel("concurrent clients")
    right.set_ylabel("latency at the client (ms)")
    right.set_title("Fletcher p99 (solid) and p50 (dotted)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    machine = results.get("machine", {})
    figure.suptitle(f"Fletcher on PostgreSQL, server, database and load generator on one {machine.get('cpus', '?')}-core machine "
                    f"({machine.get('date', '')})", fontsize=10)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

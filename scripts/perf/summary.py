#!/usr/bin/env python3
"""Prints docs/PERFORMANCE.md's result tables (Markdown) from scripts/perf/run.py's JSON.

    scripts/perf/summary.py docs/perf/results.json
"""
import json, sys


def kind_row(name, kind):
    return (f"| {name} | {kind['count']:,} | {kind['failed']} | {kind['p50_ms']:.1f} | {kind['p95_ms']:.1f} | "
            f"{kind['p99_ms']:.1f} | {kind['max_ms']:.1f} |")


def main(path):
    r = json.load(open(path))
    m = r.get("machine", {})
    print(f"Machine: {m.get('cpus')} cores, {m.get('memory_gib')} GiB, `{m.get('uname')}`, {m.get('date')}.\n")
    if "curve" in r:
        print("### State updates and plan reads against pgbench, by concurrency\n")
        print("| clients | pgbench update tps | Fletcher updates/s | ratio | update p50 / p99 ms | pgbench read tps | "
              "Fletcher reads/s | ratio | read p50 / p99 ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for p in r["curve"]["points"]:
            fu, fr = p["fletcher_update"], p["fletcher_read"]
            u, rd = fu["kinds"]["update"], fr["kinds"]["read plan"]
            print(f"| {p['concurrency']} | {p['pgbench_update']['tps']:.0f} | {fu['throughput']:.0f} | "
                  f"{fu['throughput'] / p['pgbench_update']['tps']:.2f} | {u['p50_ms']:.1f} / {u['p99_ms']:.1f} | "
                  f"{p['pgbench_read']['tps']:.0f} | {fr['throughput']:.0f} | {fr['throughput'] / p['pgbench_read']['tps']:.2f} | "
                  f"{rd['p50_ms']:.1f} / {rd['p99_ms']:.1f} |")
        s = r["curve"]["server"]
        print(f"\nServer: peak resident set {s['peak_rss_mb']:.0f} MB, start-up to serving {s['startup_s'] * 1000:.0f} ms.\n")
    if "mixed" in r:
        for key, title, server in [("plans", "The original's request mix, 2,000 plans", "plans_server"),
                                   ("bulk", f"The same with {r['mixed']['bulk_datasets']:,} more datasets bulk-loaded", "bulk_server")]:
            rep = r["mixed"][key]
            print(f"### {title}\n")
            print(f"{rep['throughput']:.0f} requests/s at concurrency {rep['concurrency']}, {rep['requests']:,} requests, "
                  f"{rep['failed']} failed; server peak RSS {r['mixed'][server]['peak_rss_mb']:.0f} MB.\n")
            print("| request | count | failed | p50 ms | p95 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|---|---|")
            for name in ["update", "clear", "index page", "search", "plan page"]:
                if name in rep["kinds"]:
                    print(kind_row(name, rep["kinds"][name]))
            print()
        print(f"Bulk load of {r['mixed']['bulk_datasets']:,} datasets: {r['mixed']['bulk_load_s']:.0f} s.\n")
    if "big" in r:
        print("### Large plans\n")
        print("| products | dependencies | submit new (median) | resubmit | read | one state update (median) |")
        print("|---|---|---|---|---|---|")
        for size in ["10000", "100000"]:
            b = r["big"].get(size)
            if b:
                print(f"| {int(size):,} | {b['dependencies']:,} | {b['submit_median']:.2f} s | {b['resubmit']:.2f} s | "
                      f"{b['read']:.2f} s | {b['update_median'] * 1000:.0f} ms |")
        print(f"\nServer peak RSS {r['big']['server']['peak_rss_mb']:.0f} MB.\n")
    if "sqlite" in r:
        rep = r["sqlite"]["updates"]
        u = rep["kinds"]["update"]
        print(f"### SQLite (embedded default)\n\nState updates: {rep['throughput']:.0f} requests/s at concurrency "
              f"{rep['concurrency']}, p50 {u['p50_ms']:.1f} ms, p99 {u['p99_ms']:.1f} ms, {rep['failed']} failed; "
              f"server peak RSS {r['sqlite']['server']['peak_rss_mb']:.0f} MB.\n")
    if "dispatch" in r:
        print("### Trigger latency (parent's success sent → child's trigger at the platform)\n")
        print("| clients | updates/s | triggers | unexpected | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|")
        for clients, rep in sorted(r["dispatch"]["reports"].items(), key=lambda item: int(item[0])):
            t = rep["kinds"]["trigger latency"]
            print(f"| {clients} | {rep['throughput']:.0f} | {t['count']:,} | {rep.get('unexpected_triggers', 0)} | "
                  f"{t['p50_ms']:.1f} | {t['p95_ms']:.1f} | "
                  f"{t['p99_ms']:.1f} | {t['max_ms']:.1f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/perf/results.json")

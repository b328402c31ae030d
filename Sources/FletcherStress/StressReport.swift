public import Foundation
import Histogram

/// What a stress run measured: throughput, and per request kind the counts and latency percentiles.
public struct StressReport: Sendable {
    let options: StressOptions
    let plans: Int
    let setup: Duration
    let elapsed: Duration
    let kinds: [String: StressRecorder.Kind]
    let measured: Int
    let failed: Int
    let failures: [String]
    let unexpectedTriggers: Int
    let unexpectedWebhooks: Int
    let missingWebhooks: Int

    static let order = ["update", "clear", "read plan", "index page", "search", "plan page", "trigger latency", "webhook latency", "submit", "authenticate"]

    var throughput: Double { Double(measured) / StressRunner.seconds(elapsed) }

    private var orderedKinds: [(String, StressRecorder.Kind)] {
        kinds.sorted { (Self.order.firstIndex(of: $0.key) ?? 99, $0.key) < (Self.order.firstIndex(of: $1.key) ?? 99, $1.key) }
    }

    private static func milliseconds(_ microseconds: UInt64) -> Double { Double(microseconds) / 1000 }

    private static func row(_ kind: StressRecorder.Kind) -> [String: Double] {
        let histogram = kind.histogram
        return [
            "min_ms": milliseconds(histogram.min), "avg_ms": histogram.mean / 1000,
            "p50_ms": milliseconds(histogram.valueAtPercentile(50)), "p95_ms": milliseconds(histogram.valueAtPercentile(95)),
            "p99_ms": milliseconds(histogram.valueAtPercentile(99)), "max_ms": milliseconds(histogram.max),
        ]
    }

    /// The table printed at the end of a run.
    public var text: String {
        var lines = [
            "scenario \(options.scenario.rawValue), concurrency \(options.concurrency), \(plans) plans, target \(options.url.absoluteString)",
            String(
                format: "set-up: %d plans submitted in %.2f s", plans, StressRunner.seconds(setup)),
            String(
                format: "measured: %d requests in %.2f s = %.1f requests/s; %d ok, %d failed", measured, StressRunner.seconds(elapsed),
                throughput, measured - failed, failed),
            "",
            "kind                 count       ok   failed     min     avg     p50     p95     p99     max  (ms)",
        ]
        for (name, kind) in orderedKinds {
            let values = Self.row(kind)
            lines.append(
                name.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + String(
                        format: "%9d %8d %8d %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f", Int(kind.histogram.totalCount), kind.ok, kind.failed,
                        values["min_ms"]!, values["avg_ms"]!, values["p50_ms"]!, values["p95_ms"]!, values["p99_ms"]!, values["max_ms"]!))
        }
        if options.scenario == .dispatch {
            lines.append("")
            lines.append("trigger latency: from sending a parent's success to its child's trigger arriving at this tool")
            if unexpectedTriggers > 0 { lines.append("unexpected or duplicate triggers: \(unexpectedTriggers)") }
        }
        if options.webhookPort != nil {
            lines.append("")
            lines.append("webhook latency: from sending a product's success to its data_product.succeeded webhook arriving at this tool")
            if unexpectedWebhooks > 0 { lines.append("webhooks for no success sent: \(unexpectedWebhooks)") }
            if missingWebhooks > 0 { lines.append("successes whose webhook never arrived: \(missingWebhooks)") }
        }
        if !failures.isEmpty {
            lines.append("")
            lines.append("first failures:")
            lines += failures.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    /// The same as JSON, for scripts (`--json`).
    public var json: Data {
        var kindsJSON: [String: Any] = [:]
        for (name, kind) in kinds {
            var row: [String: Any] = Self.row(kind)
            row["count"] = Int(kind.histogram.totalCount)
            row["ok"] = kind.ok
            row["failed"] = kind.failed
            kindsJSON[name] = row
        }
        let object: [String: Any] = [
            "scenario": options.scenario.rawValue, "concurrency": options.concurrency, "plans": plans, "target": options.url.absoluteString,
            "setup_s": StressRunner.seconds(setup), "duration_s": StressRunner.seconds(elapsed), "requests": measured,
            "ok": measured - failed, "failed": failed, "throughput": throughput, "kinds": kindsJSON, "failures": failures,
            "unexpected_triggers": unexpectedTriggers, "unexpected_webhooks": unexpectedWebhooks, "missing_webhooks": missingWebhooks,
            "rate": options.rate ?? 0,
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}

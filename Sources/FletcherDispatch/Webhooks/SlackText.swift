import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// The one line a Slack channel shows for an event (Slack's mrkdwn): an emoji, what happened in
/// bold, the data product linked to its page and the plan to its page on `PUBLIC_URL`, and the
/// try, reason, deadline or lateness the event carries. Times are Slack date tokens, shown in each
/// reader's time zone (UTC where they cannot be).
struct SlackText {
    let event: PlanEvent
    /// `PUBLIC_URL`, without a trailing slash.
    let publicURL: String

    /// The line for a stored event; its data is read back as the rules made it (an unreadable
    /// data object, which no store writes, gives the line without its details).
    init(event: StoredEvent, publicURL: String) {
        let data = (try? PlanEvent.data(parsing: event.data.text)) ?? [:]
        self.event = PlanEvent(
            id: event.id, type: event.type, time: event.time, datasetId: event.datasetId, sequence: event.sequence,
            dataProductId: event.dataProductId, data: data)
        self.publicURL = publicURL
    }

    var text: String {
        switch event.type {
        case .dataProductFailed:
            let outcome: String
            if event.data["final"] == .bool(true) {
                outcome = " — final"
            } else if let retryAt = time("retry_at") {
                outcome = " — retry at \(retryAt)"
            } else {
                outcome = " — a retry follows"
            }
            return ":x: Data product \(product) *failed*\(details()) in plan \(plan)\(outcome)"
        case .dataProductTimedOut:
            return ":hourglass: Data product \(product) *timed out*\(details()) in plan \(plan)"
        case .dataProductRetrying:
            return ":repeat: Data product \(product) *is retrying*\(details()) in plan \(plan)"
        case .dataProductSucceeded:
            return ":white_check_mark: Data product \(product) *succeeded*\(details()) in plan \(plan)\(lateness)"
        case .dataProductLate:
            let state = string("state").map { "still \(Self.escaped($0))" } ?? "not done"
            return ":alarm_clock: Data product \(product) *is late* in plan \(plan): \(state) at its deadline \(time("deadline") ?? "")"
        case .dataProductCancelled:
            return ":no_entry_sign: Data product \(product) *was cancelled*\(details(string("reason"))) in plan \(plan)"
        case .datasetSucceeded:
            return ":tada: Plan \(plan) *succeeded*\(lateness)"
        case .datasetLate:
            let unfinished: String
            if case .integer(let count) = event.data["unfinished"] {
                unfinished = ": \(count) data product\(count == 1 ? "" : "s") not done at its deadline \(time("deadline") ?? "")"
            } else {
                unfinished = ": not done at its deadline \(time("deadline") ?? "")"
            }
            return ":alarm_clock: Plan \(plan) *is late*\(unfinished)"
        case .datasetPaused:
            return ":double_vertical_bar: Plan \(plan) *was paused*"
        case .datasetUnpaused:
            return ":arrow_forward: Plan \(plan) *was unpaused*"
        case .triggerUndeliverable:
            return ":warning: The trigger of data product \(product) *could not be delivered*\(details()) in plan \(plan)"
        case .computeCircuitOpened:
            return ":rotating_light: Compute platform \(compute) *is failing*: its circuit opened and its triggers wait"
        case .computeCircuitClosed:
            return ":large_green_circle: Compute platform \(compute) *recovered*: its circuit closed"
        case .dataProductQueued:
            return ":arrow_right: Data product \(product) *was queued*\(details()) in plan \(plan)"
        case .dataProductRunning:
            return ":gear: Data product \(product) *is running*\(details()) in plan \(plan)"
        case .dataProductAborted:
            return ":heavy_minus_sign: Data product \(product) *stopped without a result*\(details(string("reason"))) in plan \(plan)"
        }
    }

    /// The data product, linked to its page, named by its name (its id if it has none).
    private var product: String {
        guard let datasetId = event.datasetId, let productId = event.dataProductId else { return "" }
        let name = string("name") ?? productId.lowercased
        return "<\(publicURL)/plan/\(datasetId.lowercased)/product/\(productId.lowercased)|\(Self.escaped(name))>"
    }

    /// The plan, linked to its page, named by its dataset id.
    private var plan: String {
        guard let datasetId = event.datasetId else { return "" }
        return "<\(publicURL)/plan/\(datasetId.lowercased)|\(datasetId.lowercased)>"
    }

    private var compute: String { "`\(Self.escaped(string("compute") ?? "?"))`" }

    /// ` (try N, extra)`: the try, when the event has one, and `extra`; nothing when neither is.
    private func details(_ extra: String? = nil) -> String {
        var parts: [String] = []
        if case .integer(let number) = event.data["try"] { parts.append("try \(number)") }
        if let extra { parts.append(Self.escaped(extra)) }
        return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
    }

    /// ` — 5 min late`, for a success after its deadline.
    private var lateness: String {
        let seconds: Double
        switch event.data["late_by_s"] {
        case .number(let value): seconds = value
        case .integer(let value): seconds = Double(value)
        default: return ""
        }
        return " — \(Self.duration(seconds)) late"
    }

    private func string(_ key: String) -> String? {
        guard case .string(let text) = event.data[key] else { return nil }
        return text
    }

    /// A Slack date token for the time under `key`: the reader's local date and time, or UTC text.
    private func time(_ key: String) -> String? {
        guard case .time(let date) = event.data[key] else { return nil }
        var fallback: [UInt8] = []
        JSONBytes.writeDate(date, to: &fallback)
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        return "<!date^\(seconds)^{date_short_pretty} {time_secs}|\(String(decoding: fallback, as: UTF8.self))>"
    }

    /// `seconds` in words: `42 s`, `3 min`, `2 h 5 min`, `3 d 4 h`.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(max(0, seconds).rounded())
        switch whole {
        case ..<60: return "\(whole) s"
        case ..<3600: return "\(whole / 60) min"
        case ..<86_400: return whole % 3600 / 60 == 0 ? "\(whole / 3600) h" : "\(whole / 3600) h \(whole % 3600 / 60) min"
        default: return whole % 86_400 / 3600 == 0 ? "\(whole / 86_400) d" : "\(whole / 86_400) d \(whole % 86_400 / 3600) h"
        }
    }

    /// `text` with Slack's control characters escaped (`&`, `<`, `>`), so a name cannot break a link.
    static func escaped(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\n", "\r": escaped += " "
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

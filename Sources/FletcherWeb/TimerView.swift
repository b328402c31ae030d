import FletcherDomain
import Foundation

/// A product's timers as the pages show them (docs/RULES.md rules 23–24): a pending retry's and an
/// armed timeout's countdown, and the hint that a product timed out. Each countdown is a `<time>`
/// holding the absolute time, with the remaining time as its text when the page was made; the
/// script counts it down (`data-countdown`) and the live updates replace it.
enum TimerView {
    /// The plan table's timer cell.
    static func cell(_ product: DataProduct, now: Date) -> HTML {
        var parts: [HTML] = []
        if product.state == .failed, let note = TimeoutNote(product.passback) { parts.append(timedOut(note)) }
        if let retryAt = product.retryAt { parts.append(retry(retryAt, nextTry: product.tryNumber + 1, now: now)) }
        if let timeoutAt = product.timeoutAt { parts.append(timeout(timeoutAt, now: now)) }
        return HTML.join(parts, separator: " ")
    }

    static func retry(_ date: Date, nextTry: Int, now: Date) -> HTML {
        "<span class=\"timer retry\" title=\"try \(nextTry) starts then if its parents are all success\">retry \(countdown(date, now: now))</span>"
    }

    static func timeout(_ date: Date, now: Date) -> HTML {
        "<span class=\"timer timeout\">times out \(countdown(date, now: now))</span>"
    }

    static func timedOut(_ note: TimeoutNote) -> HTML {
        "<span class=\"timer timed-out\" title=\"try \(note.tryNumber) timed out\">timed out (\(phaseAndLimit(note.phase, note.limit)))</span>"
    }

    /// `running, 1 m`, or only the phase when the limit is unknown.
    static func phaseAndLimit(_ phase: DataProductState, _ limit: Double?) -> String {
        guard let limit else { return phase.rawValue }
        return "\(phase.rawValue), \(duration(limit))"
    }

    /// `<time datetime="…" data-countdown>in 12 s</time>`: the absolute time in its attribute and title.
    static func countdown(_ date: Date, now: Date) -> HTML {
        "<time datetime=\"\(RFC3339.string(date))\" title=\"\(RFC3339.readable(date))\" data-countdown>\(relative(date, now: now))</time>"
    }

    /// `in 1 m 40 s`, or `now` once due (as the script writes it).
    static func relative(_ date: Date, now: Date) -> String {
        // Whole milliseconds first, as the script's clock counts, so 12 s away never reads 13.
        let seconds = ((date.timeIntervalSince(now) * 1000).rounded() / 1000).rounded(.up)
        return seconds <= 0 ? "now" : "in " + duration(seconds)
    }

    /// `850 ms`, `12 s`, `1 m 40 s`, `2 h 5 m`, `3 d 4 h`: two units at most (as the script writes it).
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "—" }
        let seconds = max(0, seconds)
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        let whole = Int(min(seconds, 1e12).rounded())
        func two(_ big: Int, _ bigUnit: String, _ small: Int, _ smallUnit: String) -> String {
            small == 0 ? "\(big) \(bigUnit)" : "\(big) \(bigUnit) \(small) \(smallUnit)"
        }
        switch whole {
        case ..<60: return "\(whole) s"
        case ..<3_600: return two(whole / 60, "m", whole % 60, "s")
        case ..<86_400: return two(whole / 3_600, "h", whole % 3_600 / 60, "m")
        default: return two(whole / 86_400, "d", whole % 86_400 / 3_600, "h")
        }
    }
}
